"""A head model's Lambert preview: the parts' default colours (headmodel/parts.py) under one directional light."""
from __future__ import annotations

import numpy as np

from ..headmodel.parts import vertex_albedo, visible_faces
from .raster import interpolate, project, rasterize, vertex_normals


def render_shaded(model, verts: np.ndarray, K: np.ndarray, w2c: np.ndarray, size: tuple[int, int],
                  albedo: np.ndarray | None = None, background=0.5, light=(0.3, -1.0, 0.4)):
    """Lambert render (H, W, 3) float in [0, 1] + (tri_id (H, W), bary (H, W, 3)) of `verts` (V, 3)."""
    w, h = size
    F = model.faces[visible_faces(model)]
    xy, z = project(verts, K, w2c)
    tid, bary, _ = rasterize(xy, z, F, h, w, cull_backfaces=True)
    albedo = vertex_albedo(model, verts) if albedo is None else albedo
    attr = interpolate(tid, bary, F, np.concatenate([vertex_normals(verts, F), albedo], axis=1))
    L = np.asarray(light, np.float64)
    L /= np.linalg.norm(L)
    shade = np.clip(attr[..., :3] @ L, 0, 1)[..., None] * 0.75 + 0.3
    rgb = np.where((tid >= 0)[..., None], attr[..., 3:] * shade, background)
    return np.clip(rgb, 0, 1), tid, bary, F
