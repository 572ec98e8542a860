"""The layout of a converted ID-TS stage folder (what `converter` writes, what `pipeline.StageModels` loads),
checked without torch so that deciding whether full mode can run stays cheap."""
from __future__ import annotations

from pathlib import Path

COMPONENTS = ("unet", "vae", "concat_vae", "image_encoder", "aesthetic_encoder", "aesthetic_mlp", "identity_encoder")


def missing_files(folder: str | Path) -> list[str]:
    """Paths a converted stage folder lacks (empty when complete)."""
    folder = Path(folder)
    out = [] if (folder / "idts_stage.json").is_file() else [str(folder / "idts_stage.json")]
    for comp in COMPONENTS:
        d = folder / comp
        if not (d / "config.json").is_file():
            out.append(str(d / "config.json"))
        if not any(d.glob("*.safetensors")):
            out.append(str(d / "*.safetensors"))
    return out
