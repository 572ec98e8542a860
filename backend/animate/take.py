"""A take: a face performance as ARKit weights over time, with head and eye rotations.

Rotations are (yaw, pitch, roll) in radians about our world axes (DESIGN.md: +Z up, the face toward −Y, +X the
subject's left), composed as R = Rz(yaw) · Rx(pitch) · Ry(roll):
- yaw about +Z: positive turns the face toward the subject's left;
- pitch about +X: positive tips the face down;
- roll about +Y: positive tilts the top of the head toward the subject's left.
The same convention is used for the eyes (their rotation relative to looking straight ahead).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import HeadForgeError
from ..headmodel.arkit import ARKIT_52


class AnimationError(HeadForgeError):
    """A take (CSV, glTF animation, video) cannot be read or used."""

    code = "animate.invalid"


ROTATIONS = ("head", "eye_left", "eye_right")


@dataclass
class Take:
    times: np.ndarray  # (T,) seconds from the take's start, strictly increasing
    names: tuple[str, ...]  # ARKit names of the weight columns (Apple's spelling)
    weights: np.ndarray  # (T, K) in [0, 1] mostly (captures may overshoot a little)
    fps: float  # the recording's frame rate (real frames per second, e.g. 30000/1001)
    head: np.ndarray | None = None  # (T, 3) yaw, pitch, roll radians
    eye_left: np.ndarray | None = None  # (T, 3)
    eye_right: np.ndarray | None = None  # (T, 3)
    start_timecode: str | None = None  # the first frame's timecode, when the source has one
    drop_frame: bool = False
    name: str = "Take"
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.times = np.asarray(self.times, np.float64)
        self.weights = np.asarray(self.weights, np.float64).reshape(len(self.times), len(self.names))
        for r in ROTATIONS:
            v = getattr(self, r)
            if v is not None:
                setattr(self, r, np.asarray(v, np.float64).reshape(len(self.times), 3))
        if len(self.times) and np.any(np.diff(self.times) <= 0):
            raise AnimationError("The take's frame times do not increase.", code="animate.bad_times")
        if not (self.fps > 0):
            raise AnimationError(f"Frame rate {self.fps} is not positive.", code="animate.bad_fps")

    @property
    def n_frames(self) -> int:
        return len(self.times)

    @property
    def duration(self) -> float:
        return float(self.times[-1] - self.times[0]) if len(self.times) else 0.0

    def weight(self, name: str) -> np.ndarray:
        """(T,) weights of one ARKit name (zeros when the take has no such column)."""
        return self.weights[:, self.names.index(name)] if name in self.names else np.zeros(self.n_frames)

    def weights_by_name(self) -> dict[str, np.ndarray]:
        return {n: self.weights[:, i] for i, n in enumerate(self.names)}

    def arkit_weights(self) -> np.ndarray:
        """(T, 52) in ARKIT_52 order (absent names are zero)."""
        return np.stack([self.weight(n) for n in ARKIT_52], axis=1)

    def resample(self, fps: float) -> "Take":
        """The same performance sampled at `fps` over the same duration (linear interpolation of weights,
        spherical for rotations): frame i at i / fps seconds. Not stretched: a 2 s take stays 2 s long."""
        if not (fps > 0):
            raise AnimationError(f"Cannot resample to {fps} frames per second.", code="animate.bad_fps")
        if self.n_frames == 0:
            raise AnimationError("The take has no frames.", code="animate.empty")
        t0 = self.times[0]
        n = int(np.floor(self.duration * fps + 1e-6)) + 1
        t = np.arange(n) / fps
        w = np.stack([np.interp(t, self.times - t0, self.weights[:, k]) for k in range(len(self.names))], axis=1) \
            if self.names else np.zeros((n, 0))
        rot = {r: (None if getattr(self, r) is None else _slerp_euler(self.times - t0, getattr(self, r), t))
               for r in ROTATIONS}
        return replace(self, times=t, weights=w, fps=float(fps), **rot,
                       info={**self.info, "resampled_from_fps": self.fps})


def euler_to_matrix(ypr: np.ndarray) -> np.ndarray:
    """(..., 3) yaw, pitch, roll → (..., 3, 3) world rotations R = Rz(yaw) Rx(pitch) Ry(roll)."""
    from scipy.spatial.transform import Rotation

    ypr = np.asarray(ypr, np.float64)
    return Rotation.from_euler("ZXY", ypr.reshape(-1, 3)).as_matrix().reshape(ypr.shape[:-1] + (3, 3))


def matrix_to_euler(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations → (..., 3) yaw, pitch, roll (the inverse of euler_to_matrix)."""
    from scipy.spatial.transform import Rotation

    R = np.asarray(R, np.float64)
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_euler("ZXY").reshape(R.shape[:-2] + (3,))


def _slerp_euler(times: np.ndarray, ypr: np.ndarray, t: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation, Slerp

    if len(times) == 1:
        return np.repeat(ypr, len(t), axis=0)
    s = Slerp(times, Rotation.from_euler("ZXY", ypr))
    return s(np.clip(t, times[0], times[-1])).as_euler("ZXY")
