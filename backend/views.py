"""The views folder, `views/`: one image per camera (`NNN.png`, RGBA: the colour and the head's mask in alpha) and
`cameras.json` (backend/cameras.py: OpenCV intrinsics and world-to-camera matrices). `headforge render-views`
(addon/render_views.py) and the multiview stage write it; the splat and mesh stages and the benchmarks read it,
all through `read_views`. The multiview stage writes whole rings, and keeps them across an interrupted run, with
`RingProgress`.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .cameras import VIEWS_PER_RING, load_cameras_json, scale_intrinsics, view_file, view_index
from .errors import JobError, StageError
from .fileio import sha256_file, write_image, write_json


@dataclass
class View:
    camera_index: int  # position of its camera in cameras.json's list
    rgba: np.ndarray  # (H, W, 4) float32 in [0, 1], straight alpha (1 where the file has none)
    has_alpha: bool  # whether the file carries an alpha channel
    K: np.ndarray  # (3, 3) intrinsics of the image as loaded (scaled when it was resized)
    w2c: np.ndarray  # (4, 4) world → camera (OpenCV)


def read_views(views_dir, *, code: str, size: int | None = None, need_alpha: bool = True,
               skip_missing: bool = False, with_images: bool = True,
               indices: Iterable[int] | None = None) -> tuple[list[dict], list[View]]:
    """(cameras.json's list, the views) of `views_dir`. `code` prefixes the StageError codes (the reading stage's
    name). `size`: views wider than this are shrunk to it (box filter), their intrinsics scaled. `need_alpha`:
    refuse views without alpha. `skip_missing`: a view whose file is absent is left out instead of refused (at least
    one must be there). `with_images` False: the cameras only. `indices`: read only the views whose cameras.json
    `index` is one of these (in cameras.json's order; the whole camera list is still returned); an index that
    cameras.json does not list is a StageError `<code>.missing_view`."""
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
    wanted = None
    if indices is not None:
        wanted = {int(i) for i in indices}
        absent = sorted(wanted - {int(c["index"]) for c in cams if "index" in c})
        if absent:
            raise StageError(f"{cam_path} lists no view {absent[0]}" + (f" (nor {len(absent) - 1} more)"
                             if len(absent) > 1 else "") + ".", code=f"{code}.missing_view")
    views = []
    for ci, cam in enumerate(cams):
        if wanted is not None and int(cam.get("index", -1)) not in wanted:
            continue
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


def ring_files(views_dir, ring: int) -> list[Path]:
    """The 16 image files of rig ring `ring` (views i = 16·ring + k)."""
    return [Path(views_dir) / f"{view_index(ring, k):03d}.png" for k in range(VIEWS_PER_RING)]


def write_ring(views_dir, ring: int, rgba: np.ndarray) -> list[str]:
    """Write a ring's 16 views (16, S, S, 4) uint8 straight RGBA; returns their files' sha256 in order."""
    from PIL import Image  # see read_views

    files = ring_files(views_dir, ring)
    for f, img in zip(files, rgba):
        write_image(f, Image.fromarray(img, "RGBA"))
    return [sha256_file(f) for f in files]


def read_ring(views_dir, ring: int, hashes: list[str] | None) -> np.ndarray | None:
    """The 16 RGBA views (16, S, S, 4) uint8 of a ring written before, or None if any is missing, unreadable or no
    longer the file that was written (`hashes`: their sha256 as `write_ring` returned them)."""
    from PIL import Image  # see read_views

    files = ring_files(views_dir, ring)
    if hashes is None or [sha256_file(f) if f.is_file() else "" for f in files] != hashes:
        return None
    try:
        views = [np.asarray(Image.open(f).convert("RGBA")) for f in files]
    except OSError:
        return None
    return np.stack(views) if len({v.shape for v in views}) == 1 else None


class RingProgress:
    """Ring-level resume of the multiview stage: `views/.rings.json` (a dot-file, not an artifact: the runner does
    not hash it) records each finished ring's matte method, seconds and files' sha256 under a fingerprint of what
    the rings depend on; a different fingerprint starts over (the folder's views and seed views are removed)."""

    def __init__(self, views_dir, fingerprint: str):
        self.views_dir = Path(views_dir)
        self.path = self.views_dir / ".rings.json"
        self.state = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if self.state.get("fingerprint") != fingerprint:
            for old in [*self.views_dir.glob("[0-9][0-9][0-9].png"), *self.views_dir.glob("seeds/ring_*.png")]:
                old.unlink()
            self.state = {"fingerprint": fingerprint, "rings": {}}
            write_json(self.path, self.state)

    def kept(self, rings) -> dict[int, tuple[np.ndarray, str]]:
        """{ring: (rgba (16, S, S, 4) uint8, matte method)} of the `rings` finished before and still intact."""
        out = {}
        for e in rings:
            rec = self.state["rings"].get(str(e))
            rgba = read_ring(self.views_dir, e, rec.get("sha256")) if rec else None
            if rgba is not None:
                out[e] = (rgba, rec["matte"])
        return out

    def add(self, ring: int, rgba: np.ndarray, matte: str, seconds: float) -> None:
        """Write a finished ring's views and record it."""
        self.state["rings"][str(ring)] = {"matte": matte, "seconds": seconds,
                                          "sha256": write_ring(self.views_dir, ring, rgba)}
        write_json(self.path, self.state)


def folder_views(src) -> tuple[list[Path], str]:
    """A views folder made elsewhere (render-views, the user's own renders): its files, cameras.json first and then
    each listed view's image, and one sha256 over their contents (a job made from it is named by it). Anything that
    is not a usable views folder is refused before a job is made (JobError `views.*`)."""
    src = Path(src)
    if not src.is_dir():
        raise JobError(f"{src} is not a folder.", code="views.not_a_folder",
                       hint="Choose the folder that holds cameras.json and the view images.")
    cam_path = src / "cameras.json"
    try:
        cams = load_cameras_json(cam_path)
    except FileNotFoundError:
        raise JobError(f"{src} has no cameras.json, so it is not a views folder.", code="views.missing_cameras",
                       hint="Render views with `headforge render-views`, or write cameras.json beside your images.")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise JobError(f"{cam_path} cannot be read as a cameras file ({e}).", code="views.bad_cameras") from e
    if not cams:
        raise JobError(f"{cam_path} lists no views.", code="views.no_views")
    files = [view_file(src, cam) for cam in cams]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise JobError(f"{len(missing)} of the {len(files)} views listed in {cam_path} are missing "
                       f"({', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}).", code="views.missing_view")
    digest, root = hashlib.sha256(), src.resolve()
    for f in [cam_path, *files]:
        digest.update(f.resolve().relative_to(root).as_posix().encode() + b"\0")
        digest.update(bytes.fromhex(sha256_file(f)))
    return [cam_path, *files], digest.hexdigest()


def copy_views(src, views_dir) -> int:
    """Copy a views folder made elsewhere (checked by `folder_views`) into a job's views/: cameras.json and the
    listed images only, each written whole (a copy cut short leaves no partial file). Files already there with the
    same content are kept. Returns how many were copied."""
    src, views_dir = Path(src), Path(views_dir)
    files, _ = folder_views(src)
    views_dir.mkdir(parents=True, exist_ok=True)
    copied = 0
    root = src.resolve()
    for f in files:
        dst = views_dir / f.resolve().relative_to(root)
        if dst.is_file() and dst.stat().st_size == f.stat().st_size and sha256_file(dst) == sha256_file(f):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        part = dst.with_name(dst.name + ".part")
        shutil.copyfile(f, part)
        part.replace(dst)
        copied += 1
    return copied
