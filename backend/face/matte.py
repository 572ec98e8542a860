"""Foreground matte of the portrait (person, hair and accessories): the photo's own alpha, BiRefNet, or
MediaPipe's bundled selfie segmenter as the offline fallback.

All functions return a float32 matte (H, W) in [0, 1] at the photo's resolution.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..models import registry, store
from ..models.store import open_model
from .blaze import selfie_mask
from .landmarks import mediapipe_runtime

MATTE_SOURCES = ("auto", "alpha", "birefnet", "mediapipe")
BIREFNET_IDS = ("birefnet-portrait", "birefnet")  # registry ids, preferred first
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# --- BiRefNet (ONNX export, e.g. rembg's BiRefNet-portrait) ---------------------------------------------------

def find_birefnet(models_root=None) -> Path | None:
    """The BiRefNet ONNX file, in `models_root` (the face stage's option) when given, then under the model store's
    root (the add-on's models folder, else $HEADFORGE_MODELS, else the default): the registry's folders first
    (birefnet-portrait, then birefnet), then any other birefnet*/ folder or birefnet*.onnx file there."""
    roots = ([Path(models_root).expanduser()] if models_root else []) + [store.models_root()]
    patterns = [f"{registry.get(i).folder}/*.onnx" for i in BIREFNET_IDS]
    patterns += ["birefnet*/*.onnx", "BiRefNet*/*.onnx", "birefnet*.onnx", "BiRefNet*.onnx"]
    for root in roots:
        for pattern in patterns:
            found = sorted(root.glob(pattern))
            if found:
                return found[0]
    return None


@functools.lru_cache(maxsize=1)
def _birefnet_session(path: str):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def birefnet_matte(rgb: np.ndarray, path: str | Path, size: int = 1024) -> np.ndarray:
    """BiRefNet's mask the way the reference computes it (SPEC 4.1): resize to size² bilinear, ImageNet
    normalisation, sigmoid of the finest output map, 8-bit, bicubic back to the photo's size."""
    from PIL import Image

    h, w = rgb.shape[:2]
    x = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    x = ((x - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None]  # (1, 3, size, size)
    sess = open_model(path, _birefnet_session, BIREFNET_IDS)
    outs = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})
    # The finest map: the first output at the input's resolution (rembg's export puts it first).
    fine = next((o for o in outs if o.ndim == 4 and o.shape[-1] == size), outs[0])
    logits = fine.reshape(-1, *fine.shape[-2:])[0]  # (size, size)
    prob = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    m8 = Image.fromarray((prob * 255).astype(np.uint8), "L").resize((w, h), Image.BICUBIC)
    return np.asarray(m8, dtype=np.float32) / 255.0


# --- MediaPipe selfie segmentation ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _selfie_segmenter():
    import mediapipe as mp

    return mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)  # general model, 256×256


def mediapipe_matte(rgb: np.ndarray, bbox: np.ndarray) -> np.ndarray:
    """Selfie segmentation of the person around the face box, edge-refined with a guided filter on the photo.

    The segmenter sees a window of 6 face widths around the face, clipped to the photo (the whole photo for
    portraits): enough body context for the model, and full resolution for small faces in big photos. Outside
    the window the matte is the whole photo's segmentation.
    """
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = np.asarray(bbox, dtype=np.float64)
    half = 3.0 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + 0.5 * (y2 - y1)
    wx0, wy0 = int(max(0, cx - half)), int(max(0, cy - half))
    wx1, wy1 = int(min(w, cx + half)), int(min(h, cy + half))
    full = _segment(rgb) if (wx1 - wx0) * (wy1 - wy0) < 0.8 * w * h else None
    if full is None:
        wx0, wy0, wx1, wy1 = 0, 0, w, h
        full = np.zeros((h, w), np.float32)
    full[wy0:wy1, wx0:wx1] = _segment(np.ascontiguousarray(rgb[wy0:wy1, wx0:wx1]))
    return np.clip(full, 0.0, 1.0)


def _segment(rgb: np.ndarray) -> np.ndarray:
    if mediapipe_runtime() == "opencv":  # the same model through OpenCV (Python 3.13: no mediapipe.solutions)

        mask = selfie_mask(rgb)
    else:
        mask = _selfie_segmenter().process(rgb).segmentation_mask.astype(np.float32)  # (H, W) in [0, 1]
    return guided_filter(rgb.astype(np.float32) / 255.0, mask, radius=max(2, max(rgb.shape[:2]) // 64), eps=1e-3)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a grey guide: snaps a coarse mask (H, W) to the edges of `guide` (H, W, 3)."""
    import cv2

    g = guide.mean(axis=2) if guide.ndim == 3 else guide
    k = (2 * radius + 1, 2 * radius + 1)
    mean = lambda a: cv2.boxFilter(a, cv2.CV_32F, k)  # noqa: E731
    mg, ms = mean(g), mean(src)
    a = (mean(g * src) - mg * ms) / (mean(g * g) - mg * mg + eps)
    b = ms - a * mg
    return mean(a) * g + mean(b)


def load_alpha(path: str | Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0
