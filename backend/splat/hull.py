"""Initial Gaussians from the visual hull of the views' alpha masks (space carving), coloured from the views."""
from __future__ import annotations

import torch
from torch import Tensor


@torch.no_grad()
def carve_hull(masks: Tensor, viewmats: Tensor, Ks: Tensor, half_extent: float, resolution: int = 64,
               threshold: float = 0.5, dilate_px: int = 1) -> tuple[Tensor, float]:
    """Voxel centres [M, 3] inside every mask (where they project into the image), and the voxel size.

    masks [V, H, W] in [0, 1]; the grid spans [−half_extent, half_extent]³ about the world origin (the
    orbit centre). A voxel projecting outside a view's image is not carved by that view.
    """
    V, H, W = masks.shape
    m = (masks > threshold).float()[:, None]
    if dilate_px > 0:  # tolerate sub-pixel disagreement between masks
        m = torch.nn.functional.max_pool2d(m, 2 * dilate_px + 1, stride=1, padding=dilate_px)
    m = m[:, 0] > 0.5  # [V, H, W]
    step = 2 * half_extent / resolution
    ax = (torch.arange(resolution, dtype=torch.float32) + 0.5) * step - half_extent
    pts = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)  # [G, 3]
    for v in range(V):  # keep only the survivors: most of the grid is carved by the first views
        uv, z = _project(pts, viewmats[v].float(), Ks[v].float())
        u, w = torch.round(uv[:, 0]).long(), torch.round(uv[:, 1]).long()
        in_img = (u >= 0) & (u < W) & (w >= 0) & (w < H) & (z > 0)
        keep = ~in_img
        keep[in_img] = m[v, w[in_img], u[in_img]]
        pts = pts[keep]
    return pts, step


@torch.no_grad()
def hull_surface(points: Tensor, step: float) -> Tensor:
    """The hull voxels with at least one empty 6-neighbour: [S, 3]."""
    key = torch.round(points / step - 0.5).long()
    lo = key.min(0).values - 1
    dims = key.max(0).values - lo + 2
    occ = torch.zeros(tuple(dims.tolist()), dtype=torch.bool)
    k = key - lo
    occ[k[:, 0], k[:, 1], k[:, 2]] = True
    full = torch.ones(points.shape[0], dtype=torch.bool)
    for d in range(3):
        for s in (-1, 1):
            n = k.clone()
            n[:, d] += s
            full &= occ[n[:, 0], n[:, 1], n[:, 2]]
    return points[~full]


@torch.no_grad()
def visible_colours(points: Tensor, images: Tensor, viewmats: Tensor, Ks: Tensor, depth_tol: float) -> Tensor:
    """Mean colour [P, 3] of each point over the views where it is the nearest point on its pixel
    (within depth_tol); grey where it is never visible. images [V, H, W, 3]."""
    V, H, W, _ = images.shape
    total = torch.zeros(points.shape[0], 3)
    count = torch.zeros(points.shape[0])
    for v in range(V):
        uv, z = _project(points, viewmats[v].float(), Ks[v].float())
        u, w = torch.round(uv[:, 0]).long(), torch.round(uv[:, 1]).long()
        ok = (u >= 0) & (u < W) & (w >= 0) & (w < H) & (z > 0)
        pix = (w * W + u)[ok]
        zbuf = torch.full((H * W,), float("inf")).scatter_reduce(0, pix, z[ok], reduce="amin")
        seen = torch.zeros_like(ok)
        seen[ok] = z[ok] <= zbuf[pix] + depth_tol
        colour = images[v].reshape(-1, 3)[(w * W + u).clamp(0, H * W - 1)].float()  # [P, 3]
        seen &= torch.isfinite(colour).all(-1)
        total[seen] += colour[seen]
        count[seen] += 1
    out = torch.full_like(total, 0.5)
    hit = count > 0
    out[hit] = total[hit] / count[hit, None]
    return out


def _project(pts: Tensor, w2c: Tensor, K: Tensor) -> tuple[Tensor, Tensor]:
    pc = pts @ w2c[:3, :3].T + w2c[:3, 3]
    z = pc[:, 2]
    uv = (pc @ K.T)[:, :2] / z.clamp_min(1e-6)[:, None]
    return uv, z
