"""Stage `input`: the photo as given → `input/portrait.png` (8-bit sRGB RGB, EXIF orientation applied).

The photo is read by backend/photo.py. An alpha channel, when the photo has one, is composited over white and also
kept as `input/alpha.png` (the face stage uses it as a ready-made matte).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputImageError
from ..fileio import write_image
from ..photo import composite_over_white, load_portrait, open_header
from ..stage import stage


@dataclass
class InputOptions:
    pass


def _photo(inputs: dict, options: dict) -> dict:
    return {"photo": inputs["photo"]} if inputs.get("photo") else {}


def check_photo(inputs: dict) -> None:
    """A new photo is checked by its header (existence, format, pixel count) before the job records it."""
    if inputs.get("photo"):
        with open_header(Path(inputs["photo"])):
            pass


@stage("input", inputs=(), outputs=("input/portrait.png",), optional_outputs=("input/alpha.png",),
       options=InputOptions, external_inputs=_photo, check_inputs=check_photo)
def run_input(ctx) -> dict:
    photo = ctx.job.load()["inputs"].get("photo")
    if not photo:
        raise InputImageError("No photo was given for this job.", code="input.missing")
    src = Path(photo)
    ctx.progress(0.1, f"Reading {src.name}")
    image, info = load_portrait(src)
    ctx.progress(0.7, "Writing input/portrait.png")
    rgb = Image.fromarray(composite_over_white(np.asarray(image))) if image.mode == "RGBA" else image
    write_image(ctx.path("input/portrait.png"), rgb)
    if image.mode == "RGBA":
        write_image(ctx.path("input/alpha.png"), image.getchannel("A"))
    ctx.progress(1.0, f"{image.width}×{image.height} from {info['format']}", preview=ctx.path("input/portrait.png"))
    return info
