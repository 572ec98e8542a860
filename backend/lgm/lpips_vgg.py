"""LPIPS-VGG (Zhang et al. 2018, v0.1), the perceptual term of LGM's fine-tuning loss (SPEC 4.11), when installed.

Two weight files, both plain state dicts read with `torch.load(weights_only=True)`, in <models root>/lpips/:
`vgg16-397923af.pth` (torchvision's ImageNet VGG16; only `features.*` is used) and `vgg.pth` (LPIPS' linear
heads `lin0…lin4.model.1.weight`). `load()` returns None and `status()` says which file is missing when either is
absent: the loss then runs without the LPIPS term and the fine-tuning record says so.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..models import store
from .data import resize_bilinear

VGG_FILE = "vgg16-397923af.pth"
LIN_FILE = "vgg.pth"
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in torchvision's `features`
_CHANNELS = (64, 128, 256, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPSVGG(nn.Module):
    """Distance of images in [−1, 1], [B, 3, H, W] → [B]."""

    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for c in _VGG16:
            if c == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU(inplace=False)]
                cin = c
        self.features = nn.Sequential(*layers)
        self.lins = nn.ModuleList([nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def _taps(self, x):
        out = []
        x = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
                if i == _TAPS[-1]:
                    break
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = 0
        for lin, fa, fb in zip(self.lins, self._taps(a), self._taps(b)):
            total = total + lin((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return total


def weight_files(root=None) -> tuple[Path, Path]:
    return store.model_path("lpips", VGG_FILE, root=root), store.model_path("lpips", LIN_FILE, root=root)


def status(root=None) -> str:
    vgg, lin = weight_files(root)
    missing = [str(p) for p in (vgg, lin) if not p.is_file()]
    if missing:
        return "off: LPIPS-VGG weights not installed (" + ", ".join(missing) + ")"
    return "on: LPIPS-VGG (" + str(vgg.parent) + ")"


def load(root=None, device="cpu") -> LPIPSVGG | None:
    """The LPIPS-VGG network with its weights, or None when either file is absent."""
    vgg, lin = weight_files(root)
    if not (vgg.is_file() and lin.is_file()):
        return None
    net = LPIPSVGG()
    feats = {k[len("features."):]: v for k, v in torch.load(vgg, map_location="cpu", weights_only=True).items()
             if k.startswith("features.")}
    net.features.load_state_dict(feats, strict=True)
    lins = torch.load(lin, map_location="cpu", weights_only=True)
    for i, conv in enumerate(net.lins):
        conv.weight.data.copy_(lins[f"lin{i}.model.1.weight"])
    return net.to(device).eval()


def lpips_loss(net: LPIPSVGG, pred: torch.Tensor, gt: torch.Tensor, size: int = 256) -> torch.Tensor:
    """The reference's term: both images [B, 3, H, W] in [0, 1] resized to 256 (bilinear), mapped to [−1, 1]."""
    def prep(x):
        return resize_bilinear(x * 2 - 1, size)

    return net(prep(gt), prep(pred)).mean()
