"""How the skin texture looks around the eyes and the lips, on instant-mode job folders (benchmarks/complete_head.py
--sheets writes them: the astronaut, insightface's group photo's six faces, the cameraman).

    .venv/bin/python benchmarks/texture_look.py JOB [JOB ...]

Per job it prints:
- lids: per eye (the subject's right, left), the skin atlas's median luminance over the lids and the skin just round
  the eye (texels 1.5-8 mm from the rig's neutral eye outline, facing the front) over that of the skin a little
  further out (14-22 mm, below the brows and off them): 1.0 an even tone; a squinting photo's folds and closed-lid
  shading painted onto the opened lids make it a dark ring (< 1; eye_ring);
- lips: the contrast between the lips and the skin round the mouth in the atlas (CIELAB: the front of the lips
  against the skin 10-25 mm from the lip line) against the same in the photo (its pixels labelled lips against those
  labelled skin 0.15-0.4 of the eye distance from the outer lip line): the ΔE76 between the two contrasts and
  their ΔL* (lip_contrast; lips as pale as the skin: the photo's lips darker and redder than the atlas's).

Measured 2026-12-07 on complete_head.py --sheets' photos (lids right / left; lips ΔE), before -> after
creases.lids_evened and texture.lip_tone:
  group face 2 (laughing, eyes nearly shut)  0.904 / 0.967 -> 1.027 / 1.060;  13.9 -> 8.9
  group face 3 (laughing)                    0.894 / 0.946 -> 0.917 / 0.972;   4.5 -> 4.1
  group face 0 (eyeBlinkRight 0.41)          0.846 / 0.911 -> 0.875 / 0.928;  13.0 -> 5.7
  the cameraman (eyeSquintRight 0.82)        0.956 / 0.962 -> 0.985 / 0.970;  12.7 -> 0.2
  the astronaut (smiling, eyes open)         0.957 / 0.940 unchanged;           4.7 -> 4.4
  group face 1                               0.912 / 0.915 -> 0.972 / 0.966;  14.7 -> 16.6 (the skin round
                                             his mouth as red as his lips in the photo, de-tinted in the atlas)
  group face 4                               0.963 / 0.913 unchanged;           9.6 -> 6.1
  group face 5                               1.028 / 0.926 unchanged;           5.9 -> 4.2

- neck_tone: the neck's front (2-7 cm below the chin, facing the front) minus the cheeks in CIELAB, in the atlas and
  in the photo at the same texels (its pixels, shading included), and the share of those reads the parse labels skin;
- detail_ratio: the completed skin's fine detail (the neck's sides and back) over the seen skin's (the cheeks).

Measured 2026-12-07 on complete_head.py --sheets' jobs (issue 16: the neck paler than the face, the completed skin
grainy in Cycles), neck minus cheeks (ΔL*, Δa*, Δb*) atlas | photo, neck reads labelled skin, detail ratio:
  astronaut      +2.4 +1.0 -2.5 | (his suit's collar)  0.1 %  0.77
  astronaut 240  +2.3 +0.7 -3.2 | (collar)             0 %    0.52
  cameraman      -4.2  0.0  0.0 | (his coat)           0 %    0.68
  group face 0   +1.3 -3.4 -4.2 | -8.6  +7.7  -1.3     0 %    0.72
  group face 1   +4.1 -5.6 -3.7 | (collar, hair)       0 %    0.42
  group face 2   +3.9 -7.0 -8.0 | (collar)             0 %    0.31
  group face 3   +1.6 -3.8 -4.2 | -8.1 +10.2  +4.5     0 %    0.59
  group face 4   -0.5 -0.7 +1.4 | -22.1 +22.3 +13.3    0 %    0.70
  group face 5   +1.6 -0.8 -2.0 | -1.1  +0.9  +6.5     0 %    0.51
No neck read reaches the texture: the parse labels the photos' necks clothes (a shadowed neck's chroma is not the
face's skin's: face 4) or occluder (skin-coloured, but outside the neck column, which follows the face's axis, not a
tilted head's neck: face 5), and a neck in the jaw's shadow would be dropped anyway (texture.bake_photo_texture's
below-the-chin rule). The neck is completed from the face's well-seen median tone, the face's chroma carried 2-6 cm
below the jaw line (jaw_tone_field): in the atlas a little lighter (0-4 L*) and less saturated than the cheeks.
Face 4's neck is not paler than his face in the atlas (-0.5 L*); in the photo it lies in the jaw's shadow (22 L*
darker, redder), in Cycles under the sheets' sun the lower neck faces the light. The Lee Perry-Smith scan (known
albedo, its neck seen) has the neck 3.5 L* darker than the cheeks and of their chroma (+0.3, -0.1); the atlas -6.6,
-2.0, -0.6. The grain was Cycles' (complete_head.CYCLES_SAMPLES): the atlas's completed skin is smoother than its
seen skin everywhere (detail ratio under 1). Tried, not adopted: the completion's tone below the chin from the
cheeks' chroma (faded in over 3 cm below the chin): faces 0 / 3 (chosen on) -3.4 -4.2 -> -0.4 -1.3 and -3.8 -4.2 ->
-0.2 +0.4 in a*, b* (circular: the measure's own reference), the scan's novel views 23.402 / 0.7205 -> 23.396 /
0.7207, face 4 nearly unchanged (its gap is 1.6); with the cheeks' lightness too: 23.596 dB but SSIM 0.717 and the
back 27.29 -> 27.17 dB; jaw_tone_field's hold / fade 2 / 6 -> 4 / 10 cm: a*, b* gaps about 1 smaller, 23.392 dB.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: _data
from _data import use_shared_ict  # noqa: E402

LUM = np.array([0.299, 0.587, 0.114])


def _texels(model, identity: np.ndarray, res: int):
    """(mask (res, 2·res), positions (M, 3), normals (M, 3), index) of the atlas's face tile on the neutral head."""
    from headforge.backend.rig.texture import skin_faces, texel_surface

    mask, pos, nrm, _ = texel_surface(model, model.vertices(identity), skin_faces(model), res)
    mask = mask.copy()
    mask[:, res:] = False  # the face's UDIM tile
    idx = np.nonzero(mask)
    return mask, pos[idx], nrm[idx], idx


def eye_ring(model, identity: np.ndarray, atlas: np.ndarray, lids_mm=(1.5, 8.0), around_mm=(14.0, 22.0)) -> list:
    """[(right eye, left eye)] median luminance of the atlas (res, 2·res, 3) over the lids (texels `lids_mm` from
    the neutral eye outline, ICT's 68-point eye rings) over the skin `around_mm` from it below the brows' lower
    edge and off the brows (texture.brow_region), both facing the front (normal's −y over 0.5)."""
    from headforge.backend.rig.creases import segment_distance
    from headforge.backend.rig.texture import brow_region

    res = atlas.shape[0]
    mask, pos, nrm, idx = _texels(model, identity, res)
    verts = model.vertices(identity)
    lm = verts[model.landmarks_68]
    y = atlas[idx].astype(np.float64) @ LUM
    front = -nrm[:, 1] > 0.5
    brows = brow_region(model, res)
    off_brow = brows[idx] < 0.02 if brows is not None else np.ones(len(y), bool)
    below = pos[:, 2] < lm[17:27, 2].min() - 0.004
    out = []
    for ring in (lm[36:42], lm[42:48]):
        d = segment_distance(pos, ring) * 1e3
        lids = front & (d >= lids_mm[0]) & (d < lids_mm[1])
        around = front & off_brow & below & (d >= around_mm[0]) & (d < around_mm[1])
        out.append(float(np.median(y[lids]) / np.median(y[around])))
    return out


MOUTH_BAND_MM = (3.0, 15.0)  # mouth_shading: the skin this far from the rest head's outer lip line ...
NOSTRILS_MM = 6.0  # ... and at least this far from the nostrils' base


def mouth_shading(model, identity: np.ndarray, atlas: np.ndarray) -> tuple[float, float]:
    """(10th percentile, median) of the atlas's (res, 2·res, 3) luminance over the skin round the mouth (face tile,
    facing the front, MOUTH_BAND_MM from the person's rest lip line (ICT's 68-point ring), off the lips
    (texture.lip_region under 0.02) and NOSTRILS_MM from the nostrils), over the cheeks' median (neck_regions'
    cheeks). 1.0: as light as the cheeks; a smile's shading left in the texture (a dark "moustache" at the mouth's
    corners, folds) lowers the 10th percentile most; mouth_main prints it with lip_contrast's ΔE.

    Measured 2026-12-07 (issue 16: face 1's orange lips and folds, face 2's "moustache"), before -> after
    texture.lip_tone per channel and creases.mouth_evened (lips ΔE; mouth shading p10 / median):
      group face 1 (grin, fit mouthSmile 0.45)   17.2 -> 7.8;  0.799 / 0.967 -> 0.894 / 0.991
      group face 2 (laughing, 0.78)               2.6 -> 6.3;  0.846 / 0.979 -> 0.932 / 1.000
      group face 3 (0.63)                         6.7 -> 2.2;  0.947 / 1.014 -> 0.950 / 1.014
      the astronaut (0.95)                        3.9 -> 3.8;  0.913 / 1.032 -> 0.920 / 1.032
      its 240 px copy                             5.8 -> 5.8;  0.876 / 1.008 -> 0.915 / 1.008
      group face 0 (0.14)                         4.5 -> 2.5;  0.980 / 1.050 unchanged
      group face 4, 5 (neutral)                   3.2 -> 4.8, 4.1 -> 3.5;  0.881 / 0.957, 0.938 / 0.998 unchanged
      the cameraman                               3.4 unchanged;  0.883 / 0.945 unchanged
    The lips' ΔE compares the lips against the skin round them in the atlas and in the photo: where the photo's skin
    round a smiling mouth is shaded, lifting the atlas's (mouth_evened) widens the atlas's contrast (face 2 at
    MOUTH_KEEP 0: ΔL* +1.2 -> -2.1, ΔE 7.9); face 2's and face 4's lips also come out less red and yellow against
    the skin than the photo's (3-6 a*, b*) once the light's colour at the mouth is divided out of them as out of the
    skin (texture.lip_tone). Then (2026-12-08) the photo's lips read past the open mouth's margin and evened round
    that tone (texture.lips_evened), lips ΔE: face 1 7.8 -> 5.7, face 4 4.8 -> 2.8, face 5 3.5 -> 2.8, face 0 2.5 ->
    2.4, the 240 px astronaut 5.8 -> 5.1, the astronaut 3.8, the cameraman 3.4; face 2 6.3 -> 7.2, face 3 2.2 -> 3.2.
    lip_tone keeps the photo's lips-to-skin contrast against the skin 4-15 mm from the lips (face 2: photo (-12.9,
    10.8, 6.0), texture (-13.2, 10.9, 6.9) in L*a*b*); this measure's photo skin (0.15-0.4 of the eye distance out,
    (-18.3, 16.7, 10.5)) is lighter and less red on a laughing face."""
    from headforge.backend.rig.creases import segment_distance
    from headforge.backend.rig.texture import lip_region

    res = atlas.shape[0]
    mask, pos, nrm, idx = _texels(model, identity, res)
    lm = model.vertices(identity)[model.landmarks_68]
    d = segment_distance(pos, lm[48:60]) * 1e3
    d_nose = np.linalg.norm(pos[:, None, :] - lm[31:36], axis=-1).min(axis=-1) * 1e3
    y = atlas[idx].astype(np.float64) @ LUM
    band = ((-nrm[:, 1] > 0.5) & (lip_region(model, res)[idx] < 0.02) & (d >= MOUTH_BAND_MM[0])
            & (d < MOUTH_BAND_MM[1]) & (d_nose >= NOSTRILS_MM))
    pos_all, nrm_all, idx_all, chin = _head_texels(model, identity, res)
    cheeks = neck_regions(pos_all, nrm_all, chin)["cheeks"]
    ref = float(np.median(atlas[idx_all][cheeks].astype(np.float64) @ LUM))
    return float(np.percentile(y[band], 10) / ref), float(np.median(y[band]) / ref)


def mouth_main(jobs) -> None:
    """Per job folder: lip_contrast's ΔE and mouth_shading (issue 16's mouth).

        .venv/bin/python -c "import sys; sys.path.insert(0, 'benchmarks'); import texture_look as t; \\
            t.use_shared_ict(); t.mouth_main(sys.argv[1:])" JOB [JOB ...]
    """
    from PIL import Image

    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.photo_parse import parse_photo

    model = load_ict()
    for job in map(Path, jobs):
        rec = json.loads((job / "rig" / "rig.json").read_text())
        identity = np.array(rec["fit"]["identity"])
        atlas = np.asarray(Image.open(job / "rig" / "skin.png").convert("RGB"))
        photo = np.asarray(Image.open(job / "input" / "portrait.png").convert("RGB"))
        matte = np.asarray(Image.open(job / "face" / "matte.png").convert("L"), np.float32) / 255
        pts = np.asarray(json.loads((job / "face" / "analysis.json").read_text())["face"]["landmarks_478"])[:, :2]
        de, dl, _, _ = lip_contrast(model, identity, atlas, photo, parse_photo(photo, pts, matte).labels, pts)
        p10, med = mouth_shading(model, identity, atlas)
        print(f"{job}: lips ΔE {de:.1f} (ΔL* {dl:+.1f}); skin round the mouth over the cheeks p10 {p10:.3f}, "
              f"median {med:.3f}")


def lip_contrast(model, identity: np.ndarray, atlas: np.ndarray, photo: np.ndarray, labels: np.ndarray,
                 points: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(ΔE76 between the atlas's lips-minus-skin contrast and the photo's, their ΔL*, the atlas's contrast (3,), the
    photo's (3,)) in CIELAB: the atlas (res, 2·res, 3) over the front of the lips (texture.lip_region over 0.5,
    facing the front) against its skin 10-25 mm from the neutral lip line; the photo (H, W, 3) over its pixels
    labelled lips (`labels`, photo_parse) against those labelled skin 0.15-0.4 of the eye distance from the outer
    lip line of MediaPipe's `points` (478, 2)."""
    import cv2

    from headforge.backend.fitting.landmarks import MP_EYE_L, MP_EYE_R, MP_LIPS_OUTER
    from headforge.backend.render.image import rgb_to_lab
    from headforge.backend.rig.creases import segment_distance
    from headforge.backend.rig.photo_parse import LIPS, SKIN
    from headforge.backend.rig.texture import lip_region

    res = atlas.shape[0]
    mask, pos, nrm, idx = _texels(model, identity, res)
    lm = model.vertices(identity)[model.landmarks_68]
    front = -nrm[:, 1] > 0.5
    lips = (lip_region(model, res)[idx] > 0.5) & front
    d = segment_distance(pos, lm[48:60]) * 1e3
    skin = front & (lip_region(model, res)[idx] < 0.02) & (d >= 10.0) & (d < 25.0)
    med = lambda c: rgb_to_lab(np.median(c, axis=0)[None].astype(np.float32))[0].astype(np.float64)  # noqa: E731
    atlas_c = med(atlas[idx][lips]) - med(atlas[idx][skin])
    poly = np.zeros(labels.shape, np.uint8)
    cv2.fillPoly(poly, [np.round(points[list(MP_LIPS_OUTER)]).astype(np.int32)], 1)
    dist = cv2.distanceTransform(1 - poly, cv2.DIST_L2, 3)
    iod = float(np.linalg.norm(points[list(MP_EYE_R)].mean(0) - points[list(MP_EYE_L)].mean(0)))
    near = (labels == SKIN) & (dist >= 0.15 * iod) & (dist < 0.4 * iod)
    photo_c = med(photo[labels == LIPS]) - med(photo[near])
    return float(np.linalg.norm(atlas_c - photo_c)), float(atlas_c[0] - photo_c[0]), atlas_c, photo_c


NECK_Z_M = (0.02, 0.07)  # neck_tone: the neck's front this far below the chin (rest head) ...
NECK_FACING = 0.3  # ... facing the front (normal's −y over this)
CHEEK_X_M, CHEEK_Z_M = (0.03, 0.06), (0.03, 0.07)  # the cheeks: this far beside the midline, above the chin


def _head_texels(model, identity: np.ndarray, res: int):
    """(positions (M, 3), normals (M, 3), index, chin (3,)) of every skin texel (both UDIM tiles) on the person's
    head at rest (identity, no expression), and its chin (ICT's 68-point landmark 8)."""
    from headforge.backend.rig.texture import skin_faces, texel_surface

    rest = model.vertices(identity)
    mask, pos, nrm, _ = texel_surface(model, rest, skin_faces(model), res)
    idx = np.nonzero(mask)
    return pos[idx], nrm[idx], idx, rest[model.landmarks_68[8]]


def neck_regions(pos: np.ndarray, nrm: np.ndarray, chin: np.ndarray) -> dict:
    """Texel selections (M,) bool: the neck's front (NECK_Z_M below the chin, facing the front), its sides and back
    (the same heights, facing sideways or back: skin no frontal photo sees, all completed) and the cheeks."""
    x, z = pos[:, 0], pos[:, 2]
    band = (z < chin[2] - NECK_Z_M[0]) & (z > chin[2] - NECK_Z_M[1])
    cheeks = ((np.abs(x) > CHEEK_X_M[0]) & (np.abs(x) < CHEEK_X_M[1]) & (z > chin[2] + CHEEK_Z_M[0])
              & (z < chin[2] + CHEEK_Z_M[1]) & (-nrm[:, 1] > 0.5))
    return {"neck front": band & (-nrm[:, 1] > NECK_FACING), "neck side/back": band & (-nrm[:, 1] < -0.2),
            "cheeks": cheeks}


def _lab_median(rgb: np.ndarray) -> np.ndarray:
    from headforge.backend.render.image import rgb_to_lab

    return rgb_to_lab(np.median(rgb, axis=0)[None].astype(np.float32))[0].astype(np.float64)


def neck_tone(model, identity: np.ndarray, atlas: np.ndarray, view) -> dict:
    """The neck's front against the cheeks in CIELAB (median colours, neck minus cheeks), in the atlas (res, 2·res,
    3) and in the photo (texture.PhotoView, the fitted head in its expression and camera) at the same texels where
    it sees them (facing² over 0.2, whatever the parse's label; the texels' own photo pixels, shading included:
    its ΔL* is the light's as much as the skin's, its a*, b* less so), and the share of those neck reads the parse
    labels skin (the others never reach the texture)."""
    from headforge.backend.headmodel.base import mirror_map
    from headforge.backend.rig.photo_parse import SKIN
    from headforge.backend.rig.texture import _sample_view, skin_faces

    res = atlas.shape[0]
    pos, nrm, idx, chin = _head_texels(model, identity, res)
    reg = neck_regions(pos, nrm, chin)
    neck, cheeks = reg["neck front"], reg["cheeks"]
    a = atlas[idx].astype(np.float32)
    out = {"atlas": (_lab_median(a[neck]) - _lab_median(a[cheeks])).round(1).tolist(), "photo": None,
           "neck_seen_as_skin": None}
    s = _sample_view(model, skin_faces(model), res, view, mirror_map(model.neutral))
    seen_neck, seen_cheeks = neck & (s.wgt > 0.2), cheeks & (s.wgt > 0.2)
    if seen_neck.sum() >= 50 and seen_cheeks.sum() >= 50:
        out["photo"] = (_lab_median(s.col[seen_neck]) - _lab_median(s.col[seen_cheeks])).round(1).tolist()
        out["neck_seen_as_skin"] = round(float((s.lab[seen_neck] == SKIN).mean()), 3)
    return out


def detail_ratio(model, identity: np.ndarray, atlas: np.ndarray, sigma: float = 2.0) -> float:
    """The completed skin's fine detail over the seen skin's in the atlas (res, 2·res, 3): the standard deviation of
    the luminance's high-pass (less its Gaussian blur of `sigma` texels) over the neck's sides and back (no frontal
    photo sees them: all completion) over that of the cheeks (seen), each region eroded by 3 texels (no edges).
    Over 1: the completion is grainier than the skin it continues."""
    import cv2

    res = atlas.shape[0]
    pos, nrm, idx, chin = _head_texels(model, identity, res)
    reg = neck_regions(pos, nrm, chin)
    lum = atlas.astype(np.float32) @ LUM.astype(np.float32)
    hp = lum - cv2.GaussianBlur(lum, (0, 0), sigma)

    def sd(sel):
        grid = np.zeros(lum.shape, np.uint8)
        grid[idx] = sel
        core = cv2.erode(grid, np.ones((7, 7), np.uint8)).astype(bool)
        return float(hp[core].std())

    return sd(reg["neck side/back"]) / max(sd(reg["cheeks"]), 1e-6)


def job_figures(job: Path) -> dict:
    """eye_ring, lip_contrast, neck_tone and detail_ratio of an instant-mode job folder."""
    from complete_head import job_view  # benchmarks/: the job's photo as the rig stage saw it
    from PIL import Image

    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.photo_parse import parse_photo

    rec = json.loads((job / "rig" / "rig.json").read_text())
    model = load_ict()
    identity = np.array(rec["fit"]["identity"])
    atlas = np.asarray(Image.open(job / "rig" / "skin.png").convert("RGB"))
    photo = np.asarray(Image.open(job / "input" / "portrait.png").convert("RGB"))
    matte = np.asarray(Image.open(job / "face" / "matte.png").convert("L"), np.float32) / 255
    pts = np.asarray(json.loads((job / "face" / "analysis.json").read_text())["face"]["landmarks_478"])[:, :2]
    labels = parse_photo(photo, pts, matte).labels
    de, dl, a, p = lip_contrast(model, identity, atlas, photo, labels, pts)
    view = job_view(job)[2]
    return {"neck_tone": neck_tone(model, identity, atlas, view), "detail_ratio": detail_ratio(model, identity, atlas),
            "lids": eye_ring(model, identity, atlas), "lip_contrast_de": de, "lip_contrast_dl": dl,
            "lips_minus_skin_atlas": a.round(1).tolist(), "lips_minus_skin_photo": p.round(1).tolist()}


def main(argv=None):
    use_shared_ict()
    for job in (argv if argv is not None else sys.argv[1:]):
        f = job_figures(Path(job))
        print(f"{job}: lids over the skin round them {f['lids'][0]:.3f} (right) {f['lids'][1]:.3f} (left); lips "
              f"minus skin (L*a*b*) atlas {f['lips_minus_skin_atlas']} photo {f['lips_minus_skin_photo']}: ΔE "
              f"{f['lip_contrast_de']:.1f}, ΔL* {f['lip_contrast_dl']:+.1f}; neck front minus cheeks (L*a*b*) atlas "
              f"{f['neck_tone']['atlas']} photo {f['neck_tone']['photo']} (its neck reads labelled skin: "
              f"{f['neck_tone']['neck_seen_as_skin']}); completed over seen skin's fine detail {f['detail_ratio']:.2f}")


if __name__ == "__main__":
    main()
