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


def job_figures(job: Path) -> dict:
    """eye_ring and lip_contrast of an instant-mode job folder."""
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
    return {"lids": eye_ring(model, identity, atlas), "lip_contrast_de": de, "lip_contrast_dl": dl,
            "lips_minus_skin_atlas": a.round(1).tolist(), "lips_minus_skin_photo": p.round(1).tolist()}


def main(argv=None):
    use_shared_ict()
    for job in (argv if argv is not None else sys.argv[1:]):
        f = job_figures(Path(job))
        print(f"{job}: lids over the skin round them {f['lids'][0]:.3f} (right) {f['lids'][1]:.3f} (left); lips "
              f"minus skin (L*a*b*) atlas {f['lips_minus_skin_atlas']} photo {f['lips_minus_skin_photo']}: ΔE "
              f"{f['lip_contrast_de']:.1f}, ΔL* {f['lip_contrast_dl']:+.1f}")


if __name__ == "__main__":
    main()
