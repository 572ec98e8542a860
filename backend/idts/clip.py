"""CLIP image towers on transformers' `CLIPVisionModelWithProjection`, and their preprocessing.

The checkpoint holds an open_clip ViT-H-14 (the SVD image token) and an OpenAI CLIP ViT-L/14 (aesthetic
features); both are plain ViTs with a class-token pooling and a projection, so they load into transformers'
CLIP vision model (GELU for open_clip, QuickGELU for OpenAI CLIP) through `keymaps.convert_clip_visual`.
"""
from __future__ import annotations

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def vision_config(width: int, layers: int, heads: int, patch: int, embed_dim: int, image_size: int = 224,
                  quick_gelu: bool = False, mlp_ratio: float = 4.0) -> CLIPVisionConfig:
    """A transformers CLIP vision config from open_clip-style numbers."""
    return CLIPVisionConfig(hidden_size=width, intermediate_size=int(width * mlp_ratio), num_hidden_layers=layers,
                            num_attention_heads=heads, patch_size=patch, image_size=image_size,
                            projection_dim=embed_dim, hidden_act="quick_gelu" if quick_gelu else "gelu",
                            layer_norm_eps=1e-5)


def open_clip_h14_config() -> CLIPVisionConfig:
    """open_clip ViT-H-14 visual tower (the image token; 1024-d, not normalised)."""
    return vision_config(1280, 32, 16, 14, 1024)


def openai_clip_l14_config() -> CLIPVisionConfig:
    """OpenAI CLIP ViT-L/14 visual tower (aesthetic features, 768-d)."""
    return vision_config(1024, 24, 16, 14, 768, quick_gelu=True)


def new_vision_model(config: CLIPVisionConfig) -> CLIPVisionModelWithProjection:
    config._attn_implementation = "sdpa"
    return CLIPVisionModelWithProjection(config).eval()


def clip_normalize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images [B, 3, H, W] -> CLIP-normalised."""
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device)[:, None, None]
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - mean) / std


def clip_token_input(frame: torch.Tensor) -> torch.Tensor:
    """[-1, 1] frame [B, 3, H, W] -> ViT input [B, 3, 224, 224]: antialiased bicubic (kornia-equivalent),
    then [0, 1] and CLIP normalisation (SPEC 4.4 #0)."""
    # diffusers' SVD helper reproduces the reference's kornia resize exactly (SPEC 6); imported here because its
    # module pulls in the whole SVD pipeline
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    x = _resize_with_antialiasing(frame, (224, 224))
    return clip_normalize((x + 1.0) / 2.0)


def clip_token(model: CLIPVisionModelWithProjection, frame: torch.Tensor) -> torch.Tensor:
    """The image token [B, 1, D] (projected, not normalised) of a [-1, 1] frame [B, 3, H, W]."""
    pixels = clip_token_input(frame.float()).to(model.dtype)
    return model(pixel_values=pixels).image_embeds[:, None]
