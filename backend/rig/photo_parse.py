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
- hair: the matte's non-skin pixels above the mouth, or lower down where their colour is the hair's own; in a
  colour photo whose crown (the band above the face, less its skin-coloured part: a high forehead) differs
  from the forehead in colour, only pixels likelier the crown's colour than the forehead's and near it (not a
  shadowed cheek, a grey shirt or a wall), and only hair joined to the hair around the face's top and crown;
- clothes: the matte's non-skin pixels below the jaw (a collar, a suit, a tie);
- occluder: non-skin pixels inside the face oval (glasses, a microphone, a hand), and skin-coloured pixels away
  from the head (hands, shoulders).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fitting.landmarks import (MP_BROW_L, MP_BROW_R, MP_CHEEK_L, MP_CHEEK_R, MP_CHIN, MP_EYE_L, MP_EYE_R,
                                 MP_FACE_OVAL, MP_FOREHEAD, MP_JAW_L, MP_JAW_R, MP_LIPS_INNER, MP_LIPS_OUTER,
                                 MP_NOSE_TIP)

BACKGROUND, SKIN, HAIR, EYES, LIPS, MOUTH, CLOTHES, OCCLUDER = range(8)
LABEL_NAMES = ("background", "skin", "hair", "eyes", "lips", "mouth", "clothes", "occluder")


@dataclass
class PhotoParse:
    labels: np.ndarray  # (H, W) uint8, one of the label constants
    skin_rgb: np.ndarray  # (3,) median colour (0..1) of the face's inner skin
    hair_rgb: np.ndarray | None  # (3,) median hair colour (0..1), None where no hair was seen
    hair_fraction: float  # hair pixels over face-oval pixels (0 for a bald head)
    chroma_mean: np.ndarray  # (2,) skin chroma (Cr, Cb), for tests and reports
    chroma_icov: np.ndarray  # (2, 2)
    grey: bool = False  # a greyscale or single-toned photo (no_colour): its colours carry no hue of their own

    def mask(self, *labels: int) -> np.ndarray:
        return np.isin(self.labels, labels)


GREY_CHROMA_SPREAD = 4.0  # 8-bit levels: a photo whose chroma spans less than this carries no colour
GREY_SKIN_LOW_PERCENTILE = 10.0
CROWN_SKIN_SIGMAS = 3.0  # crown pixels within this (Mahalanobis, Y Cr Cb) of the face's skin colours are skin
CROWN_HAIR_SHARE = 0.25  # ... left out of the hair's colour when the rest is at least this share of the crown
FOREHEAD_SIGMAS = 3.0  # a skin-like pixel above the eyes this near (Mahalanobis, Y Cr Cb) the forehead's colour is it
HAIR_SIGMAS = 5.0  # a pixel further than this (Mahalanobis, Y Cr Cb) from the crown's colour is not the hair
BALD_CHROMA_SIGMAS = 3.0  # a crown within this (Mahalanobis, r g chromaticity) of the face's skin ...
BALD_JOINED_SHARE = 0.55  # ... and more than this share of it joined to the face without an edge: bald
ENCLOSED_SKIN_SHARE = 0.5  # a skin-coloured island with more than this share of skin around it is skin


def no_colour(chroma: np.ndarray) -> bool:
    """True for a greyscale or single-toned (sepia) photo: the chroma (N, 2) (Cr, Cb) of its person's pixels
    spans under GREY_CHROMA_SPREAD levels between its 1st and 99th percentiles in both channels."""
    if len(chroma) < 10:
        return False
    lo, hi = np.percentile(chroma, [1, 99], axis=0)
    return bool(np.all(hi - lo < GREY_CHROMA_SPREAD))


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


def _gauss3(x: np.ndarray):
    """Robust mean (3,), inverse covariance and log-determinant of (Y, Cr, Cb) samples (N, 3)."""
    mu, icov = _robust_gaussian(x)
    cov = np.linalg.inv(icov) + np.eye(3) * 4.0  # at least 2 levels of noise in each
    return mu, np.linalg.inv(cov), float(np.linalg.slogdet(cov)[1])


@dataclass
class CrownModel:
    """The forehead's skin against the crown's colour (the hair's), by Gaussians of the two bands either side of
    the face's top edge (side by side, so under one light: luminance counts too), per pixel (H, W)."""
    skin_likelier: np.ndarray  # bool: likelier the forehead's skin than the crown's colour
    hair_sigmas: np.ndarray  # float: Mahalanobis distance (Y, Cr, Cb) from the crown's colour
    skin_sigmas: np.ndarray  # float: ... from the forehead's


def _chromaticity(rgb: np.ndarray) -> np.ndarray:
    """(N, 2) r and g over R + G + B (in 8-bit levels) of colours (N, 3): a surface's colour whatever its shading."""
    x = rgb.astype(np.float64)
    return 255.0 * x[:, :2] / np.maximum(x.sum(axis=1, keepdims=True), 1.0)


def _bald_crown(rgb: np.ndarray, face_skin: np.ndarray, hair_sample: np.ndarray, joined: np.ndarray) -> bool:
    """True where the crown's hair sample `hair_sample` (H, W) bool is the scalp's skin in other light: its
    median chromaticity within BALD_CHROMA_SIGMAS of the face's skin's (`face_skin`) and most of it
    (BALD_JOINED_SHARE) joined to the face's skin across no colour edge (`joined`: no hairline). A turned head's
    crown is lit unlike its forehead, so the luminance alone parted a bald skull from the forehead; blond hair
    shares the skin's chromaticity but meets the forehead at a hairline, dark hair differs in chromaticity."""
    if face_skin.sum() < 20 or hair_sample.sum() < 20:
        return False
    mu, icov = _robust_gaussian(_chromaticity(rgb[face_skin]))
    d = np.median(_chromaticity(rgb[hair_sample]), axis=0) - mu
    return bool(np.sqrt(d @ icov @ d) < BALD_CHROMA_SIGMAS and joined[hair_sample].mean() > BALD_JOINED_SHARE)


def _crown_model(ycc: np.ndarray, forehead: np.ndarray, crown: np.ndarray, face_skin: np.ndarray | None,
                 separation: float = 3.0, rgb: np.ndarray | None = None,
                 joined: np.ndarray | None = None) -> CrownModel | None:
    """The two bands' colour models (CrownModel) on `ycc` (H, W, 3); None where a band is too small or the crown
    is coloured like the forehead (a bald head, a shaved one). `face_skin` (H, W) bool: the face's inner skin
    (all its shading), which tells the skin of a high forehead inside the crown's band from the hair (None: the
    whole band is the hair's sample). With the photo `rgb` (H, W, 3) and `joined` (H, W) bool (pixels joined to
    the face's skin across no colour edge) a crown that is the scalp's own skin in other light (_bald_crown) is
    None too."""
    if crown.sum() < 50 or forehead.sum() < 20:
        return None
    ms, ics, lds = _gauss3(ycc[forehead])
    # the crown's hair: where much of the band is not coloured like the face's skin, those pixels only;
    # otherwise all of it (the separation test then tells a bald head)
    x = ycc[crown]
    like_skin = np.zeros(len(x), bool)
    if face_skin is not None and face_skin.sum() >= 20:
        mf, icf, _ = _gauss3(ycc[face_skin])
        like_skin = np.sqrt(np.einsum("nd,de,ne->n", x - mf, icf, x - mf)) < CROWN_SKIN_SIGMAS
    use = ~like_skin if (~like_skin).sum() >= max(50, CROWN_HAIR_SHARE * len(x)) else np.ones(len(x), bool)
    mh, ich, ldh = _gauss3(x[use])
    if np.sqrt((mh - ms) @ ics @ (mh - ms)) < separation:
        return None
    if rgb is not None and joined is not None and face_skin is not None:
        sample = crown.copy()
        sample[crown] = use
        if _bald_crown(rgb, face_skin, sample, joined):
            return None
    d_s, d_h = ycc - ms, ycc - mh
    m_h = np.einsum("hwd,de,hwe->hw", d_h, ich, d_h)
    m_s = np.einsum("hwd,de,hwe->hw", d_s, ics, d_s)
    ll_s = -0.5 * m_s - 0.5 * lds
    ll_h = -0.5 * m_h - 0.5 * ldh
    return CrownModel(ll_s > ll_h, np.sqrt(m_h), np.sqrt(m_s))


def _joined_to_face(rgb: np.ndarray, candidates: np.ndarray, seed: np.ndarray, iod: float) -> np.ndarray:
    """(H, W) bool: candidate pixels connected to the seed through candidates and no colour edge. Edges: the
    gradient of the smoothed photo above twice the median gradient of the seed (the face's own skin)."""
    import cv2

    if not seed.any():
        return np.zeros_like(candidates)
    g = cv2.GaussianBlur(rgb.astype(np.float32), (0, 0), max(0.8, iod / 50))
    gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
    mag = np.sqrt((gx**2 + gy**2).sum(axis=2))
    edge = mag > 2.0 * np.median(mag[seed])
    w = max(3, 2 * int(round(0.04 * iod)) + 1)  # closes gaps of a few px (a soft stretch of the border)
    edge = cv2.dilate(edge.astype(np.uint8), np.ones((w, w), np.uint8)).astype(bool)
    free = ((candidates & ~edge) | seed).astype(np.uint8)
    n, comp = cv2.connectedComponents(free, connectivity=4)
    keep = np.zeros(n, bool)
    keep[np.unique(comp[seed])] = True
    keep[0] = False
    return keep[comp] & candidates


def _enclosed(mask: np.ndarray, skin: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """(H, W) bool: the connected parts of `mask` whose surroundings (a ring `kernel` wide) are mostly (over
    ENCLOSED_SKIN_SHARE) `skin`: skin-coloured islands inside the head's skin (an ear seen on a turned head, cut
    off from the face by its own outline), not hair around the head, which meets the background."""
    import cv2

    n, comp, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = np.zeros_like(mask)
    H, W = mask.shape
    pad = max(kernel.shape) // 2 + 1
    for i in range(1, n):  # each part in its own box, grown by the kernel (a whole-photo pass per part took
        x, y, w, h = stats[i, :4]  # 15 minutes and more on a 4000-pixel photo's thousands of specks)
        y0, y1, x0, x1 = max(0, y - pad), min(H, y + h + pad), max(0, x - pad), min(W, x + w + pad)
        part = comp[y0:y1, x0:x1] == i
        ring = cv2.dilate(part.astype(np.uint8), kernel).astype(bool) & ~part
        if ring.any() and skin[y0:y1, x0:x1][ring].mean() > ENCLOSED_SKIN_SHARE:
            out[y0:y1, x0:x1] |= part
    return out


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
    lum_hi = 1.15 * float(np.percentile(lum[sample], 99))  # brighter than any skin: a white wall, a collar
    skin_like = (dist < skin_sigma) & (lum > lum_lo) & person
    grey = no_colour(chroma[person])
    if grey:
        # a greyscale (or toned) photo: chroma tells nothing and every pixel would pass as skin (dark hair too,
        # leaving the seen side of the scalp skin-grey with dark islands beside the completed hair); the face's
        # inner skin's luminance range decides instead (its darkest tenth left out: hair is darker still)
        lum_lo = float(np.percentile(lum[sample], GREY_SKIN_LOW_PERCENTILE))
        skin_like = (lum >= lum_lo) & (lum <= lum_hi) & person
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
    off_face = np.abs(across - centre_across)
    # a turned head: the nose tip leaves the cheeks' middle toward the side it turned to and the skull reaches as
    # far the other way behind the face (the cheeks' distance, foreshortened, no longer spans the head): on the
    # side away from the nose the head's zones (ears, neck, scalp, surroundings) reach that much further
    turn = float((pts[MP_NOSE_TIP] - chin) @ right - centre_across)
    behind = (across - centre_across) * -np.sign(turn) > 0
    off = np.where(behind, np.maximum(off_face - abs(turn), 0.0), off_face)
    # ears: beside the oval, from the brows' height down to the jaw's corner
    ear_band = (off < half_w * 1.35) & (height > mouth_h - 0.05 * face_h) & (height < eye_h + 0.25 * face_h) & ~oval
    # neck: a column under the jaw as wide as the jaw, down to half a face below the chin (turned: the throat in
    # front and the nape behind reach past the jaw's foreshortened width by the turn, both ways)
    neck_col = ((np.maximum(off_face - abs(turn), 0.0) < jaw_half * 1.05) & (height < mouth_h)
                & (height > -0.55 * face_h) & ~oval)
    # a face turned past its far cheek (the nose tip stands out beyond the cheeks' outline): beside the oval on the
    # nose's side, from the chin to the brows, is the face's far side (the nose's flank, the far eye's corner), not
    # hair around the head
    profile_front = ((abs(turn) > half_w) & ((across - centre_across) * np.sign(turn) > half_w)
                     & (height > 0) & (height < eye_h + 0.15 * face_h) & ~oval)
    under_jaw = (off_face < jaw_half * 1.05) & (height < mouth_h) & (height > -0.55 * face_h) & ~oval

    # hair close to the skin's chroma (blond, red, grey): a second colour model from the crown just above the
    # face; where it differs from the skin's, each pixel goes to the likelier of the two
    crown = person & ~oval & (height > 1.03 * face_h) & (height < 1.25 * face_h) & (off_face < 0.7 * half_w)
    forehead = person & oval & (height > 0.85 * face_h) & (height < 0.97 * face_h) & (off_face < 0.5 * half_w)
    # the crown's hair: where much of the band is not skin-coloured (dark, grey or dyed hair), those pixels only
    # (a high forehead reaches into the band: its skin is not the hair's colour); otherwise all of it (fair hair
    # of the skin's chroma: luminance tells them apart, or nothing does on a bald head)
    face_skin = None if grey else sample & skin_like
    crown_model = _crown_model(ycc, forehead & skin_like, crown, face_skin, rgb=rgb,
                               joined=None if grey else _joined_to_face(rgb, person, face_skin, iod))
    # the hair's colour decides further below only in a colour photo (by luminance alone a dark shirt, a shadow
    # or a bright wall is hair's or skin's)
    hair_colour = None if grey else crown_model
    if crown_model is not None:  # (inside the face oval the landmarks decide)
        skin_like &= (crown_model.skin_likelier & (lum > lum_lo)) | oval

    labels = np.full((H, W), BACKGROUND, np.uint8)
    labels[person] = CLOTHES
    nonskin = person & ~skin_like
    # hair: non-skin above the mouth outside the face, plus bangs (non-skin, dark, above the eyes inside it)
    # the head's surroundings: a neighbour's hair or a dark wall further out is not this person's hair
    near_head = (off_face < 1.7 * half_w) & (height < eye_h + 1.3 * face_h)
    hair = nonskin & ~oval & (height > mouth_h) & near_head & ~profile_front
    if hair_colour is not None:
        # and of the hair's colour: not skin the chroma test left out (a shadowed cheek beyond the landmarks'
        # outline, a bright forehead), nor a colour the crown's hair has nowhere (a grey shirt, a wall)
        hair &= ~hair_colour.skin_likelier & (hair_colour.hair_sigmas < HAIR_SIGMAS)
    bangs = nonskin & oval & (height > eye_h + 0.1 * face_h) & (lum < np.median(lum[sample]) * 0.8)
    hair |= bangs
    hair_rgb = np.median(rgb[hair], axis=0) / 255.0 if hair.sum() > 50 else None
    if hair_rgb is not None and not grey:  # long hair below the mouth: non-skin pixels close to the hair's colour
        # (not in a greyscale photo: by luminance alone a dark coat or the shadowed neck is the hair's colour)
        hc = np.median(chroma[hair], axis=0)
        hl = np.median(lum[hair])
        near = (np.linalg.norm(chroma - hc, axis=-1) < 12) & (np.abs(lum - hl) < 40)
        hair |= nonskin & ~oval & near & near_head & (height > -0.3 * face_h) & ~under_jaw
    labels[hair] = HAIR
    labels[oval & nonskin & ~hair] = OCCLUDER
    # the scalp: a bald or thin-haired head's skin above the brows, as wide as the face
    scalp = (off < half_w * 1.1) & (height > eye_h) & ~oval
    head_zone = oval | ear_band | neck_col | scalp
    # outside the face oval, skin must continue the face's skin without an edge (hair the skin's colour ends
    # in one at the face's border): the skin-like pixels connected to the oval's inner skin across no edge
    head_skin = skin_like & (oval | _joined_to_face(rgb, skin_like & head_zone, inner & skin_like, iod))
    if hair_colour is not None:  # skin-like above the eyes, coloured as the forehead is: the forehead (fair hair's
        # highlights, likelier the skin than the crown's colour too, lie further from the forehead's)
        head_skin |= skin_like & scalp & (hair_colour.skin_sigmas < FOREHEAD_SIGMAS)
    labels[head_skin & head_zone] = SKIN
    labels[skin_like & ~(head_skin & head_zone)] = OCCLUDER  # hands, shoulders, skin-coloured surroundings
    # skin-coloured but cut off from the face by an edge, around the head above the mouth: blond or red hair
    # (opened: the thin rim where the silhouette meets the background is not hair)
    # Only where the crown's colour could not be told from the forehead's: where it could, skin-coloured pixels
    # are likelier the skin (the crown model kept them) and an edge only cuts off skin the landmarks missed
    light_hair = skin_like & ~head_skin & ~oval & near_head & (height > mouth_h) & (hair_colour is None)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * (2 * r) + 1, 2 * (2 * r) + 1))
    light_hair = cv2.morphologyEx(light_hair.astype(np.uint8), cv2.MORPH_CLOSE, kernel)  # across strand edges
    light_hair = cv2.morphologyEx(light_hair, cv2.MORPH_OPEN, k).astype(bool) & skin_like & ~head_skin
    light_hair &= ~profile_front & ~_enclosed(light_hair, head_skin & head_zone, k)
    labels[light_hair] = HAIR
    # an ear is skin cut off from the face by its own outline: the skin-like rest of the ears' band (and on a
    # turned head the near ear inside the head's outline, and the face's far side)
    labels[skin_like & (ear_band | profile_front) & ~light_hair & ~head_skin] = SKIN
    labels[eyes & person] = EYES
    # lips no brighter than the brightest skin: MediaPipe's outer lip line on a profile runs past the face into
    # the background (the cameraman's white wall made a white smear for lips)
    labels[lips & person & ~mouth & (lum <= lum_hi)] = LIPS
    labels[lips & person & ~mouth & (lum > lum_hi)] = OCCLUDER
    labels[mouth & person] = MOUTH
    # hair grows on the head: hair pixels not joined to the hair around the face's top and the crown (a shirt
    # or a neighbour's head beside it) are not this person's
    ring = cv2.dilate(oval.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * int(0.15 * face_h) + 1,) * 2)).astype(bool) & (height > eye_h)
    n, comp = cv2.connectedComponents((labels == HAIR).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(comp[(ring | crown) & (labels == HAIR)])] = True
    keep[0] = False
    stray = (labels == HAIR) & ~keep[comp]
    labels[stray & oval] = OCCLUDER
    labels[stray & ~oval] = CLOTHES
    # an ear's shaded folds (not skin-coloured, above the mouth: taken for hair) inside the ears' band with the
    # head's skin all round: the ear
    labels[_enclosed(labels == HAIR, labels == SKIN, k) & ear_band] = SKIN
    # clothes are worn below the jaw: the non-skin rest beside a turned face and over its ears is the head's
    labels[(labels == CLOTHES) & (profile_front | ear_band)] = OCCLUDER
    oval_n = max(int((oval & person).sum()), 1)
    hair = labels == HAIR
    hair_frac = float(hair.sum() / oval_n)
    hair_rgb = np.median(rgb[hair], axis=0) / 255.0 if hair.sum() > 50 else None
    if hair_rgb is not None and hair.sum() < 0.03 * oval_n:  # a few dark pixels at the temples: no hair
        hair_rgb = None
    return PhotoParse(labels, skin_rgb, hair_rgb, hair_frac, mu, icov, grey)
