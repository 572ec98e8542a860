"""A smiling (or squinting) photo neutralised, against ground truth: dataset ICT-FaceKit heads (backend/dataset/
ict_heads: a sampled identity, a painted albedo laid out as the rig's skin atlas) photographed at yaw 0 wearing an
expression, run through `headforge run --mode instant`; the rig's skin atlas (the neutral head's texture) against
the head's own albedo, texel by texel, around the mouth and the eyes, where an expression's folds and a misfitted
lip line end up when the face is neutralised. The same head photographed without the expression is the control:
what the expression costs is the difference.

    .venv/bin/python benchmarks/complete_head_expression.py [--size 384] [--heads 3] [--out DIR]

Per head and expression, per region (the lips; the skin within 18 mm of the lips; the lids and the skin within
12 mm of the eyes' opening; all the front of the face): mean |error| (of 255) and texel SSIM, after the one gain
that fits the atlas to the albedo best over the front of the face (the albedo's scale, which a photo does not
give); then the means over the heads. Saves each job's atlas beside the truth (atlas_<head>_<expression>.png).
"smile+folds" and "squint+folds" are those photos with fold shading painted on (fold_shading: the nasolabial folds
and mouth corners, the lower-lid creases and crow's feet, 45 % darker, 2.5 mm wide), which the head model's shapes
do not make and the neutral atlas should not keep.

Measured 2026-12-07 (3 heads, 384 px; around the mouth / around the eyes / face front, mean |error| of 255), before
→ after backend/rig/creases.py (a smile's and squint's folds lifted):
  smile+folds   14.2 / 11.9 / 10.3 → 13.1 / 11.8 / 10.1     smile   8.2 / 12.0 / 9.4 → 8.2 / 11.8 / 9.4
  (lifting all of the folds' darkness, creases.KEEP = 0: 11.8 / 11.3 / 9.8 and 7.7 / 11.3 / 9.2, but the real
  photos' identity suffers; see backend/rig/creases.py)
  neutral, squint, squint+folds: unchanged (the instant fit finds no squint on these renders: eyeSquint 0.0, so
  only a smile lifts the folds round the eyes); the lips' region unchanged throughout.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import use_shared_ict  # noqa: E402
from complete_head import ict_head_as_scan, make_photo, run_instant  # noqa: E402

EXPRESSIONS = {
    "neutral": {},
    "smile": {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "cheekSquintLeft": 0.4, "cheekSquintRight": 0.4},
    "open smile": {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "jawOpen": 0.3, "mouthUpperUpLeft": 0.3,
                   "mouthUpperUpRight": 0.3},
    "squint": {"eyeSquintLeft": 0.8, "eyeSquintRight": 0.8, "browDownLeft": 0.4, "browDownRight": 0.4},
}
# A real smile's and squint's folds are deeper than the head model's shapes make them: these photos wear the smile
# (the squint) with fold shading painted on (fold_shading), which the neutral atlas should not keep.
FOLDED = {"smile+folds": ("smile", "mouth"), "squint+folds": ("squint", "eyes")}
FOLD_DARK = 0.45  # the painted folds' darkest: the photo × (1 − this) on the fold's line
FOLD_MM = (2.5, 1.5)  # the line's width and the blur (σ) of its edges


def fold_lines(model, verts: np.ndarray, where: str) -> list:
    """3D polylines (n, 3) on the face of `verts` (the model's vertices, wearing the expression) where a smile's
    nasolabial folds and mouth corners ("mouth") or a squint's lower-lid creases and crow's feet ("eyes") show."""
    lm = verts[model.landmarks_68]
    out = []
    for side in (-1.0, 1.0):  # the subject's right (−X), left
        wing, corner = (lm[31], lm[48]) if side < 0 else (lm[35], lm[54])
        o = np.array([side, 0.0, 0.0])
        if where == "mouth":  # from above the nose's wing, round the mouth's corner, to below it
            out.append(np.array([wing + 0.007 * o + [0, 0, 0.004], corner + 0.009 * o + [0, 0, 0.004],
                                 corner + 0.008 * o - [0, 0, 0.012]]))
            out.append(np.array([corner + 0.003 * o + [0, 0, 0.002], corner + 0.004 * o - [0, 0, 0.005]]))
        else:  # under the lower lid, and three short lines out from the outer corner
            ring = lm[36:42] if side < 0 else lm[42:48]
            lower = ring[[3, 4, 5, 0]] if side < 0 else ring[[0, 5, 4, 3]]
            out.append(lower - [0, 0.0, 0.005])
            outer = lm[36] if side < 0 else lm[45]
            for dz in (-0.004, 0.0, 0.004):
                out.append(np.array([outer + 0.004 * o + [0, 0, dz / 2], outer + 0.013 * o + [0, 0, dz * 1.5]]))
    return out


def fold_shading(photo: np.ndarray, mask: np.ndarray, lines: list, K: np.ndarray, w2c: np.ndarray) -> np.ndarray:
    """`photo` (H, W, 3) float with the 3D `lines` drawn dark on the head (`mask`): FOLD_DARK on the line, FOLD_MM
    wide, blurred."""
    import cv2

    from headforge.backend.render.raster import project

    H, W = photo.shape[:2]
    depth = np.mean([(w2c[:3, :3] @ p + w2c[:3, 3])[2] for line in lines for p in line])
    px_per_mm = K[0, 0] / depth / 1e3
    dark = np.zeros((H * 4, W * 4), np.float32)  # drawn at 4× and averaged down: sub-pixel lines
    for line in lines:
        xy = project(line, K, w2c)[0]
        cv2.polylines(dark, [np.round((xy + 0.5) * 4 - 0.5).astype(np.int32)], False, 1.0,
                      thickness=max(1, int(round(FOLD_MM[0] * px_per_mm * 4))), lineType=cv2.LINE_AA)
    dark = cv2.resize(dark, (W, H), interpolation=cv2.INTER_AREA)
    dark = cv2.GaussianBlur(dark, (0, 0), FOLD_MM[1] * px_per_mm) * mask
    return photo * (1 - FOLD_DARK * np.clip(dark, 0, 1))[..., None]


def ict_heads(n: int, seed: int = 3) -> list:
    """`n` bald dataset heads of different identities (bald: no hair mesh or hairline in the way)."""
    from headforge.backend.dataset.ict_heads import sample_heads

    return [h for h in sample_heads(400, seed) if h.bald][:n]


def regions(model, res: int) -> dict:
    """Boolean texel masks (res, 2·res) of the neutral head's skin atlas."""
    from scipy import ndimage

    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.rig.creases import segment_distance
    from headforge.backend.rig.texture import lip_region, skin_faces, texel_surface

    mask, pos = texel_surface(model, model.neutral, skin_faces(model), res)[:2]
    lips = (lip_region(model, res) > 0.5) & mask
    lm = model.landmarks_68
    d_lips = segment_distance(pos, model.neutral[lm[48:60]])  # to the outer lip line, in metres on the head
    around_mouth = mask & ~ndimage.binary_dilation(lips, iterations=2) & (d_lips < 0.018)
    d_eyes = np.full(mask.shape, np.inf)
    for ring in (lm[36:42], lm[42:48]):
        c = model.neutral[ring].mean(axis=0)
        r = np.linalg.norm(model.neutral[ring] - c, axis=1).max()
        d_eyes = np.minimum(d_eyes, np.linalg.norm(pos - c, axis=-1) - r)
    face_tile = np.zeros(mask.shape, bool)
    face_tile[:, :res] = True  # ICT's UDIM tile 0: the face (the lips' and lids' inner shells sit elsewhere)
    mask &= face_tile
    ez = eye_height(model)
    front = mask & (pos[..., 1] < -0.05) & (pos[..., 2] < ez + 0.05) & (pos[..., 2] > ez - 0.11)
    return {"lips": lips, "around mouth": around_mouth, "around eyes": mask & (d_eyes < 0.012) & (d_eyes > -0.004),
            "face front": front}


def compare(atlas: np.ndarray, truth: np.ndarray, masks: dict) -> dict:
    """Per region (mean |error| of 255, mean texel SSIM) after the one gain that fits the atlas to the truth best
    over the front of the face (a photo gives the albedo only up to its light's scale)."""
    from skimage.metrics import structural_similarity

    a, t = atlas.astype(np.float32) / 255, truth.astype(np.float32) / 255
    f = masks["face front"]
    a = np.clip(a * float((a[f] * t[f]).sum() / max((a[f] ** 2).sum(), 1e-12)), 0, 1)
    _, ssim = structural_similarity(a, t, channel_axis=2, data_range=1.0, full=True)
    err = np.abs(a - t).mean(axis=2) * 255
    return {k: (float(err[m].mean()), float(ssim.mean(axis=2)[m].mean())) for k, m in masks.items()}


def crops(atlas: np.ndarray, truth: np.ndarray, masks: dict) -> np.ndarray:
    """Truth over result, the mouth's and the eyes' neighbourhoods side by side."""
    out = []
    for k in ("around mouth", "around eyes"):
        ys, xs = np.nonzero(masks[k])
        y0, y1, x0, x1 = ys.min() - 8, ys.max() + 8, xs.min() - 8, xs.max() + 8
        out.append(np.concatenate([truth[y0:y1, x0:x1], atlas[y0:y1, x0:x1]], axis=0))
    h = max(c.shape[0] for c in out)
    return np.concatenate([np.pad(c, ((0, h - c.shape[0]), (0, 4), (0, 0))) for c in out], axis=1)


def main(argv=None) -> int:
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--expressions", default=",".join([*EXPRESSIONS, *FOLDED]))
    args = ap.parse_args(argv)
    use_shared_ict()
    from headforge.backend.headmodel import load_ict

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="hf-expression-"))
    out.mkdir(parents=True, exist_ok=True)
    model = load_ict()
    res = 512
    masks = regions(model, res)
    names = [e.strip() for e in args.expressions.split(",")]
    table: dict = {}
    for i, head in enumerate(ict_heads(args.heads)):
        for name in names:
            expression, folds = FOLDED.get(name, (name, None))
            scan = ict_head_as_scan(model, head, EXPRESSIONS[expression], res)
            photo, mask, K, w2c = make_photo(scan, args.size)
            if folds:
                import dataclasses

                from headforge.backend.dataset.ict_heads import head_vertices

                neutral = head_vertices(model, dataclasses.replace(head, expression={}))
                verts = head_vertices(model, dataclasses.replace(head, expression=EXPRESSIONS[expression]))
                verts = verts - [0.0, 0.0, neutral[:, 2].max() - 0.12]  # as ict_head_as_scan places the head
                photo = fold_shading(photo, mask, fold_lines(model, verts, folds), K, w2c)
            tag = f"{i}_{name.replace(' ', '_').replace('+', '_')}"
            Image.fromarray((photo * 255).round().astype(np.uint8)).save(out / f"photo_{tag}.png")
            wall = run_instant(out / f"photo_{tag}.png", out / f"job_{tag}")
            atlas = np.asarray(Image.open(out / f"job_{tag}" / "rig" / "skin.png").convert("RGB"))
            truth = scan[3][:res, :2 * res]
            table[(i, name)] = compare(atlas, truth, masks)
            sheet = Image.fromarray(crops(atlas, truth, masks))
            sheet.resize((2 * sheet.width, 2 * sheet.height), Image.NEAREST).save(out / f"atlas_{tag}.png")
            row = "  ".join(f"{k} {e:5.1f} / {s:.3f}" for k, (e, s) in table[(i, name)].items())
            print(f"head {i} {name:13s} ({wall:4.1f} s): {row}", flush=True)
    print("\nmean over the heads, mean |error| of 255 / texel SSIM:")
    for name in names:
        per = [table[(i, name)] for i in range(args.heads) if (i, name) in table]
        row = "  ".join(f"{k} {np.mean([p[k][0] for p in per]):5.1f} / {np.mean([p[k][1] for p in per]):.3f}"
                        for k in masks)
        print(f"  {name:13s} {row}")
    print(f"atlas crops (truth over result): {out}/atlas_*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
