"""A small, exact triangle rasterizer in PyTorch (CPU or CUDA): z-buffer, face ids, barycentrics.

Used for mesh depth maps (visibility while baking), UV-space texel lookup, and re-rendering a textured mesh. The
numpy rasterizer (backend/render/raster.py) is its reference: tests/test_render.py compares the two.
Pixel centres sit at integer coordinates (OpenCV convention, as in backend/cameras.py). Every (triangle, pixel
of its bounding box) pair is enumerated at once, in chunks, so it suits meshes whose triangles cover a few
pixels each (our 30k-triangle heads at up to ~1k pixels).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..render.raster import project

_PAIRS_PER_CHUNK = 4_000_000


@dataclass
class Fragments:
    """Per-pixel result: `face` (H, W) int64, −1 where empty; `bary` (H, W, 3) perspective-correct barycentrics;
    `depth` (H, W) camera z (inf where empty)."""

    face: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        return self.face >= 0


def rasterize(screen: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> Fragments:
    """Rasterize triangles given in screen space.

    screen: [V, 3] (x pixel, y pixel, z depth > 0; use z = 1 for flat UV-space rasterization)
    faces:  [F, 3] vertex indices
    """
    screen = torch.as_tensor(screen, dtype=torch.float64)
    faces = torch.as_tensor(faces, dtype=torch.int64)
    dev = screen.device
    n_pix = height * width
    zbuf = torch.full((n_pix,), float("inf"), dtype=torch.float64, device=dev)
    fbuf = torch.full((n_pix,), -1, dtype=torch.int64, device=dev)
    tri = screen[faces]  # [F, 3, 3]
    front = (tri[:, :, 2] > 1e-9).all(1)
    lo = torch.ceil(tri[:, :, :2].amin(1)).clamp(min=0)  # [F, 2]
    hi = torch.floor(tri[:, :, :2].amax(1))
    hi[:, 0].clamp_(max=width - 1)
    hi[:, 1].clamp_(max=height - 1)
    size = (hi - lo + 1).clamp(min=0).long()  # [F, 2] bounding-box width, height in pixels
    count = size[:, 0] * size[:, 1] * front.long()
    area = _edge(tri[:, 0, :2], tri[:, 1, :2], tri[:, 2, :2])  # [F] twice the signed area
    keep = torch.nonzero((count > 0) & (area.abs() > 1e-12)).squeeze(1)
    if keep.numel() == 0:
        return _fragments(fbuf, zbuf, screen, faces, height, width)
    cum = torch.cumsum(count[keep], 0)
    start = 0
    while start < keep.numel():
        # triangles [start, stop) of `keep` whose pixel pairs fit in one chunk (at least one triangle)
        base = cum[start - 1] if start > 0 else 0
        stop = int(torch.searchsorted(cum, base + _PAIRS_PER_CHUNK, right=True))
        stop = max(stop, start + 1)
        ids = keep[start:stop]
        _raster_chunk(ids, tri, lo, size, count, area, zbuf, fbuf, width)
        start = stop
    return _fragments(fbuf, zbuf, screen, faces, height, width)


def _edge(a, b, p):
    return (b[..., 0] - a[..., 0]) * (p[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (p[..., 0] - a[..., 0])


def _barycentric(t: torch.Tensor, area: torch.Tensor, px: torch.Tensor):
    """Screen-space barycentrics of points px [P, 2] in triangles t [P, 3, 3]."""
    w0 = _edge(t[:, 1, :2], t[:, 2, :2], px) / area
    w1 = _edge(t[:, 2, :2], t[:, 0, :2], px) / area
    return torch.stack([w0, w1, 1.0 - w0 - w1], 1)  # [P, 3]


def _raster_chunk(ids, tri, lo, size, count, area, zbuf, fbuf, width):
    n = count[ids]
    owner = torch.repeat_interleave(ids, n)  # [P] face of each pair
    first = torch.cumsum(n, 0) - n
    local = torch.arange(owner.numel(), device=tri.device) - torch.repeat_interleave(first, n)
    bw = size[ids, 0].repeat_interleave(n)
    # Edge functions as planes a·x + b·y + c per face (float32 over the pairs, relative to the box corner).
    t = tri[ids]  # [f, 3, 3]
    corner = lo[ids]  # [f, 2]
    p0, p1, p2 = (t[:, i, :2] - corner for i in range(3))
    a_ = area[ids]
    coef = []
    for a, b in ((p1, p2), (p2, p0)):  # w0 from edge (1, 2), w1 from edge (2, 0)
        ca = -(b[:, 1] - a[:, 1]) / a_
        cb = (b[:, 0] - a[:, 0]) / a_
        cc = ((b[:, 1] - a[:, 1]) * a[:, 0] - (b[:, 0] - a[:, 0]) * a[:, 1]) / a_
        coef.append(torch.stack([ca, cb, cc], 1))
    coef = torch.stack(coef, 1).float()  # [f, 2, 3]
    inv_z = (1.0 / t[:, :, 2]).float()  # [f, 3]
    slot = torch.repeat_interleave(torch.arange(ids.numel(), device=tri.device), n)
    x = (local % bw).float()
    y = (local // bw).float()
    c = coef[slot]  # [P, 2, 3]
    w0 = c[:, 0, 0] * x + c[:, 0, 1] * y + c[:, 0, 2]
    w1 = c[:, 1, 0] * x + c[:, 1, 1] * y + c[:, 1, 2]
    w2 = 1.0 - w0 - w1
    inside = (w0 >= -1e-5) & (w1 >= -1e-5) & (w2 >= -1e-5)
    sel = torch.nonzero(inside).squeeze(1)
    slot, w0, w1, w2 = slot[sel], w0[sel], w1[sel], w2[sel]
    iz = inv_z[slot]
    z = (1.0 / (w0 * iz[:, 0] + w1 * iz[:, 1] + w2 * iz[:, 2])).double()
    pix = (y[sel].long() + corner[slot, 1].long()) * width + x[sel].long() + corner[slot, 0].long()
    owner = ids[slot]
    chunk_z = torch.full_like(zbuf, float("inf")).scatter_reduce(0, pix, z, "amin")
    win = z <= chunk_z[pix]
    chunk_f = torch.full_like(fbuf, -1).scatter_reduce(0, pix[win], owner[win], "amax")
    better = chunk_z < zbuf
    zbuf[better] = chunk_z[better]
    fbuf[better] = chunk_f[better]


def _fragments(fbuf, zbuf, screen, faces, height, width) -> Fragments:
    bary = torch.zeros((height * width, 3), dtype=torch.float64, device=screen.device)
    hit = fbuf >= 0
    if hit.any():
        idx = torch.nonzero(hit).squeeze(1)
        px = torch.stack([idx % width, idx // width], 1).to(screen.dtype)
        t = screen[faces[fbuf[idx]]]
        area = _edge(t[:, 0, :2], t[:, 1, :2], t[:, 2, :2])
        b = _barycentric(t, area, px).clamp(min=0)
        b = b / t[:, :, 2]  # perspective correction: interpolate attribute/z, then normalise
        bary[idx] = b / b.sum(1, keepdim=True)
    return Fragments(fbuf.view(height, width), bary.view(height, width, 3), zbuf.view(height, width))


def project_vertices(vertices, K, w2c) -> torch.Tensor:
    """World vertices [V, 3] → screen [V, 3] (pixel x, pixel y, camera z) for an OpenCV camera (render.raster)."""
    uv, z = project(np.asarray(vertices, np.float64), np.asarray(K, np.float64), np.asarray(w2c, np.float64))
    return torch.from_numpy(np.concatenate([uv, z[:, None]], 1))


def render_depth(vertices, faces, K, w2c, height: int, width: int) -> Fragments:
    """Rasterize a world-space mesh from one OpenCV camera."""
    return rasterize(project_vertices(vertices, K, w2c), torch.as_tensor(np.asarray(faces)), height, width)
