"""Aesthetic-score conditioning (SPEC 4.4 #1): OpenAI CLIP ViT-L/14 image features -> MLP -> score -> 256-d chunk."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from torch import nn

from .clip import clip_normalize
from .embeddings import aesthetic_embedding


class AestheticMLP(ModelMixin, ConfigMixin):
    """The LAION aesthetic predictor: Linear 768-1024-128-64-16-1, no activations (dropout is inactive in eval)."""

    @register_to_config
    def __init__(self, input_dim: int = 768):  # the layer sizes are fixed by the released predictor
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(input_dim, 1024), nn.Dropout(0.2), nn.Linear(1024, 128),
                                    nn.Dropout(0.2), nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16),
                                    nn.Linear(16, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """L2-normalised CLIP features [B, 768] -> scores [B, 1]."""
        return self.layers(features.to(self.dtype))


def normalize_features(features: torch.Tensor) -> torch.Tensor:
    """L2-normalise rows; a zero row is left unchanged (numpy semantics of the reference)."""
    norm = features.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, features / torch.where(norm > 0, norm, torch.ones_like(norm)), features)


def aesthetic_clip_input(frame: torch.Tensor) -> torch.Tensor:
    """Middle video frame [B, 3, H, W] in [-1, 1] -> CLIP input [B, 3, 224, 224]: bilinear to 224 x 384
    (stretches horizontally), keep columns 80..303, map to [0, 1], CLIP-normalise."""
    x = F.interpolate(frame, size=(224, 384), mode="bilinear", align_corners=False)[..., 80:304]
    return clip_normalize((x + 1.0) / 2.0)


def aesthetic_vector(clip_vision, mlp: AestheticMLP, frame: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """Aesthetic chunk [B, dim] = [score, sinusoid(100 score)] of the middle frame [B, 3, H, W] in [-1, 1].

    clip_vision: a transformers `CLIPVisionModelWithProjection` holding CLIP ViT-L/14.
    """
    pixels = aesthetic_clip_input(frame).to(clip_vision.dtype)
    features = clip_vision(pixel_values=pixels).image_embeds.float()
    return aesthetic_embedding(mlp(normalize_features(features)).float()[:, 0], dim)
