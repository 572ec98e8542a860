"""The multi-view stage's input for a dataset sequence, made as `headforge run` makes it for a photo, and the
ground-truth views in the same framing.

`frame_input` runs the pipeline's own `input` and `face` stages (backend/job.run_job, mode full, until face) on the
sequence's frontal view as the photo, in a job folder of the evaluation's output, and reads `face/crop.png` as the
multiview stage reads it (stages/multiview.read_crop): the same pixels a user's photo of that render would give
the model (photo.load_portrait, the alpha as the matte, face/framing's crop and white background). A re-run keeps
the job's face stage when nothing changed.

`frame_view` puts any ground-truth view of the sequence into that framing: the same reading (load_portrait, over
white), the same matte compositing and the same warp (the face stage's photo → crop affine), so the frontal view
comes out equal to the crop the model was given and every other view is seen through the same virtual camera
(a change of intrinsics, the same for all views of the rig), then box-filtered to the generated views' size.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import JobError
from ..face import framing
from ..job import run_job
from ..photo import composite_over_white, load_portrait
from ..stages.multiview import read_crop


@dataclass
class Framed:
    crop: np.ndarray  # (512, 512, 3) uint8: face/crop.png as the multiview stage reads it
    affine: np.ndarray  # (2, 3) photo (the frontal view) → crop pixels
    job: Path  # the job folder holding input/ and face/
    analysis: dict  # face/analysis.json


def frame_input(view_png: Path, job_dir: Path, face_options: dict | None = None, on_event=None,
                cancel=None) -> Framed:
    """Run `headforge run VIEW_PNG --until face` in `job_dir` and return the crop the multiview stage would read.
    Raises the face stage's FaceError (face.none, ...) when the render shows no usable face."""
    photo = str(Path(view_png).resolve())
    run_job(job_dir, inputs={"photo": photo, "photos": [photo]}, options={"face": dict(face_options or {})},
            mode="full", until="face", on_event=on_event, cancel=cancel)
    job_dir = Path(job_dir)
    analysis = json.loads((job_dir / "face" / "analysis.json").read_text())
    affine = np.asarray(analysis["crop"]["affine_photo_to_crop"], np.float64)
    return Framed(read_crop(job_dir / "face" / "crop.png"), affine, job_dir, analysis)


def frame_view(view_png: Path, affine: np.ndarray, size: int) -> np.ndarray:
    """A view file in the input's framing, (size, size, 3) float64 in [0, 1] over white: read as the input stage
    reads a photo, its alpha as the face stage's matte, warped by the face stage's affine to the crop, then
    box-filtered from the crop's 512 px to `size` (which must divide it)."""
    image, _ = load_portrait(view_png)
    rgba = np.asarray(image.convert("RGBA"))
    rgb = composite_over_white(rgba)  # input/portrait.png
    matte = rgba[..., 3].astype(np.float32) / 255.0  # input/alpha.png, read back by matte.load_alpha
    crop = framing.warp(framing.composite_white(rgb, matte), affine, framing.CROP_SIZE)
    return box_shrink(crop.astype(np.float64) / 255.0, size)


def framed_intrinsics(K: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """The intrinsics (3, 3) of a rig camera `K` (of the dataset's views) seen through the framing: the crop's
    affine (a scale and shift; the face stage turns only sideways photos) and then the box filter from the crop's
    512 px to `size` (pixel centres at integers: x → (x − (f − 1)/2) / f)."""
    a = np.asarray(affine, np.float64)
    if abs(a[0, 1]) > 1e-9 or abs(a[1, 0]) > 1e-9:
        raise JobError("the input framing turns the frontal view, so it is not a camera's intrinsics.",
                       code="evaluate.turned_framing")
    f = framing.CROP_SIZE / size
    shrink = np.array([[1 / f, 0, -(f - 1) / (2 * f)], [0, 1 / f, -(f - 1) / (2 * f)], [0, 0, 1]])
    return shrink @ np.vstack([a, [0, 0, 1]]) @ np.asarray(K, np.float64)


def box_shrink(img: np.ndarray, size: int) -> np.ndarray:
    """(H, H, C) → (size, size, C) by averaging f×f blocks (f = H / size, a whole number)."""
    h = img.shape[0]
    if h == size:
        return img
    if h % size:
        raise JobError(f"the {h}-px input framing cannot be compared with {size}-px generated views ({size} does not "
                       f"divide {h}).", code="evaluate.size_mismatch")
    f = h // size
    return img.reshape(size, f, size, f, img.shape[-1]).mean((1, 3))
