"""Photo-quality measurements of one face, each a number a test can check and a threshold that turns it into
a warning or an error. All measures work on the face aligned to ArcFace's 112-pixel five-point template, so they
do not depend on the photo's resolution or the face's size.
"""
from __future__ import annotations

import numpy as np

from .landmarks import dlib_box

# ArcFace's 112×112 template for the five keypoints (image order: eye, eye, nose, mouth corner, mouth corner).
TEMPLATE_112 = np.array([[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]])

# Below: error face.too_small. Measured with landmarks.UPSAMPLE_TO_PX (tests/face/test_small_faces.py): the
# astronaut shrunk to a 33–35 px face keeps its mesh and 68 points within 0.6–0.9 % of the face size of the
# full-size photo's (both runtimes; 0.3 % at 80 px); at 25 px the mesh drifts to 1.2–1.4 %. The 240p astronaut
# (a 49 px face, once refused) is analysed, with the face.small warning.
MIN_FACE_PX = 32.0
SMALL_FACE_PX = 128.0  # below: warning face.small
MAX_OUTSIDE = 0.12  # fraction of the face box outside the photo above which the face counts as cut
BLUR_MIN = 40.0  # Laplacian variance of the aligned face below which it is "very blurry"
DARK_MAX = 45.0  # median face luminance (0..255) below which the face is "very dark"
BRIGHT_MIN = 235.0  # median face luminance above which the face is washed out
WEAK_SCORE = 0.6  # detector confidence below which the detection is "weak" (stylised, painted, odd angle)
EYES_DARK = 0.3  # eye-region / skin luminance ratio below which the eyes may be covered (sunglasses) ...
EYES_BRIGHT = 0.15  # ... when also fewer than this fraction of eye pixels are skin- or sclera-bright
LIP_RED = 3.0  # Lab a units the lips must be redder than the cheeks; below: the mouth is covered (mask)
MIN_CHROMA = 3.0  # skin chroma below which the photo counts as black-and-white (no colour test)


def align_112(rgb: np.ndarray, kps5: np.ndarray) -> np.ndarray:
    """The face warped by a similarity transform onto ArcFace's 112² five-point template (112, 112, 3)."""
    import cv2

    m, _ = cv2.estimateAffinePartial2D(np.asarray(kps5, np.float32), TEMPLATE_112.astype(np.float32),
                                       method=cv2.LMEDS)
    if m is None:
        raise ValueError("degenerate keypoints")
    return cv2.warpAffine(rgb, m, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def outside_fraction(bbox: np.ndarray, image_size: tuple[int, int]) -> float:
    """Fraction of the face box's area that lies outside the photo."""
    w, h = image_size
    x1, y1, x2, y2 = bbox
    area = max((x2 - x1) * (y2 - y1), 1e-9)
    ix = max(0.0, min(x2, w) - max(x1, 0.0))
    iy = max(0.0, min(y2, h) - max(y1, 0.0))
    return float(1.0 - ix * iy / area)


def keypoint_box(kps5: np.ndarray) -> np.ndarray:
    """The face box (x1, y1, x2, y2) the five keypoints imply: a square of 2.35 eye–mouth distances around
    the middle of the eyes and mouth (dlib's face box; see landmarks.dlib_box)."""
    return np.array(dlib_box(np.asarray(kps5, dtype=np.float64)))


def sharpness(face112: np.ndarray) -> float:
    """Variance of the Laplacian of the aligned face's inner region (higher = sharper)."""
    import cv2

    g = cv2.cvtColor(face112, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(g, cv2.CV_32F)[28:100, 24:88].var())


def luminance(face112: np.ndarray) -> float:
    """Median luminance (0..255) of the inner face."""
    g = face112[30:100, 30:82].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(np.median(g))


def _box(img, cx, cy, w, h):
    return img[int(cy - h / 2):int(cy + h / 2), int(cx - w / 2):int(cx + w / 2)].reshape(-1, img.shape[-1])


def occlusion(face112: np.ndarray) -> dict:
    """Measures of covered eyes and mouth on the aligned face.

    eyes_ratio: the eye regions' median luminance over the skin reference's (nose bridge and upper cheeks);
    eyes_bright: the fraction of eye-region pixels at least 60 % as bright as that skin (sclera, lids, skin).
    Sunglasses bring both near 0; painted faces with dark outlines lower the first but not the second.
    lip_red: how much redder (Lab a) the brightest-red tenth of the mouth region is than the cheeks; lips are
    redder than skin, a mask, a hand or a box over the mouth is not. skin_chroma ~ 0 flags a black-and-white
    photo, where the colour measure does not apply.
    """
    import cv2

    lab = cv2.cvtColor(face112, cv2.COLOR_RGB2LAB).astype(np.float32)  # L 0..255, a, b offset by 128
    t = TEMPLATE_112
    skin = np.concatenate([_box(lab, 56, 58, 8, 12), _box(lab, 34, 70, 10, 8), _box(lab, 78, 70, 10, 8)])
    eyes = np.concatenate([_box(lab, t[0, 0], t[0, 1], 18, 8), _box(lab, t[1, 0], t[1, 1], 18, 8)])
    skin_l = max(float(np.median(skin[:, 0])), 1.0)
    cheeks = np.concatenate([_box(lab, 30, 76, 10, 10), _box(lab, 82, 76, 10, 10)])
    mouth = _box(lab, 56, 93, 28, 10)
    return {
        "eyes_ratio": round(float(np.median(eyes[:, 0])) / skin_l, 3),
        "eyes_bright": round(float(np.mean(eyes[:, 0] > 0.6 * skin_l)), 3),
        "lip_red": round(float(np.percentile(mouth[:, 1], 90) - np.median(cheeks[:, 1])), 2),
        "skin_chroma": round(float(np.abs(skin[:, 1:] - 128.0).mean()), 2),
    }
