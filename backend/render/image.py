"""Image helpers of the CPU renderers: bilinear sampling at pixel coordinates and pull–push hole filling."""
from __future__ import annotations

import cv2
import numpy as np


def sample_bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples (M, C) of image (H, W, C) float32 at pixel coordinates xy (M, 2), edges replicated."""
    M = len(xy)
    cols = 1024
    n = -(-M // cols) * cols
    grid = np.zeros((n, 2), np.float32)
    grid[:M] = xy
    g = grid.reshape(-1, cols, 2)
    out = cv2.remap(image, g[..., 0], g[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(n, -1)[:M]


def pull_push(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels of `image` (H, W, C) from known ones by a coarse-to-fine average pyramid."""
    if not known.any():
        return image.copy()
    levels = []
    img = np.where(known[..., None], image, 0).astype(np.float32)
    w = known.astype(np.float32)
    while True:
        levels.append((img, w))
        if min(img.shape[:2]) <= 2:
            break
        h2, w2 = (img.shape[0] + 1) // 2, (img.shape[1] + 1) // 2
        img_s = cv2.resize(img * w[..., None], (w2, h2), interpolation=cv2.INTER_AREA)
        w_s = cv2.resize(w, (w2, h2), interpolation=cv2.INTER_AREA)
        img = np.where(w_s[..., None] > 1e-6, img_s / np.maximum(w_s[..., None], 1e-6), 0)
        w = np.minimum(w_s * 4, 1.0)
    out, wout = levels[-1]
    for img, w in reversed(levels[:-1]):
        up = cv2.resize(out, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        out = img * w[..., None] + up * (1 - w[..., None])
    return out


LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601 luma weights of sRGB colours (float64)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) float32 (OpenCV's conversion: D65, L* 0..100) of sRGB colours (..., 3) in 0..255."""
    rgb = np.asarray(rgb, np.float32)
    flat = np.clip(rgb.reshape(-1, 3), 0, 255)[None] / 255
    return cv2.cvtColor(flat, cv2.COLOR_RGB2Lab)[0].reshape(rgb.shape)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """sRGB colours (..., 3) float64 in 0..255 of CIELAB ones (..., 3): OpenCV's inverse of rgb_to_lab, which is not
    exact (±0.5 of 255): where only some colours are changed in CIELAB, convert back the change, not the round trip."""
    lab = np.asarray(lab, np.float32)
    return cv2.cvtColor(lab.reshape(-1, 3)[None], cv2.COLOR_Lab2RGB)[0].reshape(lab.shape).astype(np.float64) * 255.0
