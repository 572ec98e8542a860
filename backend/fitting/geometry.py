"""Closest points on triangle meshes (numpy + a KD-tree of triangle centroids; no rtree needed)."""
from __future__ import annotations

import numpy as np


def closest_point_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest points (N, 3) on triangles (a, b, c) (N, 3 each) to points p (N, 3) (Ericson, RTCD 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = np.where(np.abs(va + vb + vc) < 1e-30, 1e-30, va + vb + vc)
    v = vb / denom
    w = vc / denom
    out = a + ab * v[:, None] + ac * w[:, None]  # interior
    # edge regions
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ab = d1 / (d1 - d3)
        t_ac = d2 / (d2 - d6)
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    out[m] = a[m] + ab[m] * t_ab[m, None]
    m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    out[m] = a[m] + ac[m] * t_ac[m, None]
    m = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
    out[m] = b[m] + (c[m] - b[m]) * t_bc[m, None]
    # vertex regions
    m = (d1 <= 0) & (d2 <= 0)
    out[m] = a[m]
    m = (d3 >= 0) & (d4 <= d3)
    out[m] = b[m]
    m = (d6 >= 0) & (d5 <= d6)
    out[m] = c[m]
    return out


class SurfaceQuery:
    """Closest-point queries against a fixed triangle mesh (verts (V, 3), faces (F, 3))."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, k: int = 12):
        from scipy.spatial import cKDTree

        self.verts = np.asarray(verts, np.float64)
        self.faces = np.asarray(faces, np.int64)
        tri = self.verts[self.faces]
        self.centroids = tri.mean(axis=1)
        self.radius = np.linalg.norm(tri - self.centroids[:, None], axis=2).max()
        self.tree = cKDTree(self.centroids)
        self.k = min(k, len(self.faces))

    def closest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """points (N, 3) → (closest (N, 3), distance (N,), triangle (N,))."""
        p = np.asarray(points, np.float64)
        _, cand = self.tree.query(p, k=self.k)  # (N, k)
        cand = cand.reshape(len(p), -1)
        f = self.faces[cand]  # (N, k, 3)
        P = np.repeat(p, cand.shape[1], axis=0)
        q = closest_point_on_triangles(P, self.verts[f[..., 0]].reshape(-1, 3), self.verts[f[..., 1]].reshape(-1, 3),
                                       self.verts[f[..., 2]].reshape(-1, 3)).reshape(len(p), -1, 3)
        d = np.linalg.norm(q - p[:, None], axis=2)
        j = d.argmin(axis=1)
        r = np.arange(len(p))
        return q[r, j], d[r, j], cand[r, j]


def barycentric(points: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (N, 3) of points (N, 3) in triangles (N, 3, 3)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    v0, v1, v2 = b - a, c - a, points - a
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    den = np.where(np.abs(d00 * d11 - d01 * d01) < 1e-30, 1e-30, d00 * d11 - d01 * d01)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    return np.stack([1 - v - w, v, w], axis=1)
