"""The ID-TS first-stage VAE: a plain 2-D diffusers `AutoencoderKL` (SPEC 4.8, 6), not SVD's temporal decoder.

Two copies are used: `first_stage_model` (decode, and the stage-2 posterior sample) and the concat encoder
(`conditioner.embedders.3.encoder`, posterior mode for the concat latent).
"""
from __future__ import annotations

import torch
from diffusers import AutoencoderKL

SCALE_FACTOR = 0.18215

REAL_VAE_CONFIG = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    latent_channels=4, norm_num_groups=32, sample_size=256, scaling_factor=SCALE_FACTOR,
)

# sampler_tiny.json `tiny_vae_ddconfig`: ch 32, ch_mult (1, 1, 2, 2), 1 res block.
TINY_VAE_CONFIG = dict(REAL_VAE_CONFIG, block_out_channels=(32, 32, 64, 64), layers_per_block=1, sample_size=128)


def encode_mode(vae: AutoencoderKL, images: torch.Tensor) -> torch.Tensor:
    """Posterior mean (no scale factor). images [N, 3, H, W] in [-1, 1] -> [N, 4, H/8, W/8]."""
    return vae.encode(images.to(vae.dtype)).latent_dist.mean


def encode_sample(vae: AutoencoderKL, images: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Scaled posterior sample SCALE (mean + exp(logvar/2) eps), logvar clamped to [-30, 20].

    images [N, 3, H, W] in [-1, 1]; eps [N, 4, H/8, W/8] -> [N, 4, H/8, W/8]
    """
    dist = vae.encode(images.to(vae.dtype)).latent_dist
    return SCALE_FACTOR * (dist.mean + dist.std * eps.to(dist.mean))


def decode(vae: AutoencoderKL, latents: torch.Tensor, chunk: int = 16) -> torch.Tensor:
    """Decode scaled latents [N, 4, h, w] in chunks of `chunk` frames -> images [N, 3, 8h, 8w] in about [-1, 1]."""
    outs = [vae.decode((z / SCALE_FACTOR).to(vae.dtype)).sample for z in latents.split(chunk)]
    return torch.cat(outs)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images [N, 3, H, W] -> uint8 [N, H, W, 3]: x/2 + 1/2, clamp, x255, truncate (SPEC 4.8)."""
    x = (images.float() * 0.5 + 0.5).clamp(0, 1) * 255.0
    return x.permute(0, 2, 3, 1).to(torch.uint8)
