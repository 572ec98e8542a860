"""Foreground matte of the portrait (person, hair and accessories): the photo's own alpha, BiRefNet, or
MediaPipe's bundled selfie segmenter as the offline fallback.

All functions return a float32 matte (H, W) in [0, 1] at the photo's resolution.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

MATTE_SOURCES = ("auto", "alpha", "birefnet", "mediapipe")
BIREFNET_IDS = ("birefnet-portrait", "birefnet")  # registry ids, preferred first
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# --- BiRefNet (ONNX export, e.g. rembg's BiRefNet-portrait) ---------------------------------------------------

def find_birefnet(models_root=None) -> Path | None:
    """The BiRefNet ONNX file: from the model registry when it knows one, else under the models folders."""
    try:  # the registry (backend/models) is optional here: absent or failing means "look in folders"
        from ..models import registry  # type: ignore[attr-defined]

        for model_id in BIREFNET_IDS:
            for fn_name in ("local_path", "path"):
                fn = getattr(registry, fn_name, None)
                if fn is None:
                    continue
                try:
                    p = fn(model_id)
                except Exception:  # noqa: BLE001  (unknown id or not downloaded)
                    continue
                if p:
                    p = Path(p)
                    found = sorted(p.glob("*.onnx")) if p.is_dir() else [p]
                    if found and found[0].is_file():
                        return found[0]
    except Exception:  # noqa: BLE001
        pass
    roots = [Path(models_root).expanduser()] if models_root else []
    if os.environ.get("HEADFORGE_MODELS"):
        roots.append(Path(os.environ["HEADFORGE_MODELS"]).expanduser())
    roots.append(Path.home() / ".u2net")  # rembg's download folder
    for root in roots:
        for pattern in ("birefnet*/*.onnx", "BiRefNet*/*.onnx", "birefnet*.onnx", "BiRefNet*.onnx"):
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
    sess = _birefnet_session(str(path))
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


def mediapipe_matte(rgb: np.ndarray, bbox: np.ndarray, work: int = 512) -> np.ndarray:
    """Selfie segmentation of the head-and-shoulders window around the face box, edge-refined with a guided
    filter on the photo, pasted into the whole photo's (coarser) segmentation."""
    import cv2

    from .landmarks import crop_window

    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = bbox
    side = 3.2 * max(x2 - x1, y2 - y1)  # room for hair above and shoulders below
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + 0.25 * (y2 - y1)
    window = (cx - side / 2, cy - side / 2, side)
    patch = crop_window(rgb, window, work)
    mask = _selfie_segmenter().process(patch).segmentation_mask.astype(np.float32)  # (work, work) in [0, 1]
    mask = guided_filter(patch.astype(np.float32) / 255.0, mask, radius=max(2, work // 64), eps=1e-3)
    s = work / side
    inv = np.array([[1 / s, 0, window[0]], [0, 1 / s, window[1]]], dtype=np.float64)  # patch → photo
    full = cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    outside = full < -0.5
    if outside.any():  # beyond the window (shoulders, other people): the whole photo's coarser segmentation
        coarse = _selfie_segmenter().process(np.ascontiguousarray(rgb)).segmentation_mask.astype(np.float32)
        full[outside] = coarse[outside]
    return np.clip(full, 0.0, 1.0)


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
