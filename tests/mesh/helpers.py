"""Test inputs for the mesh stage made from the Lee Perry-Smith scan: views rendered with our rasterizer,
and a splat of flat Gaussians laid on the scan's surface (the shape a well-fitted splat has)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from headforge.backend import cameras as rig
from headforge.backend.mesh.fusion import DepthView
from headforge.backend.mesh.metrics import load_reference_head, sample_surface
from headforge.backend.mesh.raster import render_depth
from headforge.backend.mesh.texture import ColorView, render_textured

LPS = "data/heads/lee_perry_smith/LeePerrySmith_textured.glb"


def reference(shared: Path):
    return load_reference_head(shared / LPS)


def render_views(ref, size: int, rings=None):
    """(cameras, colour views, depth views) of the reference from the rig."""
    cams = rig.rig_cameras(size, rings=rings)
    colour, depth = [], []
    for cam in cams:
        img, m = render_textured(ref.vertices, ref.faces, ref.uv, ref.texture, cam["K"], cam["w2c"], size, size)
        fr = render_depth(ref.vertices, ref.faces, cam["K"], cam["w2c"], size, size)
        d = torch.where(fr.mask, fr.depth, torch.zeros_like(fr.depth)).numpy()
        colour.append(ColorView(img.astype(np.float32), m.astype(np.float32), cam["K"], cam["w2c"]))
        depth.append(DepthView(d, m.astype(np.float32), cam["K"], cam["w2c"]))
    return cams, colour, depth


def write_views(folder: Path, cams, colour) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for cam, v in zip(cams, colour):
        rgba = np.concatenate([v.image, v.alpha[..., None]], -1)
        img = np.clip(rgba * 255 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(img, "RGBA").save(folder / f"{cam['index']:03d}.png")
    rig.save_cameras_json(folder / "cameras.json", cams)


def surface_splat(ref, count: int = 20000, seed: int = 0) -> dict:
    """Flat Gaussians on the reference surface: disc σ ≈ the sample spacing, thin along the normal."""
    from headforge.backend.splat.ply import SH_C0

    pts, nrm = sample_surface(ref.vertices, ref.faces, count, seed)
    area = float(np.linalg.norm(np.cross(*(ref.vertices[ref.faces[:, i]] - ref.vertices[ref.faces[:, 0]]
                                           for i in (1, 2))), axis=1).sum() / 2)
    sigma = 0.8 * np.sqrt(area / count)
    # rotation whose third column is the normal → quaternion (w, x, y, z)
    a = np.where(np.abs(nrm[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    t = np.cross(nrm, a)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    b = np.cross(nrm, t)
    R = np.stack([t, b, nrm], 2)
    quats = _quat(R)
    from scipy.spatial import cKDTree

    # colour: the texture at the nearest vertex's uv (good enough for a test splat)
    _, vi = cKDTree(ref.vertices).query(pts)
    th, tw = ref.texture.shape[:2]
    uv = ref.uv[vi]
    rgb = ref.texture[np.clip((uv[:, 1] * th).astype(int), 0, th - 1), np.clip((uv[:, 0] * tw).astype(int), 0, tw - 1)]
    sh = ((rgb / 255.0 - 0.5) / SH_C0)[:, None, :].astype(np.float32)
    return {"means": pts.astype(np.float32), "quats": quats.astype(np.float32),
            "log_scales": np.log(np.stack([np.full(count, sigma), np.full(count, sigma),
                                           np.full(count, sigma * 0.05)], 1)).astype(np.float32),
            "opacity_logits": np.full(count, 3.0, np.float32), "sh": sh}


def add_floaters(splat: dict, count: int = 200, seed: int = 1) -> dict:
    """Opaque blobs of Gaussians well away from the head (two clusters, 3–8 cm outside its box)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, -0.16, 0.10], [0.17, 0.05, -0.02]])
    pts = centres[rng.integers(0, 2, count)] + rng.normal(0, 0.004, (count, 3))
    out = {}
    for k, v in splat.items():
        extra = {"means": pts, "quats": np.tile([1.0, 0, 0, 0], (count, 1)),
                 "log_scales": np.full((count, 3), np.log(0.003)), "opacity_logits": np.full(count, 4.0),
                 "sh": np.zeros((count,) + v.shape[1:])}[k]
        out[k] = np.concatenate([v, extra.astype(np.float32)])
    return out


def _quat(R: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    xyzw = Rotation.from_matrix(R).as_quat()
    return np.concatenate([xyzw[:, 3:], xyzw[:, :3]], 1)
