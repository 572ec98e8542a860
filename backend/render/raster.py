"""A small vectorised numpy triangle rasterizer (z-buffer), enough for texture baking, visibility and tests.

Pixel centres sit at integer coordinates (OpenCV convention): pixel (row i, column j) is the point (x=j, y=i).
Triangles are rasterised bucketed by bounding-box size, every candidate pixel tested with edge functions at once;
the nearest fragment (smallest depth) wins.
"""
from __future__ import annotations

import numpy as np

_BUCKETS = (2, 4, 8, 16, 32, 64)


def rasterize(xy: np.ndarray, depth: np.ndarray, faces: np.ndarray, height: int, width: int,
              cull_backfaces: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xy (N, 2) pixel coordinates, depth (N,), faces (F, 3) → (tri_id (H, W) int64, −1 where empty;
    bary (H, W, 3) float32; zbuf (H, W) float32, inf where empty).

    With `cull_backfaces`, back faces are dropped: a triangle wound counter-clockwise seen from outside (the
    convention of ICT, FLAME and glTF) has a negative signed area in pixel coordinates (y down) when it faces
    the camera.
    """
    xy = np.asarray(xy, np.float64)
    depth = np.asarray(depth, np.float64)
    faces = np.asarray(faces, np.int64)
    p0, p1, p2 = xy[faces[:, 0]], xy[faces[:, 1]], xy[faces[:, 2]]  # (F, 2) each
    area = _signed_area(p0, p1, p2)  # (F,)
    keep = np.abs(area) > 1e-12
    if cull_backfaces:
        keep &= area < 0
    lo = np.floor(np.minimum(np.minimum(p0, p1), p2)).astype(np.int64) + 0  # (F, 2)
    hi = np.ceil(np.maximum(np.maximum(p0, p1), p2)).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, [width - 1, height - 1])
    keep &= np.all(hi >= lo, axis=1) & np.all(np.isfinite(depth[faces]), axis=1)
    ext = (hi - lo + 1).max(axis=1)
    frag_pix, frag_tri, frag_z, frag_b = [], [], [], []
    tri_all = np.nonzero(keep)[0]
    prev = 0
    for s in _BUCKETS + (None,):
        sel = tri_all[(ext[tri_all] > prev) & ((ext[tri_all] <= s) if s is not None else True)]
        prev = s if s is not None else prev
        if len(sel) == 0:
            continue
        if s is None:  # big triangles: one at a time
            for t in sel:
                _frags(xy, depth, faces, lo, hi, area, np.array([t]), int(ext[t]), width,
                       frag_pix, frag_tri, frag_z, frag_b)
            continue
        for chunk in np.array_split(sel, max(1, len(sel) * s * s // 4_000_000 + 1)):
            _frags(xy, depth, faces, lo, hi, area, chunk, s, width, frag_pix, frag_tri, frag_z, frag_b)
    tri_id = np.full(height * width, -1, np.int64)
    bary = np.zeros((height * width, 3), np.float32)
    zbuf = np.full(height * width, np.inf, np.float32)
    if frag_pix:
        pix, tri, z, b = (np.concatenate(a) for a in (frag_pix, frag_tri, frag_z, frag_b))
        order = np.lexsort((z, pix))  # by pixel, then nearest first
        pix, tri, z, b = pix[order], tri[order], z[order], b[order]
        first = np.ones(len(pix), bool)
        first[1:] = pix[1:] != pix[:-1]
        tri_id[pix[first]] = tri[first]
        bary[pix[first]] = b[first]
        zbuf[pix[first]] = z[first]
    return tri_id.reshape(height, width), bary.reshape(height, width, 3), zbuf.reshape(height, width)


def _signed_area(p0, p1, p2):
    return (p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0])


def _frags(xy, depth, faces, lo, hi, area, tris, s, width, out_pix, out_tri, out_z, out_b):
    oy, ox = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
    ox, oy = ox.ravel(), oy.ravel()  # (s²,)
    px = lo[tris, 0:1] + ox[None]  # (T, s²)
    py = lo[tris, 1:2] + oy[None]
    inside_box = (px <= hi[tris, 0:1]) & (py <= hi[tris, 1:2])
    f = faces[tris]
    a, b, c = xy[f[:, 0]], xy[f[:, 1]], xy[f[:, 2]]  # (T, 2)
    ar = area[tris][:, None]
    # barycentric weight of vertex 0 is the area of (p, b, c) over the whole, etc.
    w0 = ((b[:, 0:1] - px) * (c[:, 1:2] - py) - (b[:, 1:2] - py) * (c[:, 0:1] - px)) / ar
    w1 = ((c[:, 0:1] - px) * (a[:, 1:2] - py) - (c[:, 1:2] - py) * (a[:, 0:1] - px)) / ar
    w2 = 1.0 - w0 - w1
    eps = -1e-9
    inside = inside_box & (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
    ti, ci = np.nonzero(inside)
    if len(ti) == 0:
        return
    W = np.stack([w0[ti, ci], w1[ti, ci], w2[ti, ci]], axis=1)  # (M, 3)
    z = (W * depth[f[ti]]).sum(axis=1)
    out_pix.append(py[ti, ci] * width + px[ti, ci])
    out_tri.append(tris[ti])
    out_z.append(z)
    out_b.append(W.astype(np.float32))


def project(points: np.ndarray, K: np.ndarray, w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) → (pixels (N, 2), camera depth (N,)) for OpenCV K (3, 3) and w2c (4, 4)."""
    pc = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = pc[:, 2]
    uv = pc @ K.T
    return uv[:, :2] / np.maximum(z[:, None], 1e-9), z


def interpolate(tri_id: np.ndarray, bary: np.ndarray, faces: np.ndarray, attr: np.ndarray) -> np.ndarray:
    """Per-pixel attribute (H, W, C) from per-vertex `attr` (N, C); zeros where tri_id is −1."""
    ok = tri_id >= 0
    out = np.zeros(tri_id.shape + (attr.shape[1],), np.float32)
    f = faces[tri_id[ok]]  # (M, 3)
    out[ok] = np.einsum("mk,mkc->mc", bary[ok], attr[f])
    return out


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (N, 3), unit length."""
    v = verts[faces]  # (F, 3, 3)
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    n = np.zeros_like(verts, dtype=np.float64)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
