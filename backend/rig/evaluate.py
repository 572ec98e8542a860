"""How well an instant-mode rig reproduces its photo: the rig rendered from its fitted camera with the portrait's
expression, gaze and light, compared with the photo over the face skin and over the eyes."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..fitting.landmarks import MP_EYE_L, MP_EYE_R
from ..headmodel import load_ict
from .build import build_rig, eye_rotations
from .photo_rig import hole_mask
from .render import masked_psnr, render_rig


def photo_consistency(job_dir, photo_eyes: bool = True) -> dict:
    """Render an instant-mode rig from its fitted camera, with the portrait's expression, gaze and light, and compare
    it with the photo over the face (rendered skin inside the landmarks' hull) and over the eyes (eyeball pixels inside
    the eye outlines): {psnr_db, pixels, eyes_psnr_db, eye_pixels, render, photo, mask}. `photo_eyes=False`
    renders textbook eye colours looking ahead instead of the photo's colours and gaze."""
    job = Path(job_dir)
    rec = json.loads((job / "rig" / "rig.json").read_text())
    model = load_ict()
    eyes = (rec.get("eyes") or {}) if photo_eyes else {}
    rig = build_rig(model, np.array(rec["fit"]["identity"]),
                    **{k: (tuple(v) if isinstance(v, list) else v) for k, v in eyes.items()})
    atlas = np.asarray(Image.open(job / "rig" / "skin.png"))
    photo = np.asarray(Image.open(job / "input" / "portrait.png").convert("RGB")).astype(np.float32) / 255
    K, w2c = np.array(rec["fit"]["camera"]["K"]), np.array(rec["fit"]["camera"]["w2c"])
    tex = rec.get("texture") or {}
    light = (tex["light_sh1"], tex["light_mean"]) if tex.get("light_sh1") else None  # the photo's light again
    gaze = rec["fit"].get("portrait_gaze_deg") if photo_eyes else None  # the photo's gaze on the eye bones
    img, skin = render_rig(rig, atlas, K, w2c, photo.shape[1::-1], shape_keys=rec["fit"]["portrait_expression_arkit"],
                           rotations=eye_rotations(gaze), light=light)
    analysis = json.loads((job / "face" / "analysis.json").read_text())
    mp = analysis["face"]["landmarks_478"]
    pts = np.asarray(mp or analysis["face"]["landmarks_68"])[:, :2]
    hull = np.zeros(skin.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    mask = skin & hull.astype(bool)
    outlines = [pts[list(MP_EYE_R)], pts[list(MP_EYE_L)]] if mp else [pts[36:42], pts[42:48]]
    eye_mask = hole_mask(skin.shape, outlines) & ~skin & (img.sum(axis=-1) > 0)
    return {"psnr_db": masked_psnr(img, photo, mask), "pixels": int(mask.sum()), "render": img, "photo": photo,
            "mask": mask, "eyes_psnr_db": masked_psnr(img, photo, eye_mask) if eye_mask.any() else float("nan"),
            "eye_pixels": int(eye_mask.sum())}
