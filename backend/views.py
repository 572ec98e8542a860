"""The views folder, `views/`: one image per camera (`NNN.png`, RGBA: the colour and the head's mask in alpha) and
`cameras.json` (backend/cameras.py: OpenCV intrinsics and world-to-camera matrices). `headforge render-views`
(addon/render_views.py) and the multiview stage write it; the splat and mesh stages and the benchmarks read it,
all through `read_views`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cameras import load_cameras_json, scale_intrinsics, view_file
from .errors import StageError


@dataclass
class View:
    camera_index: int  # position of its camera in cameras.json's list
    rgba: np.ndarray  # (H, W, 4) float32 in [0, 1], straight alpha (1 where the file has none)
    has_alpha: bool  # whether the file carries an alpha channel
    K: np.ndarray  # (3, 3) intrinsics of the image as loaded (scaled when it was resized)
    w2c: np.ndarray  # (4, 4) world → camera (OpenCV)


def read_views(views_dir, *, code: str, size: int | None = None, need_alpha: bool = True,
               skip_missing: bool = False, with_images: bool = True) -> tuple[list[dict], list[View]]:
    """(cameras.json's list, the views) of `views_dir`. `code` prefixes the StageError codes (the reading stage's
    name). `size`: views wider than this are shrunk to it (box filter), their intrinsics scaled. `need_alpha`:
    refuse views without alpha. `skip_missing`: a view whose file is absent is left out instead of refused (at least
    one must be there). `with_images` False: the cameras only."""
    from PIL import Image  # Pillow lazily: the stages importing this module are imported by job planning

    views_dir = Path(views_dir)
    cam_path = views_dir / "cameras.json"
    if not cam_path.is_file():
        raise StageError(f"{cam_path} is missing: the views have no cameras.", code=f"{code}.missing_cameras")
    try:
        cams = load_cameras_json(cam_path)
    except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise StageError(f"{cam_path} is unreadable ({e}).", code=f"{code}.bad_cameras") from e
    if not cams:
        raise StageError(f"{cam_path} lists no views.", code=f"{code}.no_views")
    if not with_images:
        return cams, []
    views = []
    for ci, cam in enumerate(cams):
        p = view_file(views_dir, cam)
        if not p.is_file():
            if skip_missing:
                continue
            raise StageError(f"View {p.name} listed in cameras.json is missing.", code=f"{code}.missing_view")
        try:
            img = Image.open(p)
            img.load()
        except OSError as e:
            raise StageError(f"View {p.name} is unreadable ({e}).", code=f"{code}.bad_view") from e
        has_alpha = img.mode in ("RGBA", "LA", "PA")
        if need_alpha and img.mode != "RGBA":
            raise StageError(f"View {p.name} has no alpha channel (mode {img.mode}); the {code} stage needs RGBA "
                             "views with the head's mask in alpha.", code=f"{code}.no_alpha")
        if need_alpha and img.size != (int(cam["width"]), int(cam["height"])):
            raise StageError(f"View {p.name} is {img.size[0]}×{img.size[1]} but cameras.json says "
                             f"{cam['width']}×{cam['height']}.", code=f"{code}.inconsistent_views")
        if size and img.size[0] > size:  # only ever shrink
            img = img.resize((size, round(img.size[1] * size / img.size[0])), Image.Resampling.BOX)
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        h, w = rgba.shape[:2]
        K = scale_intrinsics(cam["K"], w / cam["width"], h / cam["height"])
        views.append(View(ci, rgba, has_alpha, K, np.asarray(cam["w2c"], np.float64)))
    if not views:
        raise StageError(f"No view images found in {views_dir}.", code=f"{code}.no_views")
    return cams, views
