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


def choose_mode() -> str:
    """The full pipeline needs a CUDA GPU and the multi-view weights; otherwise the instant CPU mode."""
    from .job import pipeline

    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if cuda and "multiview" in pipeline("full"):
        from .stages import multiview

        ready = getattr(multiview, "weights_present", lambda: False)
        if ready():
            return "full"
    return "instant"
