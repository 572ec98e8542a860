"""`headforge demo`: the main job on the public-domain astronaut portrait that scikit-image ships."""
from __future__ import annotations

from pathlib import Path


def demo_photo(folder: Path) -> Path:
    """Write scikit-image's astronaut (NASA, public domain) as a PNG in `folder` and return its path."""
    from PIL import Image
    from skimage import data

    from .fileio import write_image

    path = folder / "astronaut.png"
    if not path.exists():
        write_image(path, Image.fromarray(data.astronaut()))
    return path


def choose_mode(models_dir: str = "", device: str = "auto") -> str:
    """"full" where it can run here (multiview.full_mode_readiness: CUDA and the ID-TS weights), else "instant"."""
    from .stages.multiview import full_mode_readiness

    return "full" if full_mode_readiness(models_dir, device)[0] else "instant"
