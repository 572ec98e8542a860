"""Build a complete ID-TS stage with deterministic (seeded) weights, at full size or small.

'real' uses the released architecture (SPEC 4.5, 4.8, 6): speed and memory do not depend on weight values, so
the benchmark uses it without checkpoints. 'small' is a coherent miniature (64-d tokens, 48-d vector, narrow VAE,
tiny CLIP and IR-SE) for CPU tests and the CPU smoke run of the benchmark; its outputs are noise.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from .aesthetic import AestheticMLP
from .clip import new_vision_model, open_clip_h14_config, openai_clip_l14_config, vision_config
from .identity import IdentityEncoder
from .pipeline import StageModels
from .unet import REAL_UNET_CONFIG, TINY_UNET_CONFIG, IDTSUNet
from .vae import REAL_VAE_CONFIG

SMALL_VAE_CONFIG = dict(REAL_VAE_CONFIG, block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4,
                        sample_size=64)
SMALL_RESOLUTION = {"low": 32, "high": 64}


def build_components(size: str = "real", seed: int = 0, device: str | torch.device = "cpu",
                     dtype: torch.dtype = torch.float32) -> dict[str, torch.nn.Module]:
    """{component: model} with seeded default-initialised weights, built directly on `device`."""
    torch.manual_seed(seed)
    with torch.device(device):
        if size == "real":
            parts = {"unet": IDTSUNet(**REAL_UNET_CONFIG), "vae": AutoencoderKL(**REAL_VAE_CONFIG),
                     "concat_vae": AutoencoderKL(**REAL_VAE_CONFIG),
                     "image_encoder": new_vision_model(open_clip_h14_config()),
                     "aesthetic_encoder": new_vision_model(openai_clip_l14_config()),
                     "aesthetic_mlp": AestheticMLP(), "identity_encoder": IdentityEncoder()}
        elif size == "small":
            parts = {"unet": IDTSUNet(**TINY_UNET_CONFIG), "vae": AutoencoderKL(**SMALL_VAE_CONFIG),
                     "concat_vae": AutoencoderKL(**SMALL_VAE_CONFIG),
                     "image_encoder": new_vision_model(vision_config(32, 1, 2, 14, 64)),
                     "aesthetic_encoder": new_vision_model(vision_config(32, 1, 1, 14, 768, quick_gelu=True)),
                     "aesthetic_mlp": AestheticMLP(),
                     "identity_encoder": IdentityEncoder(embedding_dim=32, token_dim=64, widths=(16, 16, 32, 32),
                                                         units=(1, 1, 1, 1))}
        else:
            raise ValueError(f"size must be 'real' or 'small', not {size!r}")
    return {k: (v if dtype == torch.float32 else v.to(dtype)).eval() for k, v in parts.items()}


def build_stage(stage: str, size: str = "real", seed: int = 0, device="cpu", dtype=torch.float32) -> StageModels:
    parts = build_components(size, seed + (0 if stage == "low" else 1), device, dtype)
    res = SMALL_RESOLUTION[stage] if size == "small" else None
    chunk = parts["unet"].config.projection_class_embeddings_input_dim // 3
    return StageModels.from_components(parts, stage, res, vector_chunk=chunk)


def save_stage(parts: dict[str, torch.nn.Module], folder: str | Path, stage: str, resolution: int | None = None,
               source: str = "builders") -> Path:
    """Write components as a converted stage folder (the layout `StageModels.from_pretrained` reads)."""
    folder = Path(folder)
    for comp, model in parts.items():
        model.save_pretrained(str(folder / comp), safe_serialization=True)
    info = {"stage": stage, "source": source}
    if resolution:
        info["resolution"] = resolution
    (folder / "idts_stage.json").write_text(json.dumps(info, indent=1))
    return folder
