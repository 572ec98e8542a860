"""The LGM reconstructor (SPEC 4.11): an asymmetric U-Net with multi-view self-attention, 4 views × (RGB + Plücker)
→ one Gaussian per output pixel, with the reference's activations.

`LGMModel` is a diffusers `ModelMixin`/`ConfigMixin`, so `save_pretrained`/`from_pretrained` write and read a
folder (config.json + safetensors). Its parameter names are exactly the keys of HQ-Head's `recon.safetensors`
(`unet.*`, `conv.*`), which keeps the converter a checked copy. `BIG_CONFIG` is the released 'big' model
(415,042,848 parameters); `TINY_CONFIG` is the fixtures' tiny model (867,744).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

GAUSSIAN_CHANNELS = 14  # position 3, opacity 1, scale 3, rotation 4, colour 3
INPUT_CHANNELS = 9  # RGB (ImageNet-normalised) + Plücker [o × d, d]
NUM_VIEWS = 4  # the reference hard-codes 4 frames in its multi-view attention

BIG_CONFIG = dict(down_channels=(64, 128, 256, 512, 1024, 1024), down_attention=(False, False, False, True, True, True),
                  mid_attention=True, up_channels=(1024, 1024, 512, 256, 128),
                  up_attention=(True, True, True, False, False), layers_per_block=2, attention_heads=16,
                  input_size=256, splat_size=128, output_size=512)
TINY_CONFIG = dict(BIG_CONFIG, down_channels=(32,) * 6, up_channels=(32,) * 5, input_size=128, splat_size=64,
                   output_size=96)
SKIP_SCALE = math.sqrt(0.5)


class MultiViewAttention(nn.Module):
    """GroupNorm, then self-attention over the tokens of all views of one subject together, residual × skip scale."""

    def __init__(self, dim: int, heads: int, num_views: int = NUM_VIEWS, groups: int = 32, eps: float = 1e-5):
        super().__init__()
        self.num_views = num_views
        self.heads = heads
        self.norm = nn.GroupNorm(groups, dim, eps=eps, affine=True)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.attn.proj = nn.Linear(dim, dim, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bv, c, h, w = x.shape
        b = bv // self.num_views
        res = x
        x = self.norm(x)
        x = x.reshape(b, self.num_views, c, h, w).permute(0, 1, 3, 4, 2).reshape(b, -1, c)  # [B, V·H·W, C]
        n = x.shape[1]
        qkv = self.attn.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        # scaled_dot_product_attention: softmax(q·kᵀ/√d)·v, the reference's maths (its non-xformers branch)
        x = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [B, heads, N, d]
        x = self.attn.proj(x.transpose(1, 2).reshape(b, n, c))
        x = x.reshape(b, self.num_views, h, w, c).permute(0, 1, 4, 2, 3).reshape(bv, c, h, w)
        return (x + res) * SKIP_SCALE


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int = 32, eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps, affine=True)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps, affine=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (h + self.shortcut(x)) * SKIP_SCALE


def _attn_list(n: int, dim: int, heads: int, on: bool) -> nn.ModuleList:
    return nn.ModuleList([MultiViewAttention(dim, heads) for _ in range(n)] if on else [])


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, layers: int, downsample: bool, attention: bool, heads: int):
        super().__init__()
        self.nets = nn.ModuleList([ResnetBlock(cin if i == 0 else cout, cout) for i in range(layers)])
        self.attns = _attn_list(layers, cout, heads, attention)
        self.downsample = nn.Conv2d(cout, cout, 3, 2, 1) if downsample else None

    def forward(self, x):
        skips = []
        for i, net in enumerate(self.nets):
            x = net(x)
            if len(self.attns):
                x = self.attns[i](x)
            skips.append(x)
        if self.downsample is not None:
            x = self.downsample(x)
            skips.append(x)
        return x, skips


class MidBlock(nn.Module):
    def __init__(self, channels: int, attention: bool, heads: int):
        super().__init__()
        self.nets = nn.ModuleList([ResnetBlock(channels, channels), ResnetBlock(channels, channels)])
        self.attns = _attn_list(1, channels, heads, attention)

    def forward(self, x):
        x = self.nets[0](x)
        if len(self.attns):
            x = self.attns[0](x)
        return self.nets[1](x)


class UpBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int, layers: int, upsample: bool, attention: bool, heads: int):
        super().__init__()
        self.nets = nn.ModuleList([ResnetBlock((cin if i == 0 else cout) + (cskip if i == layers - 1 else cout), cout)
                                   for i in range(layers)])
        self.attns = _attn_list(layers, cout, heads, attention)
        self.upsample = nn.Conv2d(cout, cout, 3, 1, 1) if upsample else None

    def forward(self, x, skips):
        for i, net in enumerate(self.nets):
            x = net(torch.cat([x, skips.pop()], dim=1))
            if len(self.attns):
                x = self.attns[i](x)
        if self.upsample is not None:
            x = self.upsample(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class LGMUNet(nn.Module):
    def __init__(self, down_channels, down_attention, mid_attention, up_channels, up_attention, layers_per_block,
                 heads):
        super().__init__()
        self.conv_in = nn.Conv2d(INPUT_CHANNELS, down_channels[0], 3, 1, 1)
        self.down_blocks = nn.ModuleList()
        cout = down_channels[0]
        for i, ch in enumerate(down_channels):
            cin, cout = cout, ch
            self.down_blocks.append(DownBlock(cin, cout, layers_per_block, i != len(down_channels) - 1,
                                              down_attention[i], heads))
        self.mid_block = MidBlock(down_channels[-1], mid_attention, heads)
        self.up_blocks = nn.ModuleList()
        cout = up_channels[0]
        for i, ch in enumerate(up_channels):
            cin, cout = cout, ch
            cskip = down_channels[max(-2 - i, -len(down_channels))]
            self.up_blocks.append(UpBlock(cin, cskip, cout, layers_per_block + 1, i != len(up_channels) - 1,
                                          up_attention[i], heads))
        self.norm_out = nn.GroupNorm(32, up_channels[-1], eps=1e-5)
        self.conv_out = nn.Conv2d(up_channels[-1], GAUSSIAN_CHANNELS, 3, 1, 1)

    def forward(self, x):
        x = self.conv_in(x)
        skips = [x]
        for block in self.down_blocks:
            x, s = block(x)
            skips.extend(s)
        x = self.mid_block(x)
        for block in self.up_blocks:
            n = len(block.nets)
            x = block(x, skips[-n:])
            del skips[-n:]
        return self.conv_out(F.silu(self.norm_out(x)))


class LGMModel(ModelMixin, ConfigMixin):
    """LGM: input [B, 4, 9, S, S] → raw maps and activated Gaussians [B, 4·s², 14] (view, row, column order)."""

    @register_to_config
    def __init__(self, down_channels=BIG_CONFIG["down_channels"], down_attention=BIG_CONFIG["down_attention"],
                 mid_attention: bool = True, up_channels=BIG_CONFIG["up_channels"],
                 up_attention=BIG_CONFIG["up_attention"], layers_per_block: int = 2, attention_heads: int = 16,
                 input_size: int = 256, splat_size: int = 128, output_size: int = 512):
        super().__init__()
        factor = 2 ** (len(down_channels) - 1) // 2 ** (len(up_channels) - 1)
        if input_size // factor != splat_size:
            raise ValueError(f"input_size {input_size} gives {input_size // factor}² splats, not {splat_size}²")
        self.unet = LGMUNet(down_channels, down_attention, mid_attention, up_channels, up_attention,
                            layers_per_block, attention_heads)
        self.conv = nn.Conv2d(GAUSSIAN_CHANNELS, GAUSSIAN_CHANNELS, 1)

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        """[B, V, 9, S, S] (or [B·V, 9, S, S]) → the 1×1 conv's output [B·V, 14, s, s]."""
        x = images.reshape(-1, *images.shape[-3:]).to(self.dtype)
        return self.conv(self.unet(x))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Activated Gaussians [B, V·s·s, 14]: [pos 3, opacity 1, scale 3, rotation 4 (wxyz, unit), rgb 3]."""
        x = self.raw(images)
        b = x.shape[0] // NUM_VIEWS
        x = x.reshape(b, NUM_VIEWS, GAUSSIAN_CHANNELS, *x.shape[-2:]).permute(0, 1, 3, 4, 2).reshape(
            b, -1, GAUSSIAN_CHANNELS)
        return activate(x)


def activate(x: torch.Tensor) -> torch.Tensor:
    """The reference's activations of raw channels [..., 14]."""
    pos = x[..., 0:3].clamp(-1, 1)
    opacity = torch.sigmoid(x[..., 3:4])
    scale = 0.1 * F.softplus(x[..., 4:7])
    rot = F.normalize(x[..., 7:11], dim=-1)
    rgb = 0.5 * torch.tanh(x[..., 11:14]) + 0.5
    return torch.cat([pos, opacity, scale, rot, rgb], dim=-1)


def build(size: str = "tiny", seed: int | None = None, device="cpu", dtype=torch.float32) -> LGMModel:
    """An LGMModel of the 'big' (released) or 'tiny' (fixtures) size with default-initialised weights."""
    cfg = {"big": BIG_CONFIG, "tiny": TINY_CONFIG}[size]
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        model = LGMModel(**cfg)
    # nn.Module.to: a plain cast of every parameter (ModelMixin.to warns about casts it cannot check)
    return model if dtype == torch.float32 else nn.Module.to(model, dtype)


@torch.no_grad()
def head_sized_output(model: LGMModel, sample: torch.Tensor, extent: float = 0.1, scale: float = 0.003) -> LGMModel:
    """Rescale the final 1×1 conv in place so that, for inputs like `sample` [B, 4, 9, S, S], the Gaussians sit in a
    head-sized region (position std ≈ `extent`, the rig's object is ±0.12 m) with scales near `scale`.

    A stand-in for pretrained weights in CPU tests and benchmarks: the fixtures' fill-rule weights give Gaussians
    spread over the whole [−1, 1]³ cube, tens of pixels wide, which no renderer would see from a trained LGM."""
    raw = model.unet(sample.reshape(-1, *sample.shape[-3:]).to(model.dtype))
    out = model.conv(raw)
    std = out.transpose(0, 1).reshape(GAUSSIAN_CHANNELS, -1).std(dim=1).clamp_min(1e-6)
    mean = out.transpose(0, 1).reshape(GAUSSIAN_CHANNELS, -1).mean(dim=1)
    gain = torch.ones(GAUSSIAN_CHANNELS)
    gain[0:3] = extent / std[0:3]
    gain[4:7] = 0.5 / std[4:7]
    model.conv.weight.mul_(gain.view(-1, 1, 1, 1))
    model.conv.bias.mul_(gain)
    model.conv.bias[0:3] -= mean[0:3] * gain[0:3]  # centred on the orbit centre
    target = math.log(math.expm1(scale / 0.1))  # softplus⁻¹(scale / 0.1)
    model.conv.bias[4:7] += target - mean[4:7] * gain[4:7]
    return model
