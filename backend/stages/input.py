"""Stage `input`: the photos as given → `input/portrait.png` (the main photo, 8-bit sRGB RGB, EXIF orientation
applied) and, when several photos of one person were given, the others as `input/more/NN.png` (NN = 02, 03, ...).

The photos are read by backend/photo.py. An alpha channel, when a photo has one, is composited over white and also
kept (`input/alpha.png`, `input/more/NN_alpha.png`): the face stage uses it as a ready-made matte.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputImageError
from ..fileio import write_image
from ..photo import MAX_PHOTOS, MORE_DIR, composite_over_white, job_photos, load_portrait, more_photo_names, \
    open_header
from ..stage import stage


@dataclass
class InputOptions:
    pass


def _photo(inputs: dict, options: dict) -> dict:
    photos = job_photos(inputs)
    return {("photo" if i == 0 else f"photo_{i + 1:02d}"): p for i, p in enumerate(photos)}


def check_photo(inputs: dict) -> None:
    """New photos are checked by their header (existence, format, pixel count) before the job records them."""
    photos = job_photos(inputs)
    if len(photos) > MAX_PHOTOS:
        raise InputImageError(f"{len(photos)} photos were given; a job takes at most {MAX_PHOTOS} of one person.",
                              code="input.too_many")
    for p in photos:
        with open_header(Path(p)):
            pass


def _write(ctx, src: Path, rel: str, alpha_rel: str) -> tuple[Image.Image, dict]:
    image, info = load_portrait(src)
    rgb = Image.fromarray(composite_over_white(np.asarray(image))) if image.mode == "RGBA" else image
    write_image(ctx.path(rel), rgb)
    if image.mode == "RGBA":
        write_image(ctx.path(alpha_rel), image.getchannel("A"))
    return image, info


@stage("input", inputs=(), outputs=("input/portrait.png",), optional_outputs=("input/alpha.png", MORE_DIR),
       options=InputOptions, external_inputs=_photo, check_inputs=check_photo)
def run_input(ctx) -> dict:
    photos = job_photos(ctx.job.load()["inputs"])
    if not photos:
        raise InputImageError("No photo was given for this job.", code="input.missing")
    ctx.progress(0.1, f"Reading {Path(photos[0]).name}")
    image, info = _write(ctx, Path(photos[0]), "input/portrait.png", "input/alpha.png")
    more = ctx.path(MORE_DIR)
    if more.exists():  # the photos of an earlier run: this run's list replaces them
        shutil.rmtree(more)
    for i, (name, p) in enumerate(zip(more_photo_names(len(photos)), photos[1:])):
        ctx.progress(0.2 + 0.7 * i / (len(photos) - 1), f"Reading {Path(p).name}")
        _write(ctx, Path(p), f"{MORE_DIR}/{name}.png", f"{MORE_DIR}/{name}_alpha.png")
    ctx.progress(1.0, f"{image.width}×{image.height} from {info['format']}"
                 + (f", and {len(photos) - 1} more photo(s)" if len(photos) > 1 else ""),
                 preview=ctx.path("input/portrait.png"))
    return {**info, "photos": len(photos)} if len(photos) > 1 else info
