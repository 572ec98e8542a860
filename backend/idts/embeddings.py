"""Sinusoidal embeddings and the 768-d vector conditioning of ID-TS (SPEC 4.4)."""
from __future__ import annotations

import math

import torch


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """sgm sinusoid: [cos(t f), sin(t f)] with f_i = exp(-ln(max_period) i / half); odd dim gets a zero.

    t: [N] -> [N, dim]
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def scalar_embedding(values: torch.Tensor, dim: int) -> torch.Tensor:
    """`ConcatTimestepEmbedderND(dim)` on one scalar per sample: [B] -> [B, dim]."""
    return timestep_embedding(values.reshape(-1).float(), dim)


def aesthetic_embedding(score: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """Aesthetic chunk [score, sinusoid(100 score, dim - 1)]: score [B] or [B, 1] -> [B, dim]."""
    score = score.reshape(-1, 1).float()
    return torch.cat([score, timestep_embedding(score[:, 0] * 100.0, dim - 1)], dim=-1)


def vector_condition(score: torch.Tensor, elevation: torch.Tensor, cond_aug: torch.Tensor,
                     chunk: int = 256) -> torch.Tensor:
    """The UNet's `y`: [aesthetic | elevation | cond_aug], each `chunk` wide. Inputs [B] -> [B, 3 chunk]."""
    return torch.cat([aesthetic_embedding(score, chunk), scalar_embedding(elevation, chunk),
                      scalar_embedding(cond_aug, chunk)], dim=-1)
