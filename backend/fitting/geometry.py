"""Closest points on triangle meshes (numpy + KD-trees of triangle centroids; no rtree needed)."""
from __future__ import annotations

import itertools

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
    """Exact closest-point queries against a fixed triangle mesh (verts (V, 3), faces (F, 3)).

    The k triangles with the nearest centroids give a first distance d; every triangle whose centroid lies
    within d + its bounding radius (the only ones that can hold a closer point) is then checked too, found by
    ball queries on KD-trees of triangles grouped by size (so a few large triangles do not widen the search
    for all). Equal distances go to the lowest triangle index: the answer is the true closest point and does
    not depend on the order candidates come in."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, k: int = 12):
        from scipy.spatial import cKDTree

        self.verts = np.asarray(verts, np.float64)
        self.faces = np.asarray(faces, np.int64)
        tri = self.verts[self.faces]
        self.centroids = tri.mean(axis=1)
        self.radii = np.linalg.norm(tri - self.centroids[:, None], axis=2).max(axis=1)
        self.radius = float(self.radii.max()) if len(self.radii) else 0.0
        self.tree = cKDTree(self.centroids)
        self.k = min(k, len(self.faces))
        size_class = np.ceil(np.log2(np.maximum(self.radii / max(np.median(self.radii), 1e-30), 1.0))).astype(int)
        self.groups = []  # (triangle indices, KD-tree of their centroids, their largest radius)
        for c in np.unique(size_class):
            idx = np.nonzero(size_class == c)[0]
            self.groups.append((idx, cKDTree(self.centroids[idx]), float(self.radii[idx].max())))

    def _distances(self, p: np.ndarray, rows: np.ndarray, tris: np.ndarray):
        f = self.faces[tris]
        q = closest_point_on_triangles(p[rows], self.verts[f[:, 0]], self.verts[f[:, 1]], self.verts[f[:, 2]])
        return q, np.linalg.norm(q - p[rows], axis=1)

    def closest(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """points (N, 3) → (closest (N, 3), distance (N,), triangle (N,))."""
        p = np.asarray(points, np.float64).reshape(-1, 3)
        n = len(p)
        dk, cand = self.tree.query(p, k=self.k)
        dk = dk.reshape(n, -1)[:, -1]  # triangles not among the k have their centroids at least this far
        rows = np.repeat(np.arange(n), self.k)
        tris = cand.reshape(-1)
        q, d = self._distances(p, rows, tris)
        bound = np.full(n, np.inf)
        np.minimum.at(bound, rows, d)  # the closest point is no farther than this
        if self.k < len(self.faces):
            more_rows, more_tris = [], []
            for idx, tree, r in self.groups:
                open_ = np.nonzero(dk - r < bound)[0]  # points for which this size class may hold a closer one
                found = tree.query_ball_point(p[open_], bound[open_] + r)
                lens = np.fromiter(map(len, found), np.int64, len(open_))
                t = idx[np.fromiter(itertools.chain.from_iterable(found), np.int64, int(lens.sum()))]
                rr = np.repeat(open_, lens)
                near = np.linalg.norm(p[rr] - self.centroids[t], axis=1) - self.radii[t] < bound[rr]
                more_rows.append(rr[near])
                more_tris.append(t[near])
            rows2, tris2 = np.concatenate(more_rows), np.concatenate(more_tris)
            q2, d2 = self._distances(p, rows2, tris2)
            rows, tris = np.concatenate([rows, rows2]), np.concatenate([tris, tris2])
            q, d = np.concatenate([q, q2]), np.concatenate([d, d2])
        best = np.full(n, np.inf)
        np.minimum.at(best, rows, d)
        tie = d == best[rows]  # the nearest; equal distances go to the lowest triangle index
        tri = np.full(n, len(self.faces))
        np.minimum.at(tri, rows[tie], tris[tie])
        pick = np.empty(n, np.int64)
        hit = np.nonzero(tie & (tris == tri[rows]))[0]
        pick[rows[hit]] = hit  # duplicates of one (point, triangle) pair carry the same closest point
        return q[pick], d[pick], tri


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
