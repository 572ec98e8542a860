"""Training clips from a 96-view head dataset (the dataset layout contract: manifest.json + <id>/views/ + meta.json).

A clip is what the reference's `VideoTrainDataset` gives: one elevation ring of one sequence, `num_frames` views
taken cyclically from a start position in `start_frames` (0..4 or 12..15 by default: front to side), composited over
white, quantised to uint8 and mapped to [-1, 1]; its elevation condition is that ring's elevation. Stage 2 also needs
the stage-1 video (`video_stage1`): the reference reads stage-1 generations from disk; we make it by degrading the
frames to stage-1 resolution and back (cv2 area down, bilinear up, as the pipeline's hand-off upscales), unless the
sequence holds `<id>/stage1/NNN.png` (stage-1 generations at any size), which are used as the reference does.

Views are read only through `backend/views.read_views`; each sequence's frames are kept in a small LRU cache.
Draws come from a caller's `torch.Generator`, so a clip depends on (seed, step) alone.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..cameras import VIEWS_PER_RING
from ..dataset.layout import DatasetError, read_manifest
from ..views import read_views


@dataclass
class Sequence:
    """One sequence's frames at the training resolution: rings {ring: (elevation, uint8 [16, R, R, 3])}."""

    id: str
    rings: dict
    view_index: dict  # {(ring, k): cameras.json index} (landmarks.json is keyed by it)
    stage1: dict = field(default_factory=dict)  # {ring: uint8 [16, R, R, 3]} when <id>/stage1/ exists


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
    """Draws training clips from the sequences of one split."""

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
        self._cache: OrderedDict[str, Sequence] = OrderedDict()
        self.cache_size = cache_size

    def sequence(self, sid: str) -> Sequence:
        if sid in self._cache:
            self._cache.move_to_end(sid)
            return self._cache[sid]
        seq = self._load(sid)
        self._cache[sid] = seq
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return seq

    def _load(self, sid: str) -> Sequence:
        views_dir = self.root / sid / "views"
        cams, views = read_views(views_dir, code="train", size=self.resolution)
        by_pos, index, elev = {}, {}, {}
        for v in views:
            cam = cams[v.camera_index]
            if "ring" not in cam or "k" not in cam:
                raise DatasetError(f"{views_dir / 'cameras.json'} has views without `ring`/`k`: not the rig's "
                                   "96-view orbit.", code="train.dataset.not_rig")
            if v.rgba.shape[0] != self.resolution or v.rgba.shape[1] != self.resolution:
                raise DatasetError(f"Views of {sid} are {v.rgba.shape[1]}×{v.rgba.shape[0]} px, smaller than (or "
                                   f"not as square as) the stage's {self.resolution} px.",
                                   code="train.dataset.too_small",
                                   hint="render the dataset at the stage's resolution or larger")
            r, k = int(cam["ring"]), int(cam["k"])
            by_pos[(r, k)] = over_white(v.rgba)
            index[(r, k)] = int(cam["index"])
            elev[r] = float(cam["elevation"])
        wanted = self.rings if self.rings is not None else sorted(elev)
        rings = {r: (elev[r], np.stack([by_pos[(r, k)] for k in range(VIEWS_PER_RING)])) for r in wanted
                 if all((r, k) in by_pos for k in range(VIEWS_PER_RING))}
        if not rings:
            raise DatasetError(f"Sequence {sid} has no complete ring of 16 views among rings {list(wanted)}.",
                               code="train.dataset.no_ring")
        seq = Sequence(sid, rings, index)
        s1 = self.root / sid / "stage1"
        if self.stage1_resolution is not None and s1.is_dir():
            seq.stage1 = self._stage1_files(s1, seq)
        return seq

    def _stage1_files(self, folder: Path, seq: Sequence) -> dict:
        from PIL import Image

        out = {}
        for r in seq.rings:
            files = [folder / f"{seq.view_index[(r, k)]:03d}.png" for k in range(VIEWS_PER_RING)]
            if all(f.is_file() for f in files):
                imgs = [np.asarray(Image.open(f).convert("RGB")) for f in files]
                out[r] = np.stack([cv2.resize(i, (self.resolution, self.resolution)) for i in imgs])
        return out

    def draw(self, gen: torch.Generator) -> Clip:
        """One clip: sequence, ring and start drawn from `gen`."""
        sid = self.ids[int(torch.randint(len(self.ids), (1,), generator=gen))]
        seq = self.sequence(sid)
        ring_ids = sorted(seq.rings)
        ring = ring_ids[int(torch.randint(len(ring_ids), (1,), generator=gen))]
        start = self.start_frames[int(torch.randint(len(self.start_frames), (1,), generator=gen))]
        ks = [(start + t) % VIEWS_PER_RING for t in range(self.num_frames)]
        elevation, frames = seq.rings[ring]
        clip = Clip(sid, ring, start, elevation, frames[ks], [seq.view_index[(ring, k)] for k in ks])
        if self.stage1_resolution is not None:
            clip.stage1 = seq.stage1[ring][ks] if ring in seq.stage1 else degrade(clip.frames, self.stage1_resolution)
        return clip
