"""The expression loss: landmark-located, differentiable comparison of the expression-bearing regions.

Landmarks of the TARGET frames (the dataset's renders) locate the mouth, eyes and brows: from
`DATASET/<id>/landmarks.json` when the dataset has it ({"size": S, "views": {"<cameras.json index>": [[x, y], ...]}},
pixels of an S-px view; any set of expression points), else from our face stage's MediaPipe mesh
(`face.landmarks.image_mesh_478`) on the target frame, keeping the lips, eyes and brows points. They need no gradient
(they come from the ground truth). The loss on the generated frame x̂₀ is then differentiable: a Gaussian weight map
around those points, and inside it the weighted L1 of the colours plus the weighted L1 of the image gradients (the
lip and eyelid contours that carry the expression), normalised by the map's mass. Frames without landmarks (back
views, no face found) do not count; a clip with none gives no term, and the run records how many frames counted.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..dataset.layout import LANDMARKS_FILE
from ..face.landmarks import image_mesh_478

# MediaPipe face-mesh indices: lips (outer + inner), right eye, left eye, right brow, left brow.
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
        78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
BROWS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
EXPRESSION_POINTS = LIPS + RIGHT_EYE + LEFT_EYE + BROWS
RADIUS_FRACTION = 0.02  # Gaussian radius of each point, as a fraction of the frame size


def expression_points(frame: np.ndarray) -> np.ndarray | None:
    """The expression points (P, 2) pixels (lips, eyes, brows of MediaPipe's 478-point mesh, EXPRESSION_POINTS) of the
    largest face in an RGB frame (H, W, 3) uint8, or None when the mesh finds no face."""
    mesh = image_mesh_478(frame)
    return None if mesh is None else mesh[list(EXPRESSION_POINTS), :2]


def region_weights(points: np.ndarray, size: int, radius: float | None = None) -> torch.Tensor:
    """Weight map [size, size] in [0, 1]: the max over points (P, 2) (x, y pixels) of exp(−d² / 2r²), each Gaussian
    cut off beyond 5 r (where it is below 4e-6)."""
    r = radius if radius is not None else RADIUS_FRACTION * size
    w = torch.zeros(size, size)
    reach = int(np.ceil(5 * r))
    for x, y in np.asarray(points, np.float64)[:, :2]:
        x0, x1 = max(0, int(np.floor(x)) - reach), min(size, int(np.ceil(x)) + reach + 1)
        y0, y1 = max(0, int(np.floor(y)) - reach), min(size, int(np.ceil(y)) + reach + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = torch.exp(-(torch.arange(x0, x1, dtype=torch.float32) - float(x)) ** 2 / (2 * r * r))
        gy = torch.exp(-(torch.arange(y0, y1, dtype=torch.float32) - float(y)) ** 2 / (2 * r * r))
        torch.maximum(w[y0:y1, x0:x1], gy[:, None] * gx[None, :], out=w[y0:y1, x0:x1])
    return w


def _grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def expression_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """pred, target [N, 3, H, W] in [-1, 1]; weights [N, H, W] -> [N] (weighted colour L1 + gradient L1)."""
    w = weights[:, None].to(pred)
    mass = w.sum(dim=(1, 2, 3)).clamp_min(1e-6) * pred.shape[1]
    d = (pred.float() - target.float())
    colour = (w * d.abs()).sum(dim=(1, 2, 3)) / mass
    (px, py), (tx, ty) = _grads(pred.float()), _grads(target.float())
    gx = (w[..., :, 1:] * (px - tx).abs()).sum(dim=(1, 2, 3)) / mass
    gy = (w[..., 1:, :] * (py - ty).abs()).sum(dim=(1, 2, 3)) / mass
    return colour + gx + gy


class LandmarkSource:
    """Expression points of a clip's target frames: per frame (P, 2) pixels at the frame's size, or None."""

    def __init__(self, dataset, mode: str = "auto"):
        self.root = Path(dataset)
        self.mode = mode
        self._files: dict[str, dict | None] = {}
        self._mesh: dict[tuple, np.ndarray | None] = {}
        self.mediapipe_error: str | None = None

    def _file(self, sid: str) -> dict | None:
        if sid not in self._files:
            p = self.root / sid / LANDMARKS_FILE
            self._files[sid] = json.loads(p.read_text()) if p.is_file() else None
        return self._files[sid]

    def _mediapipe(self, sid: str, view: int, frame: np.ndarray) -> np.ndarray | None:
        key = (sid, view, frame.shape[0])
        if key not in self._mesh:
            pts = None
            if self.mediapipe_error is None:
                try:
                    pts = expression_points(frame)
                except Exception as e:  # noqa: BLE001  (mediapipe missing or broken: the term is then off)
                    self.mediapipe_error = f"{type(e).__name__}: {e}"
            self._mesh[key] = pts
        return self._mesh[key]

    def points(self, sid: str, views: list[int], frames: np.ndarray) -> list[np.ndarray | None]:
        """frames uint8 [T, R, R, 3] of views (cameras.json indices) of sequence `sid`."""
        size = frames.shape[1]
        data = self._file(sid) if self.mode in ("auto", "file") else None
        out = []
        for v, f in zip(views, frames):
            pts = None
            if data is not None:
                raw = data.get("views", {}).get(str(v))
                if raw:
                    pts = np.asarray(raw, np.float64)[:, :2] * (size / float(data.get("size", size)))
            elif self.mode in ("auto", "mediapipe"):
                pts = self._mediapipe(sid, v, f)
            out.append(pts)
        return out
