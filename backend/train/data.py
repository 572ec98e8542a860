"""Training clips from a 96-view head dataset (the dataset layout contract: manifest.json + <id>/views/ + meta.json).

A clip is what the reference's `VideoTrainDataset` gives: one elevation ring of one sequence, `num_frames` views
taken cyclically from a start position in `start_frames` (0..4 or 12..15 by default: front to side), composited over
white, quantised to uint8 and mapped to [-1, 1]; its elevation condition is that ring's elevation. Stage 2 also needs
the stage-1 video (`video_stage1`): the reference reads stage-1 generations from disk; we make it by degrading the
frames to stage-1 resolution and back (cv2 area down, bilinear up, as the pipeline's hand-off upscales), unless the
sequence holds `<id>/stage1/NNN.png` (stage-1 generations at any size) for the clip's views, which are then used as
the reference does.

Views are read only through `backend/views.read_views`, and only the clip's own (`indices`): a 16-frame stage-2 clip
decodes 16 images, not the sequence's 96 (benchmarks/train_data.py). Decoded frames are kept in an LRU cache.
Draws come from a caller's `torch.Generator`, so a clip depends on (seed, step) alone.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from ..cameras import VIEWS_PER_RING
from ..dataset.layout import DatasetError, read_manifest
from ..views import read_views


@dataclass
class Sequence:
    """One sequence's rig layout, from its cameras.json alone: the complete rings among those wanted."""

    id: str
    rings: dict  # {ring: elevation} of the rings with all 16 views listed
    view_index: dict  # {(ring, k): cameras.json index} (landmarks.json is keyed by it)
    position: dict  # {cameras.json index: position in cameras.json's list}
    stage1: bool = False  # <id>/stage1/ exists (stage-1 generations, read per clip)


@dataclass
class Clip:
    sequence: str
    ring: int
    start: int
    elevation: float
    frames: np.ndarray  # uint8 [T, R, R, 3], RGB over white
    views: list  # cameras.json index of each frame
    stage1: np.ndarray | None = None  # uint8 [T, R, R, 3]: the stage-1 video upscaled to R (stage 2 only)

    def video(self) -> torch.Tensor:
        return to_signed(self.frames)

    def video_stage1(self) -> torch.Tensor | None:
        return None if self.stage1 is None else to_signed(self.stage1)


def to_signed(frames_u8: np.ndarray) -> torch.Tensor:
    """uint8 [T, R, R, 3] -> float [T, 3, R, R] in [-1, 1] (x / 127.5 - 1, the reference's dataset scaling)."""
    return torch.from_numpy(np.ascontiguousarray(frames_u8)).float().div(127.5).sub(1.0).permute(0, 3, 1, 2)


def over_white(rgba: np.ndarray) -> np.ndarray:
    """float RGBA [H, W, 4] in [0, 1] -> uint8 RGB composited over white (truncated, as the reference's uint8())."""
    rgb = rgba[..., :3] * rgba[..., 3:4] + (1.0 - rgba[..., 3:4])
    return (rgb * 255.0).astype(np.uint8)


def degrade(frames: np.ndarray, low: int) -> np.ndarray:
    """uint8 [T, R, R, 3] -> down to `low` (cv2 area) and back up to R (cv2 bilinear)."""
    size = frames.shape[1]
    return np.stack([cv2.resize(cv2.resize(f, (low, low), interpolation=cv2.INTER_AREA), (size, size))
                     for f in frames])


class ClipSource:
    """Draws training clips from the sequences of one split. A clip reads only its own views (read_views with
    `indices`), not the sequence's 96; decoded frames are kept in an LRU cache of `cache_size` sequences' worth of
    views (96 each)."""

    def __init__(self, dataset, split: str, resolution: int, num_frames: int, start_frames, rings=None,
                 stage1_resolution: int | None = None, cache_size: int = 8):
        self.root = Path(dataset)
        man = read_manifest(self.root, code="train.dataset.manifest")
        self.ids = [s["id"] for s in man["sequences"] if isinstance(s, dict) and s.get("split") == split]
        if not self.ids:
            raise DatasetError(f"{self.root / 'manifest.json'} lists no {split!r} sequences.",
                               code="train.dataset.empty_split")
        self.resolution, self.num_frames = resolution, num_frames
        self.start_frames, self.rings = list(start_frames), rings
        self.stage1_resolution = stage1_resolution
        self._layouts: dict[str, Sequence] = {}
        self._frames: OrderedDict[tuple, np.ndarray] = OrderedDict()  # (sid, "views" | "stage1", index) -> frame
        self.cache_views = cache_size * 2 * 6 * VIEWS_PER_RING  # views and stage-1 frames of `cache_size` sequences
        self.views_read = 0  # view images decoded so far (benchmarks/train_data.py)

    def sequence(self, sid: str) -> Sequence:
        """The sequence's layout from its cameras.json (no image is decoded)."""
        if sid not in self._layouts:
            self._layouts[sid] = self._layout(sid)
        return self._layouts[sid]

    def _layout(self, sid: str) -> Sequence:
        views_dir = self.root / sid / "views"
        cams, _ = read_views(views_dir, code="train", with_images=False)
        index, elev, position = {}, {}, {}
        for pos, cam in enumerate(cams):
            if "ring" not in cam or "k" not in cam:
                raise DatasetError(f"{views_dir / 'cameras.json'} has views without `ring`/`k`: not the rig's "
                                   "96-view orbit.", code="train.dataset.not_rig")
            r, k = int(cam["ring"]), int(cam["k"])
            index[(r, k)] = int(cam["index"])
            position[int(cam["index"])] = pos
            elev[r] = float(cam["elevation"])
        wanted = self.rings if self.rings is not None else sorted(elev)
        rings = {r: elev[r] for r in wanted if all((r, k) in index for k in range(VIEWS_PER_RING))}
        if not rings:
            raise DatasetError(f"Sequence {sid} has no complete ring of 16 views among rings {list(wanted)}.",
                               code="train.dataset.no_ring")
        stage1 = self.stage1_resolution is not None and (self.root / sid / "stage1").is_dir()
        return Sequence(sid, rings, index, position, stage1)

    def _cached(self, key: tuple) -> np.ndarray | None:
        if key in self._frames:
            self._frames.move_to_end(key)
            return self._frames[key]
        return None

    def _keep(self, key: tuple, frame: np.ndarray) -> None:
        self._frames[key] = frame
        while len(self._frames) > self.cache_views:
            self._frames.popitem(last=False)

    def frames(self, seq: Sequence, views: list[int]) -> np.ndarray:
        """uint8 [T, R, R, 3] over white of the views (cameras.json indices) of `seq`, reading only those not
        cached."""
        todo = sorted({v for v in views if self._cached((seq.id, "views", v)) is None})
        if todo:
            views_dir = self.root / seq.id / "views"
            _, read = read_views(views_dir, code="train", size=self.resolution, indices=todo)
            self.views_read += len(read)
            for v in read:
                if v.rgba.shape[0] != self.resolution or v.rgba.shape[1] != self.resolution:
                    raise DatasetError(f"Views of {seq.id} are {v.rgba.shape[1]}×{v.rgba.shape[0]} px, smaller than "
                                       f"(or not as square as) the stage's {self.resolution} px.",
                                       code="train.dataset.too_small",
                                       hint="render the dataset at the stage's resolution or larger")
            by_pos = {v.camera_index: v for v in read}
            for idx in todo:
                self._keep((seq.id, "views", idx), over_white(by_pos[seq.position[idx]].rgba))
        return np.stack([self._cached((seq.id, "views", v)) for v in views])

    def _stage1(self, seq: Sequence, views: list[int]) -> np.ndarray | None:
        """The stage-1 generations <id>/stage1/NNN.png of the views, upscaled to R, or None when any is absent."""
        from PIL import Image

        folder = self.root / seq.id / "stage1"
        files = [folder / f"{v:03d}.png" for v in views]
        if not all(f.is_file() for f in files):
            return None
        out = []
        for v, f in zip(views, files):
            frame = self._cached((seq.id, "stage1", v))
            if frame is None:
                frame = cv2.resize(np.asarray(Image.open(f).convert("RGB")), (self.resolution, self.resolution))
                self._keep((seq.id, "stage1", v), frame)
            out.append(frame)
        return np.stack(out)

    def draw(self, gen: torch.Generator) -> Clip:
        """One clip: sequence, ring and start drawn from `gen`."""
        sid = self.ids[int(torch.randint(len(self.ids), (1,), generator=gen))]
        seq = self.sequence(sid)
        ring_ids = sorted(seq.rings)
        ring = ring_ids[int(torch.randint(len(ring_ids), (1,), generator=gen))]
        start = self.start_frames[int(torch.randint(len(self.start_frames), (1,), generator=gen))]
        ks = [(start + t) % VIEWS_PER_RING for t in range(self.num_frames)]
        views = [seq.view_index[(ring, k)] for k in ks]
        clip = Clip(sid, ring, start, seq.rings[ring], self.frames(seq, views), views)
        if self.stage1_resolution is not None:
            s1 = self._stage1(seq, views) if seq.stage1 else None
            clip.stage1 = s1 if s1 is not None else degrade(clip.frames, self.stage1_resolution)
        return clip
