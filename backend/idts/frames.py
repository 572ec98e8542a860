"""Image <-> tensor helpers of the reference pipeline (SPEC 4.2, 4.9): framing, scaling, resizing."""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch


def prepare_frame(image: np.ndarray, size: int) -> np.ndarray:
    """Scale so the short side is `size` (cv2 bilinear, ceil), then centre-crop size x size.

    image: [H, W, 3] uint8 (any channel order; it is kept) -> [size, size, 3] uint8
    """
    h, w = image.shape[:2]
    r = max(size / h, size / w)
    resized = cv2.resize(image, (math.ceil(w * r), math.ceil(h * r)))
    rh, rw = resized.shape[:2]
    top, left = round((rh - size) / 2), round((rw - size) / 2)
    return np.ascontiguousarray(resized[top:top + size, left:left + size])


def to_signed(image_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 RGB [..., H, W, 3] -> float [..., 3, H, W] in [-1, 1] via (x/255 - 0.5) 2."""
    x = torch.as_tensor(np.asarray(image_u8)).float() / 255.0
    return ((x - 0.5) * 2.0).movedim(-1, -3).contiguous()


def resize_u8(frames: np.ndarray | torch.Tensor, size: int) -> np.ndarray:
    """cv2 bilinear resize of uint8 frames [N, H, W, 3] -> [N, size, size, 3] (the stage-2 hand-off)."""
    frames = np.asarray(frames)
    return np.stack([cv2.resize(f, (size, size)) for f in frames])
