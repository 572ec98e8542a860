"""Identity conditioning: the IR-SE-50 ArcFace backbone and its projection to one cross-attention token (SPEC 4.4 #5).

`IRSE50` follows the reference `Backbone(50, mode='ir_se')` layout so checkpoint keys map one to one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

_UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}


class SEModule(nn.Module):
    """Squeeze-and-excitation: x * sigmoid(fc2(relu(fc1(avgpool(x)))))."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class BottleneckIRSE(nn.Module):
    """Improved residual unit with SE: BN, conv3x3, PReLU, conv3x3(stride), BN, SE; + shortcut."""

    def __init__(self, cin: int, depth: int, stride: int):
        super().__init__()
        if cin == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth), SEModule(depth, 16))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE50(ModelMixin, ConfigMixin):
    """IR-SE ArcFace backbone: RGB [B, 3, 112, 112] in [0, 1] (no normalisation) -> unit embeddings [B, 512]."""

    @register_to_config
    def __init__(self, num_layers: int = 50, embedding_dim: int = 512, drop_ratio: float = 0.6,
                 widths: tuple = (64, 128, 256, 512), units: tuple | None = None):
        super().__init__()
        units = tuple(units) if units else _UNITS[num_layers]  # `widths`/`units` only shrink test models
        self.input_layer = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                         nn.PReLU(widths[0]))
        body, cin = [], widths[0]
        for depth, n in zip(widths, units):
            body.append(BottleneckIRSE(cin, depth, 2))
            body += [BottleneckIRSE(depth, depth, 1) for _ in range(n - 1)]
            cin = depth
        self.body = nn.Sequential(*body)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(cin), nn.Dropout(drop_ratio), nn.Flatten(),
                                          nn.Linear(cin * 7 * 7, embedding_dim), nn.BatchNorm1d(embedding_dim))

    def forward(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        x = self.output_layer(self.body(self.input_layer(images)))
        return F.normalize(x, dim=1) if normalize else x


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """x / ||x|| along dim 1 (the reference's `l2_norm`, no epsilon)."""
    return x / torch.norm(x, 2, 1, True)


class IdentityEncoder(ModelMixin, ConfigMixin):
    """ArcFace token: frame [-1, 1] -> resize 112 -> IR-SE-50 -> unit 512-d -> MLP (ReLU after every layer).

    frames [B, 3, R, R] in [-1, 1] -> tokens [B, 1, token_dim], non-negative.
    """

    @register_to_config
    def __init__(self, num_layers: int = 50, embedding_dim: int = 512, token_dim: int = 1024,
                 widths: tuple = (64, 128, 256, 512), units: tuple | None = None):
        super().__init__()
        self.backbone = IRSE50(num_layers=num_layers, embedding_dim=embedding_dim, widths=widths, units=units)
        self.mlp = nn.Sequential(nn.Linear(embedding_dim, token_dim), nn.ReLU(), nn.Linear(token_dim, token_dim),
                                 nn.ReLU(), nn.Linear(token_dim, token_dim), nn.ReLU())

    @staticmethod
    def preprocess(frames: torch.Tensor) -> torch.Tensor:
        """[-1, 1] frames -> [0, 1], clamped, bilinear (no antialias) to 112 x 112."""
        x = ((frames + 1.0) / 2.0).clamp(0, 1)
        return F.interpolate(x, size=(112, 112), mode="bilinear", align_corners=False)

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """Unit ArcFace embeddings [B, 512] of [-1, 1] frames."""
        x = self.preprocess(frames).to(self.dtype)
        return l2_normalize(self.backbone(x, normalize=False))

    def project(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Unit embeddings [B, 512] -> tokens [B, 1, token_dim]."""
        return self.mlp(embeddings.to(self.dtype))[:, None]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.project(self.embed(frames))
