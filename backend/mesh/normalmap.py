"""Tangent-space normal map of the high-resolution surface over the decimated mesh's UV layout (glTF
convention: red along +u, green toward image-up, blue along the low-poly normal)."""
from __future__ import annotations

import numpy as np

from ..render.image import pull_push
from .texture import TexelSurface


def face_tangents(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-face dP/du and −dP/dv (v of glTF grows downward, so −v is image-up) → ([F, 3], [F, 3])."""
    p = vertices[faces]
    t = uv[faces]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    d1, d2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    det = d1[:, 0] * d2[:, 1] - d2[:, 0] * d1[:, 1]
    det = np.where(np.abs(det) < 1e-20, 1e-20, det)
    dpdu = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) / det[:, None]
    dpdv = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) / det[:, None]
    return dpdu, -dpdv


def bake_normal_map(vertices, faces, uv, vertex_normals, texels: TexelSurface, high) -> np.ndarray:
    """(S, S, 3) uint8 tangent-space normals of `high` (trimesh) sampled at the nearest high-res vertex."""
    from scipy.spatial import cKDTree

    dpdu, up = face_tangents(vertices, faces, uv)
    n = texels.normals
    t = dpdu[texels.face]
    t = t - (t * n).sum(1, keepdims=True) * n
    t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    b = np.cross(n, t)
    b *= np.sign((b * up[texels.face]).sum(1, keepdims=True) + 1e-30)
    _, nearest = cKDTree(np.asarray(high.vertices)).query(texels.points, workers=-1)
    nh = np.asarray(high.vertex_normals)[nearest]
    local = np.stack([(nh * t).sum(1), (nh * b).sum(1), (nh * n).sum(1)], 1)
    local[:, 2] = np.maximum(local[:, 2], 0.05)
    local /= np.linalg.norm(local, axis=1, keepdims=True)
    s = texels.size
    img = np.zeros((s, s, 3))
    known = np.zeros((s, s), bool)
    img[texels.rows, texels.cols] = local * 0.5 + 0.5
    known[texels.rows, texels.cols] = True
    full = pull_push(img, known)
    return np.clip(full * 255.0 + 0.5, 0, 255).astype(np.uint8)
