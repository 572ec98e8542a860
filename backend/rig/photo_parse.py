"""Which photo pixels belong to the head: a label per pixel (skin, hair, eyes, lips, mouth, clothes, background,
occluder) from the face stage's person matte, MediaPipe's 478 landmarks and the person's own skin colour.

Only skin reaches the skin texture (and hair only the scalp): background, clothes and occluders (a hand, a
microphone, glasses, a collar) never do. The rules, measured against synthetic ground truth in
tests/rig/test_photo_parse.py:

- background: outside the matte (the face stage's person/hair/accessories segmentation);
- skin: the matte's pixels whose chroma (YCrCb) lies within a robust Mahalanobis distance of the chroma of the
  face's inner skin (cheeks, forehead, nose: the landmark mesh without eyes, brows and lips), inside the face
  oval, the ears' band beside it, or the neck column below the jaw;
- eyes, lips, mouth: the landmark outlines;
- hair: the matte's non-skin pixels above the mouth, or lower down where their colour is the hair's own;
- clothes: the matte's non-skin pixels below the jaw (a collar, a suit, a tie);
- occluder: non-skin pixels inside the face oval (glasses, a microphone, a hand), and skin-coloured pixels away
  from the head (hands, shoulders).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKGROUND, SKIN, HAIR, EYES, LIPS, MOUTH, CLOTHES, OCCLUDER = range(8)
LABEL_NAMES = ("background", "skin", "hair", "eyes", "lips", "mouth", "clothes", "occluder")

MP_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
                148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
MP_LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
MP_LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
MP_EYE_R = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
MP_EYE_L = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
MP_BROW_R = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
MP_BROW_L = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
MP_CHIN, MP_NOSE_TIP, MP_FOREHEAD = 152, 1, 10
MP_JAW_R, MP_JAW_L = 172, 397  # the jaw's corners
MP_CHEEK_R, MP_CHEEK_L = 234, 454  # the face's widest points (beside the eyes)


@dataclass
class PhotoParse:
    labels: np.ndarray  # (H, W) uint8, one of the label constants
    skin_rgb: np.ndarray  # (3,) median colour (0..1) of the face's inner skin
    hair_rgb: np.ndarray | None  # (3,) median hair colour (0..1), None where no hair was seen
    hair_fraction: float  # hair pixels over face-oval pixels (0 for a bald head)
    chroma_mean: np.ndarray  # (2,) skin chroma (Cr, Cb), for tests and reports
    chroma_icov: np.ndarray  # (2, 2)

    def mask(self, *labels: int) -> np.ndarray:
        return np.isin(self.labels, labels)


def _poly(shape, pts) -> np.ndarray:
    import cv2

    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(np.asarray(pts)).astype(np.int32)], 1)
    return m.astype(bool)


def _robust_gaussian(x: np.ndarray, iterations: int = 4, keep: float = 3.0):
    """Mean (D,) and inverse covariance (D, D) of samples (N, D), re-estimated without points beyond `keep` σ."""
    sel = np.ones(len(x), bool)
    for _ in range(iterations):
        mu = x[sel].mean(axis=0)
        cov = np.cov(x[sel].T) + np.eye(x.shape[1]) * 1.0  # ≥ 1 level² of chroma noise (8-bit)
        icov = np.linalg.inv(cov)
        d2 = np.einsum("nd,de,ne->n", x - mu, icov, x - mu)
        sel = d2 < keep**2
        if sel.sum() < 10:
            break
    return mu, icov


def parse_photo(photo: np.ndarray, points: np.ndarray, matte: np.ndarray | None = None,
                skin_sigma: float = 3.0) -> PhotoParse:
    """Label the pixels of `photo` (H, W, 3) uint8 given MediaPipe's 478 landmarks `points` (478, 2) px and the
    face stage's matte (H, W) in [0, 1] (None: every pixel may be the person's)."""
    import cv2

    H, W = photo.shape[:2]
    pts = np.asarray(points, np.float64)[:, :2]
    rgb = photo[..., :3]
    person = np.ones((H, W), bool) if matte is None else np.asarray(matte) > 0.5
    oval = _poly((H, W), pts[list(MP_FACE_OVAL)])
    eyes = _poly((H, W), pts[list(MP_EYE_R)]) | _poly((H, W), pts[list(MP_EYE_L)])
    lips = _poly((H, W), pts[list(MP_LIPS_OUTER)])
    mouth = _poly((H, W), pts[list(MP_LIPS_INNER)])
    brows = _poly((H, W), pts[list(MP_BROW_R)]) | _poly((H, W), pts[list(MP_BROW_L)])
    iod = float(np.linalg.norm(pts[list(MP_EYE_R)].mean(0) - pts[list(MP_EYE_L)].mean(0)))
    r = max(1, int(round(0.08 * iod)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    grow = lambda m: cv2.dilate(m.astype(np.uint8), kernel).astype(bool)  # noqa: E731

    # --- the person's skin chroma, from the face's inner skin ---------------------------------------------------
    inner = cv2.erode(oval.astype(np.uint8), kernel, iterations=2).astype(bool)
    inner &= ~grow(eyes) & ~grow(lips) & ~grow(brows) & person
    ycc = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YCrCb).astype(np.float64)
    lum = ycc[..., 0]
    sample = inner & (lum > 25) & (lum < 250)  # chroma is noise in the blacks and clipped in the whites
    if sample.sum() < 20:
        sample = oval & person
    chroma = ycc[..., 1:]
    mu, icov = _robust_gaussian(chroma[sample])
    d = chroma - mu
    dist = np.sqrt(np.einsum("hwd,de,hwe->hw", d, icov, d))
    lum_lo = max(12.0, 0.35 * np.percentile(lum[sample], 5))
    skin_like = (dist < skin_sigma) & (lum > lum_lo) & person
    skin_rgb = np.median(rgb[sample], axis=0) / 255.0

    # --- the head's geometry in the photo --------------------------------------------------------------------
    chin = pts[MP_CHIN]
    up = pts[MP_FOREHEAD] - chin
    face_h = float(np.linalg.norm(up))
    up /= max(face_h, 1e-9)
    right = np.array([up[1], -up[0]])  # image right (toward the subject's left) for an upright face
    ys, xs = np.mgrid[0:H, 0:W]
    rel = np.stack([xs - chin[0], ys - chin[1]], axis=-1)
    height = rel @ up  # px above the chin along the face's axis
    across = rel @ right
    centre_across = float(np.mean((pts[[MP_CHEEK_R, MP_CHEEK_L]] - chin) @ right))
    half_w = 0.5 * abs(float((pts[MP_CHEEK_L] - pts[MP_CHEEK_R]) @ right))
    jaw_half = 0.5 * abs(float((pts[MP_JAW_L] - pts[MP_JAW_R]) @ right))
    mouth_h = float((pts[list(MP_LIPS_OUTER)].mean(0) - chin) @ up)
    eye_h = float((pts[list(MP_EYE_R) + list(MP_EYE_L)].mean(0) - chin) @ up)
    off = np.abs(across - centre_across)
    # ears: beside the oval, from the brows' height down to the jaw's corner
    ear_band = (off < half_w * 1.35) & (height > mouth_h - 0.05 * face_h) & (height < eye_h + 0.25 * face_h) & ~oval
    # neck: a column under the jaw as wide as the jaw, down to half a face below the chin
    neck_col = (off < jaw_half * 1.05) & (height < mouth_h) & (height > -0.55 * face_h) & ~oval

    labels = np.full((H, W), BACKGROUND, np.uint8)
    labels[person] = CLOTHES
    nonskin = person & ~skin_like
    # hair: non-skin above the mouth outside the face, plus bangs (non-skin, dark, above the eyes inside it)
    # the head's surroundings: a neighbour's hair or a dark wall further out is not this person's hair
    near_head = (off < 1.7 * half_w) & (height < eye_h + 1.3 * face_h)
    hair = nonskin & ~oval & (height > mouth_h) & near_head
    bangs = nonskin & oval & (height > eye_h + 0.1 * face_h) & (lum < np.median(lum[sample]) * 0.8)
    hair |= bangs
    hair_rgb = np.median(rgb[hair], axis=0) / 255.0 if hair.sum() > 50 else None
    if hair_rgb is not None:  # long hair below the mouth: non-skin pixels close to the hair's colour
        hc = np.median(chroma[hair], axis=0)
        hl = np.median(lum[hair])
        near = (np.linalg.norm(chroma - hc, axis=-1) < 12) & (np.abs(lum - hl) < 40)
        hair |= nonskin & ~oval & near & near_head & (height > -0.3 * face_h) & ~neck_col
    labels[hair] = HAIR
    labels[oval & nonskin & ~hair] = OCCLUDER
    # the scalp: a bald or thin-haired head's skin above the brows, as wide as the face
    scalp = (off < half_w * 1.1) & (height > eye_h) & ~oval
    head_zone = oval | ear_band | neck_col | scalp
    labels[skin_like & head_zone] = SKIN
    labels[skin_like & ~head_zone] = OCCLUDER  # hands, shoulders, skin-coloured background the matte kept
    labels[eyes & person] = EYES
    labels[lips & person & ~mouth] = LIPS
    labels[mouth & person] = MOUTH
    oval_n = max(int((oval & person).sum()), 1)
    hair_frac = float(((hair & ~bangs).sum() + bangs.sum()) / oval_n)
    if hair_rgb is not None and hair.sum() < 0.03 * oval_n:  # a few dark pixels at the temples: no hair
        hair_rgb = None
    return PhotoParse(labels, skin_rgb, hair_rgb, hair_frac, mu, icov)
