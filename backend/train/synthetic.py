"""A synthetic head dataset in the dataset layout contract, without Blender: for smoke runs, the training benchmark
and tests (`headforge dataset build` makes the real ones).

Each head is an analytic render through the rig's own cameras (backend/cameras.py, the 96-view orbit): a shaded
sphere in the identity's colour with two dark eyes and a mouth whose height is the expression; alpha is the
silhouette. With `landmarks=True` a `landmarks.json` gives the mouth points of every view that faces them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..cameras import project, rig_cameras, save_cameras_json

HEAD_RADIUS = 0.1


def render_head(cam: dict, colour, mouth: float) -> np.ndarray:
    """uint8 RGBA [S, S, 4] of the sphere head seen by a cameras.json entry (OpenCV K, w2c)."""
    S = int(cam["width"])
    K, w2c = np.asarray(cam["K"]), np.asarray(cam["w2c"])
    c2w = np.linalg.inv(w2c)
    v, u = np.mgrid[0:S, 0:S].astype(np.float64)
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d = d_cam @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = c2w[:3, 3]
    b = d @ o
    disc = b ** 2 - (o @ o - HEAD_RADIUS ** 2)
    hit = disc > 0
    t = -b - np.sqrt(np.where(hit, disc, 0))
    n = (o + t[..., None] * d) / HEAD_RADIUS
    light = np.clip(n @ np.array([0.3, -0.8, 0.5]) / np.linalg.norm([0.3, -0.8, 0.5]), 0, 1)
    rgb = np.asarray(colour, np.float64)[None, None] * (0.45 + 0.55 * light[..., None])
    for eye in ((0.35, -0.85, 0.3), (-0.35, -0.85, 0.3)):
        e = np.asarray(eye) / np.linalg.norm(eye)
        rgb[(n @ e) > 0.985] = 0.05
    mouth_dir = np.array([0.0, -0.9, -0.4]) / np.linalg.norm([0.0, -0.9, -0.4])
    lateral = n[..., 0]
    vertical = n @ np.array([0.0, 0.4, -0.9]) / np.linalg.norm([0.0, 0.4, -0.9])
    in_mouth = ((n @ mouth_dir) > 0.8) & (np.abs(lateral) < 0.3) & (np.abs(vertical - 0.4) < 0.04 + 0.12 * mouth)
    rgb[in_mouth] = (0.5, 0.1, 0.1)
    rgba = np.zeros((S, S, 4))
    rgba[..., :3] = np.where(hit[..., None], rgb, 0.0)
    rgba[..., 3] = hit
    return (np.clip(rgba, 0, 1) * 255).round().astype(np.uint8)


def mouth_points(cam: dict, mouth: float) -> np.ndarray | None:
    """Pixel positions of a few points around the mouth (for a landmarks.json), None when it faces away."""
    pts = []
    for x in (-0.2, 0.0, 0.2):
        for dz in (-0.05 * mouth, 0.05 * mouth):
            p = np.array([x, -0.9, -0.4 + dz])
            pts.append(HEAD_RADIUS * p / np.linalg.norm(p))
    pts = np.asarray(pts)
    c2w = np.linalg.inv(np.asarray(cam["w2c"]))
    if np.mean((c2w[:3, 3] - pts) @ (pts.mean(0) / np.linalg.norm(pts.mean(0)))) <= 0:
        return None
    uv, _ = project(pts, cam)
    return uv


def make_dataset(root: Path, identities: dict, size: int = 64, landmarks: bool = False) -> Path:
    """identities {id: (rgb colour, mouth, split)} -> a dataset folder in the contract layout."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    seqs = []
    cams = rig_cameras(size)
    for sid, (colour, mouth, split) in identities.items():
        views = root / sid / "views"
        views.mkdir(parents=True, exist_ok=True)
        lm = {}
        for cam in cams:
            Image.fromarray(render_head(cam, colour, mouth), "RGBA").save(views / f"{cam['index']:03d}.png")
            if landmarks:
                pts = mouth_points(cam, mouth)
                if pts is not None:
                    lm[str(cam["index"])] = pts.tolist()
        save_cameras_json(views / "cameras.json", cams)
        (root / sid / "meta.json").write_text(json.dumps({"identity_embedding": None, "expression": {},
                                                          "source": "synthetic sphere", "licence": "CC0"}))
        if landmarks:
            (root / sid / "landmarks.json").write_text(json.dumps({"size": size, "views": lm}))
        seqs.append({"id": sid, "split": split, "identity": sid, "source": "synthetic", "licence": "CC0",
                     "kind": "mesh"})
    (root / "manifest.json").write_text(json.dumps({"format": "headforge-dataset", "version": 1, "size": size,
                                                    "sequences": seqs}))
    return root
