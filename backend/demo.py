"""`headforge demo`: the main job on the public-domain astronaut portrait that scikit-image ships."""
from __future__ import annotations

from pathlib import Path

from .fileio import write_image


def demo_photo(folder: Path) -> Path:
    """Write scikit-image's astronaut (NASA, public domain) as a PNG in `folder` and return its path."""
    from PIL import Image
    from skimage import data


    path = folder / "astronaut.png"
    if not path.exists():
        write_image(path, Image.fromarray(data.astronaut()))
    return path

