"""An expression's folds lifted out of the neutral head's skin atlas.

A smiling or squinting photo shows folds the head model makes only smoothly: the nasolabial folds and the mouth's
corners of a big smile, the creases under and beside squinted eyes. Their shading is dark and narrow, so the light
divided out on the model's normals leaves them in the texture, and the neutralised head wears them as a dark
"moustache" and rings round the eyes. Here a grey closing of the atlas's log luminance (a disc of FOLD_MM) finds
what is darker than the skin round it and narrower than the disc, and that darkness is lifted, by LIFT times the
photo's expression strength: a neutral photo's atlas is left exactly as it is, and only the skin round the mouth
(a smile) and below and beside the eyes (a squint, or a smile's cheeks) is touched, never the lips, the nostrils,
the eyes' openings or the brows. A photo whose eyes are closed or nearly so (a squint, a laugh, a blink) shows no
open lids at all: the lids and the skin round them take the low frequencies of the skin further out
(lids_evened) before the folds are lifted. A smiling photo's broader shading round the mouth (the corners, the
nose's sides, the upper lip in the nose's shadow) is lifted to the tone of the skin further out (mouth_evened), at
the smile's own strength (mouth_strength), before the folds are.

Measured 2026-12-07. Ground truth (benchmarks/complete_head_expression.py, dataset heads photographed smiling with
fold shading painted on, around the mouth / the eyes, mean |error| of 255): 14.2 / 11.9 → 13.1 / 11.8 (KEEP 0:
11.8 / 11.3). Identity (benchmarks/complete_head_identity.py, dlib distance photo → render at its pose / +30° /
−30°; then the neutral rig): group face 2 (laughing, a dark "moustache" before) 0.470 / 0.630 / 0.485 → 0.451 /
0.617 / 0.473, neutral 0.545 / 0.619 / 0.567 → 0.535 / 0.597 / 0.566; the astronaut (a milder smile whose folds are
part of her look) 0.449 / 0.482 / 0.483 → 0.475 / 0.500 / 0.506, neutral 0.501 / 0.506 / 0.504 → 0.532 / 0.523 /
0.522. KEEP trades the two: at 0 the astronaut lost 0.10 at her pose; at 0.2 both are as before.
mouth_evened (2026-12-07, issue 16: group face 2's "moustache", face 1's folds): the dataset heads photographed
smiling, around the mouth (mean |error| of 255 / texel SSIM): smile+folds 12.85 / 0.805 -> 10.06 / 0.842, open smile
8.45 / 0.884 -> 8.34 / 0.887, smile 7.70 / 0.907 -> 7.71 / 0.908; three held-out heads (sample_heads' bald heads
3-5, not looked at while choosing): 13.04 / 0.781 -> 9.96 / 0.814, 9.07 / 0.846 -> 8.53 / 0.856, 8.80 / 0.863 ->
8.36 / 0.870; neutral photos unchanged; benchmarks/texture_look.py mouth_shading (the skin round the mouth's
10th-percentile luminance over the cheeks' median): face 1 0.799 -> 0.894, face 2 0.846 -> 0.932, face 3 0.947 ->
0.950, the astronaut 0.913 -> 0.920 (240 px copy 0.876 -> 0.915), the neutral faces as they were.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..headmodel.arkit import ict_weights_to_arkit
from ..render.image import LUMA, pull_push
from .texture import brow_region, lip_region, skin_faces, texel_surface

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


_NEUTRAL: dict = {}


def _neutral_texels(model, res: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask (res, 2·res), positions (res, 2·res, 3)) of the skin atlas's texels on the model's neutral head."""
    key = (model.name, model.n_vertices, res)
    if key not in _NEUTRAL:
        _NEUTRAL.clear()
        _NEUTRAL[key] = texel_surface(model, model.neutral, skin_faces(model), res)[:2]
    return _NEUTRAL[key]


def fold_regions(model, res: int) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(mouth band, eye band) (res, 2·res) float in [0, 1] with soft edges, and the atlas's texels per metre on
    the face; None for a model without UVs or 68 landmarks."""
    if model.uv is None or model.landmarks_68 is None:
        return None
    key = (model.name, model.n_vertices, res)
    if key not in _REGIONS:
        mask, pos = _neutral_texels(model, res)
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


def expression_strengths(model, expression: np.ndarray) -> tuple[float, float, float]:
    """(mouth, eyes, lids) in [0, 1] from the photo's fitted expression coefficients (model.expression_names): the
    smile folds the skin round the mouth; a squint, or a smile (its cheeks push the lower lids up), round the eyes;
    the lids are shown closed or nearly so by the eyes' own closing (per side the larger of eyeSquint, cheekSquint
    and eyeBlink; a smile alone leaves them open: lids_evened)."""
    w = ict_weights_to_arkit(np.asarray(expression, np.float64), model.expression_names)
    smile = (w["mouthSmileLeft"] + w["mouthSmileRight"]) / 2
    squint = (max(w["eyeSquintLeft"], w["cheekSquintLeft"]) + max(w["eyeSquintRight"], w["cheekSquintRight"])) / 2
    closed = (max(w["eyeSquintLeft"], w["cheekSquintLeft"], w["eyeBlinkLeft"])
              + max(w["eyeSquintRight"], w["cheekSquintRight"], w["eyeBlinkRight"])) / 2
    ramp = lambda x, r: float(np.clip((x - r[0]) / (r[1] - r[0]), 0, 1))  # noqa: E731
    return ramp(smile, SMILE_RANGE), max(ramp(smile, SMILE_RANGE), ramp(squint, SQUINT_RANGE)), \
        ramp(closed, SQUINT_RANGE)


LID_MM = (12.0, 18.0)  # lids_evened: the lids and the skin round the eyes this far from their outline, fading out ...
LID_REF_MM = (18.0, 28.0)  # ... take the low frequencies of the skin this far from it (off the brows)
LID_SIGMA_MM = 3.0  # the low frequencies: a Gaussian mean of this σ
LID_FEATURE = 0.7  # texels darker than this share of the reference (lashes, a fold's line) stay out of the mean
_LIDS: dict = {}


def lid_regions(model, res: int) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(the lids' weight (res, 2·res) in [0, 1]: 1 within LID_MM[0] of either eye's outline (ICT's 68-point rings on
    the neutral head), 0 beyond LID_MM[1] and on the brows; the reference skin (res, 2·res) bool: LID_REF_MM from
    the outline, off the brows; the face's texels per metre), on the face's tile; None without UVs or landmarks."""
    if model.uv is None or model.landmarks_68 is None:
        return None
    key = (model.name, model.n_vertices, res)
    if key not in _LIDS:
        mask, pos = _neutral_texels(model, res)
        mask = mask.copy()
        mask[:, res:] = False
        lm = model.neutral[model.landmarks_68]
        d = np.full(mask.shape, np.inf)
        near = mask & (np.abs(pos[..., 2] - lm[36:48, 2].mean()) < 0.04)  # (the distances only where they matter)
        d[near] = np.minimum(segment_distance(pos[near], lm[36:42]), segment_distance(pos[near], lm[42:48])) * 1e3
        brows = brow_region(model, res)
        off_brow = np.ones(mask.shape) if brows is None else np.clip(1.0 - brows / 0.02, 0.0, 1.0)
        weight = np.clip((LID_MM[1] - d) / (LID_MM[1] - LID_MM[0]), 0.0, 1.0) * off_brow * mask
        reference = mask & (off_brow > 0.99) & (d >= LID_REF_MM[0]) & (d < LID_REF_MM[1])
        step = np.linalg.norm(np.diff(pos, axis=1), axis=-1)[mask[:, 1:] & mask[:, :-1]]
        _LIDS[key] = (weight.astype(np.float32), reference, 1.0 / float(np.median(step)))
    return _LIDS[key]


def _mean_over(rgb: np.ndarray, sel: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W, 3) Gaussian mean (σ texels) of `rgb` (H, W, 3) over the texels `sel` (H, W) bool, continued by pull-push
    where they are too few."""
    num = cv2.GaussianBlur(rgb * sel[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(sel.astype(np.float32), (0, 0), sigma)
    ok = den > 0.05
    return pull_push(np.where(ok[..., None], num / np.maximum(den, 1e-6)[..., None], 0.0), ok)


def _tones(rgb: np.ndarray, regions: tuple, sigma_mm: float, core: float) -> tuple:
    """(weight, the reference skin's tone, the local tone) for an evening step: `regions` (weight (H, W), reference
    (H, W) bool, texels per metre); both tones Gaussian means (σ `sigma_mm`) of `rgb` (H, W, 3), the local one over
    the weight above `core` and the reference, leaving out features (texels darker than LID_FEATURE of the
    reference's tone)."""
    weight, reference, per_m = regions
    sigma = max(1.0, sigma_mm / 1e3 * per_m)
    ref = _mean_over(rgb, reference, sigma)
    plain = (rgb @ LUMA) > LID_FEATURE * (ref @ LUMA)
    return weight, ref, _mean_over(rgb, ((weight > core) | reference) & plain, sigma)


def lids_evened(rgb: np.ndarray, model, strength: float) -> np.ndarray:
    """The skin atlas (res, 2·res, 3) float with the lids' low frequencies (lid_regions) replaced, `strength` of the
    way, by the skin's round them (its Gaussian mean, LID_SIGMA_MM, continued inward by pull-push); each texel's
    detail over its own local mean is kept, and texels far darker than the reference (LID_FEATURE: lashes, a
    fold's line) stay out of the means.
    A squinting or laughing photo shows the lids closed or nearly so, the skin round them bunched into folds and
    shaded: the neutral rig opens the eyes on lids that the photo never showed open, painted from that shading and
    from the completion of the hidden lid continuing it, a dark ring round the eyes (group face 2). `strength`:
    expression_strengths' lids (the eyes' own closing; at the smile's strength the astronaut, whose lids the
    photo shows open, lost 0.29 dB of test_instant's photo consistency, 22.37 -> 22.08, for no change one sees).
    Measured 2026-12-07 (benchmarks/texture_look.py lids: the lids' median luminance over the skin's round them,
    the subject's right / left eye, before -> after): group face 2 0.904 / 0.967 -> 1.027 / 1.060, face 3 0.894 /
    0.946 -> 0.917 / 0.972, the cameraman 0.956 / 0.962 -> 0.985 / 0.970, face 0 (eyeBlinkRight 0.41: a third of
    the way) 0.846 / 0.911 -> 0.875 / 0.928, the astronaut (smiling, eyes open) unchanged. Lee Perry-Smith (a
    neutral photo the fit gives eyeSquint 0.66) novel views with lip_tone 23.38 dB / SSIM 0.717 -> 23.40 / 0.719,
    mean |error| over the lids at +45° / −45° 21.6 / 20.1 -> 21.3 / 19.4; the dataset heads (benchmarks/
    complete_head_expression.py, around the eyes, mean |error| of 255): squint+folds 15.5 -> 15.4, the rest
    unchanged (the fit finds their squints hardly: lids under SQUINT_RANGE's start). LID_MM (8, 12) with
    LID_REF_MM (12, 20) took the reference from the squint's own shaded cheek: face 2 0.960 / 0.974, the ring
    still seen below the eyes.
    Test: tests/rig/test_creases.py::test_a_closed_eyes_dark_ring_is_evened_and_its_detail_kept."""
    regions = lid_regions(model, rgb.shape[0])
    if regions is None or strength <= 0:
        return rgb
    weight, ref, local = _tones(rgb, regions, LID_SIGMA_MM, 0.0)
    return rgb + (strength * weight)[..., None] * (ref - local)


MOUTH_EVEN_MM = (16.0, 24.0)  # mouth_evened: the skin this far from the outer lip line, fading out, ...
MOUTH_REF_MM = (24.0, 34.0)  # ... is lifted to the tone of the skin this far from it (off the nose)
MOUTH_NOSE_MM = (4.0, 12.0)  # the nostrils (within the first) are left as they are; the reference is beyond the second
MOUTH_SIGMA_MM = 1.5  # the tones compared: Gaussian means of this σ
MOUTH_SMILE_RANGE = (0.15, 0.45)  # mean mouthSmile from which the skin round the mouth is lifted at all, and fully
MOUTH_KEEP = 0.1  # the first tenth of the skin's darkness under the reference stays (the smile's own look)
_MOUTHS: dict = {}


def mouth_regions(model, res: int) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(the weight (res, 2·res) in [0, 1] of the skin round the mouth: 1 within MOUTH_EVEN_MM[0] of the outer lip line
    (ICT's 68-point ring on the neutral head), 0 beyond MOUTH_EVEN_MM[1], on the lips (lip_region from 0.5) and within
    MOUTH_NOSE_MM[0] of the nostrils' base; the reference skin (res, 2·res) bool: MOUTH_REF_MM from the lip line,
    off the lips, beyond MOUTH_NOSE_MM[1] of the nostrils, off the nose's wings and tip and below the eyes; the face's
    texels per metre), on the face's tile; None without UVs or landmarks."""
    if model.uv is None or model.landmarks_68 is None:
        return None
    key = (model.name, model.n_vertices, res)
    if key not in _MOUTHS:
        mask, pos = _neutral_texels(model, res)
        mask = mask.copy()
        mask[:, res:] = False
        lm = model.neutral[model.landmarks_68]
        d, d_nose = np.full(mask.shape, np.inf), np.full(mask.shape, np.inf)
        near = mask & (np.linalg.norm(pos - lm[48:60].mean(axis=0), axis=-1) < 0.08)  # (distances where they matter)
        d[near] = segment_distance(pos[near], lm[48:60]) * 1e3
        d_nose[near] = np.linalg.norm(pos[near][:, None, :] - lm[31:36], axis=-1).min(axis=-1) * 1e3
        lips = lip_region(model, res)
        off_lips = np.ones(mask.shape) if lips is None else np.clip(1.0 - lips / 0.5, 0.0, 1.0)
        weight = (np.clip((MOUTH_EVEN_MM[1] - d) / (MOUTH_EVEN_MM[1] - MOUTH_EVEN_MM[0]), 0.0, 1.0) * off_lips
                  * np.clip((d_nose - MOUTH_NOSE_MM[0]) / 2.0, 0.0, 1.0) * mask)
        below_eyes = pos[..., 2] < lm[36:48, 2].min() - 0.012
        nose = ((np.abs(pos[..., 0] - lm[33, 0]) < MOUTH_NOSE_MM[1] / 1e3 + 0.5 * np.ptp(lm[31:36, 0]))
                & (pos[..., 2] > lm[33, 2] - 0.003))  # the nose's wings and tip, above its base
        reference = (mask & (off_lips > 0.99) & (d >= MOUTH_REF_MM[0]) & (d < MOUTH_REF_MM[1])
                     & (d_nose >= MOUTH_NOSE_MM[1]) & below_eyes & ~nose)
        step = np.linalg.norm(np.diff(pos, axis=1), axis=-1)[mask[:, 1:] & mask[:, :-1]]
        _MOUTHS[key] = (weight.astype(np.float32), reference, 1.0 / float(np.median(step)))
    return _MOUTHS[key]


def mouth_strength(model, expression: np.ndarray) -> float:
    """In [0, 1]: the photo's mean mouthSmile (its fitted expression coefficients, model.expression_names) over
    MOUTH_SMILE_RANGE. The instant fit finds smiles shallower than they are: the dataset heads photographed at
    mouthSmile 0.8 fit at 0.45-0.78, group face 1's grin at 0.45; the neutral photos at 0.0-0.08 (face 0 0.14)."""
    w = ict_weights_to_arkit(np.asarray(expression, np.float64), model.expression_names)
    smile = (w["mouthSmileLeft"] + w["mouthSmileRight"]) / 2
    return float(np.clip((smile - MOUTH_SMILE_RANGE[0]) / (MOUTH_SMILE_RANGE[1] - MOUTH_SMILE_RANGE[0]), 0.0, 1.0))


def mouth_evened(rgb: np.ndarray, model, strength: float) -> np.ndarray:
    """The skin atlas (res, 2·res, 3) float with the skin round the mouth (mouth_regions) lifted, `strength` of the
    way, to the tone of the skin further out: each texel times 1 + strength · weight · (Y_ref / Y_local − 1 −
    MOUTH_KEEP) where that is over 1, Y_ref the luminance of the reference skin's Gaussian mean (MOUTH_SIGMA_MM,
    continued inward by pull-push), Y_local that of the skin's own round the texel (texels far darker than the
    reference, LID_FEATURE: nostrils, stubble, a lash of hair, left out of the means). Only lifted, never darkened,
    the colour kept: a smile's shading is darker than the skin, its own albedo's blotches are as often lighter or
    redder.
    A smiling photo's skin round the mouth is shaded by the smile (the cheeks pushed up and forward, the folds at
    the mouth's corners and up the nose's sides, the upper lip in the nose's shadow); the head model's smile makes
    the shape only smoothly, so the light divided out on its normals leaves the shading in the texture, and the
    neutral rig wore it as a dark "moustache" at the mouth's corners (group face 2) and folds at the nose's sides
    (face 1). folds_lifted's closing lifts folds narrower than FOLD_MM only, KEEP of each and at the fit's shallow
    smile strength; this lifts the broad shading and the folds' rest.
    Measured 2026-12-07, dataset heads photographed smiling (benchmarks/complete_head_expression.py, three heads,
    around the mouth, mean |error| of 255 / texel SSIM, before -> after): smile+folds 12.85 / 0.805 -> 10.06 / 0.842,
    open smile 8.45 / 0.884 -> 8.34 / 0.887, smile 7.70 / 0.907 -> 7.71 / 0.908, neutral unchanged (three held-out
    heads: see the module's docstring). MOUTH_KEEP 0 (all the darkness lifted): smile+folds 8.76 / 0.845, smile 7.50,
    open smile 7.88, face 1's and face 2's mouth_shading 0.959 and 0.985, but the astronaut's render at the photo's
    pose and light (tests/rig/test_instant.py photo consistency, 22.0 dB asked) 22.04 -> 21.82 dB (her smile's
    shading is the photo's; 0.05: 21.95; 0.1: 22.00). Tried: the tone's difference added (lids_evened's way, lighter
    skin darkened too) at σ 3 mm: smile 8.85 / 0.904 (head 0 8.4 -> 11.3: the albedo's own lighter blotches evened
    away), smile+folds 9.39; lift-only (MOUTH_KEEP 0) at σ 3 / 2 / 1 mm: smile 7.57 / 7.58 / 7.48, smile+folds 9.33
    / 9.08 / 8.49; at SMILE_RANGE's strength (0.2, 0.7): smile+folds 9.78; the band and reference 4 mm further out
    (20-28 / 28-38 mm): smile 7.67, open smile 8.26, smile+folds 8.60; MOUTH_KEEP 0.05: smile+folds 9.17.
    Test: tests/rig/test_creases.py::test_a_smiles_broad_shading_round_the_mouth_is_lifted."""
    regions = mouth_regions(model, rgb.shape[0])
    if regions is None or strength <= 0:
        return rgb
    weight, ref, local = _tones(rgb, regions, MOUTH_SIGMA_MM, 0.5)
    up = np.maximum((ref @ LUMA) / np.maximum(local @ LUMA, 1.0) - 1.0 - MOUTH_KEEP, 0.0)
    return rgb * (1.0 + strength * weight * up)[..., None]


def folds_lifted(atlas: np.ndarray, model, expression: np.ndarray) -> np.ndarray:
    """The skin atlas (res, 2·res, 3) uint8 with the photo's expression folds lifted (see the module's docstring);
    the atlas itself when the photo's expression makes none."""
    smile, squint, lids = expression_strengths(model, expression)
    lift_mouth = mouth_strength(model, expression)
    regions = fold_regions(model, atlas.shape[0]) if max(smile, squint, lids, lift_mouth) > 0 else None
    if regions is None:
        return atlas
    mouth, eyes, per_m = regions
    weight = LIFT * np.maximum(smile * mouth, squint * eyes)
    rgb = mouth_evened(lids_evened(atlas.astype(np.float32), model, lids), model, lift_mouth)
    log_l = np.log(rgb @ LUMA + 1.0).astype(np.float32)
    r = max(1, int(round(FOLD_MM / 1e3 * per_m)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    deficit = np.maximum(cv2.morphologyEx(log_l, cv2.MORPH_CLOSE, disc) - log_l - KEEP, 0.0)
    out = rgb * np.exp(weight * deficit)[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
