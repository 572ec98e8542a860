"""An expression's folds lifted out of the neutral head's skin atlas.

A smiling or squinting photo shows folds the head model makes only smoothly: the nasolabial folds and the mouth's
corners of a big smile, the creases under and beside squinted eyes. Their shading is dark and narrow, so the light
divided out on the model's normals leaves them in the texture, and the neutralised head wears them as a dark
"moustache" and rings round the eyes. Here a grey closing of the atlas's log luminance (a disc of FOLD_MM) finds
what is darker than the skin round it and narrower than the disc, and that darkness is lifted, by LIFT times the
photo's expression strength: a neutral photo's atlas is left exactly as it is, and only the skin round the mouth
(a smile) and below and beside the eyes (a squint, or a smile's cheeks) is touched, never the lips, the nostrils,
the eyes' openings or the brows.

Measured 2026-12-07. Ground truth (benchmarks/complete_head_expression.py, dataset heads photographed smiling with
fold shading painted on, around the mouth / the eyes, mean |error| of 255): 14.2 / 11.9 → 13.1 / 11.8 (KEEP 0:
11.8 / 11.3). Identity (benchmarks/complete_head_identity.py, dlib distance photo → render at its pose / +30° /
−30°; then the neutral rig): group face 2 (laughing, a dark "moustache" before) 0.470 / 0.630 / 0.485 → 0.451 /
0.617 / 0.473, neutral 0.545 / 0.619 / 0.567 → 0.535 / 0.597 / 0.566; the astronaut (a milder smile whose folds are
part of her look) 0.449 / 0.482 / 0.483 → 0.475 / 0.500 / 0.506, neutral 0.501 / 0.506 / 0.504 → 0.532 / 0.523 /
0.522. KEEP trades the two: at 0 the astronaut lost 0.10 at her pose; at 0.2 both are as before.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..headmodel.arkit import ict_weights_to_arkit
from ..render.image import LUMA
from .texture import lip_region, skin_faces, texel_surface

FOLD_MM = 8.0  # the closing's disc radius: folds narrower than twice this are lifted
LIFT = 0.85  # the share of a fold's darkness lifted at full expression strength, ...
KEEP = 0.1  # ... beyond this much (log luminance): a fold's first KEEP of darkness stays (see the docstring)
SMILE_RANGE = (0.2, 0.7)  # mean mouthSmile from which the mouth's folds are lifted at all, and fully
SQUINT_RANGE = (0.2, 0.7)  # mean of the larger of eyeSquint and cheekSquint per side: the same for the eyes'
MOUTH_MM = (1.5, 28.0)  # the mouth's band: this far from the outer lip line
NOSE_MM = 7.0  # ... but not within this of the nostrils' base
EYE_MM = (3.0, 16.0)  # the eyes' band: this far outside the eye opening, below the brows
_REGIONS: dict = {}


def segment_distance(pos: np.ndarray, pts: np.ndarray, closed: bool = True) -> np.ndarray:
    """Distance (metres) from each point of `pos` (..., 3) to the polyline through `pts` (N, 3)."""
    d = np.full(pos.shape[:-1], np.inf)
    ends = np.roll(pts, -1, axis=0) if closed else pts[1:]
    for a, b in zip(pts[: len(ends)], ends):
        ab = b - a
        t = np.clip(((pos - a) @ ab) / max(float(ab @ ab), 1e-12), 0, 1)
        d = np.minimum(d, np.linalg.norm(pos - (a + t[..., None] * ab), axis=-1))
    return d


def fold_regions(model, res: int) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(mouth band, eye band) (res, 2·res) float in [0, 1] with soft edges, and the atlas's texels per metre on
    the face; None for a model without UVs or 68 landmarks."""
    if model.uv is None or model.landmarks_68 is None:
        return None
    key = (model.name, model.n_vertices, res)
    if key not in _REGIONS:
        mask, pos = texel_surface(model, model.neutral, skin_faces(model), res)[:2]
        lm = model.neutral[model.landmarks_68]
        ramp = lambda d, lo, hi, soft: np.clip((d - lo) / soft, 0, 1) * np.clip((hi - d) / soft, 0, 1)  # noqa: E731
        d_lips = segment_distance(pos, lm[48:60])
        d_nose = np.linalg.norm(pos[..., None, :] - lm[31:36], axis=-1).min(axis=-1)
        mouth = ramp(d_lips, MOUTH_MM[0] / 1e3, MOUTH_MM[1] / 1e3, 0.002) * np.clip((d_nose - NOSE_MM / 1e3) / 0.002,
                                                                                   0, 1)
        eyes = np.zeros(mask.shape)
        brow_z = lm[17:27, 2].min()
        for ring in (lm[36:42], lm[42:48]):
            c = ring.mean(axis=0)
            d_eye = np.linalg.norm(pos - c, axis=-1) - np.linalg.norm(ring - c, axis=1).max()
            eyes = np.maximum(eyes, ramp(d_eye, EYE_MM[0] / 1e3, EYE_MM[1] / 1e3, 0.002)
                              * np.clip((brow_z - 0.004 - pos[..., 2]) / 0.002, 0, 1))
        step = np.linalg.norm(np.diff(pos, axis=1), axis=-1)[mask[:, 1:] & mask[:, :-1]]
        per_m = 1.0 / float(np.median(step))
        lips = lip_region(model, res)  # the lips, and the mouth's inside that lies within them in the atlas
        if lips is not None:
            mouth *= 1.0 - cv2.dilate((lips > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8))
        face = mask.copy()
        face[:, res:] = False  # the face's tile (ICT's UDIM 0): the eyes' and the mouth's own shells lie elsewhere
        _REGIONS[key] = (np.where(face, mouth, 0.0), np.where(face, eyes, 0.0), per_m)
    return _REGIONS[key]


def expression_strengths(model, expression: np.ndarray) -> tuple[float, float]:
    """(mouth, eyes) in [0, 1] from the photo's fitted expression coefficients (model.expression_names): the smile
    folds the skin round the mouth; a squint, or a smile (its cheeks push the lower lids up), round the eyes."""
    w = ict_weights_to_arkit(np.asarray(expression, np.float64), model.expression_names)
    smile = (w["mouthSmileLeft"] + w["mouthSmileRight"]) / 2
    squint = (max(w["eyeSquintLeft"], w["cheekSquintLeft"]) + max(w["eyeSquintRight"], w["cheekSquintRight"])) / 2
    ramp = lambda x, r: float(np.clip((x - r[0]) / (r[1] - r[0]), 0, 1))  # noqa: E731
    return ramp(smile, SMILE_RANGE), max(ramp(smile, SMILE_RANGE), ramp(squint, SQUINT_RANGE))


def folds_lifted(atlas: np.ndarray, model, expression: np.ndarray) -> np.ndarray:
    """The skin atlas (res, 2·res, 3) uint8 with the photo's expression folds lifted (see the module's docstring);
    the atlas itself when the photo's expression makes none."""
    smile, squint = expression_strengths(model, expression)
    regions = fold_regions(model, atlas.shape[0]) if smile > 0 or squint > 0 else None
    if regions is None:
        return atlas
    mouth, eyes, per_m = regions
    weight = LIFT * np.maximum(smile * mouth, squint * eyes)
    rgb = atlas.astype(np.float32)
    log_l = np.log(rgb @ LUMA + 1.0).astype(np.float32)
    r = max(1, int(round(FOLD_MM / 1e3 * per_m)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    deficit = np.maximum(cv2.morphologyEx(log_l, cv2.MORPH_CLOSE, disc) - log_l - KEEP, 0.0)
    out = rgb * np.exp(weight * deficit)[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
