"""Truncated signed-distance fusion of depth maps (own implementation on PyTorch) and surface extraction.

Sign convention: negative inside the head, positive outside. Each view updates a voxel with
`clip((depth − z) / trunc, −1, 1)` when the voxel lies in front of, or less than `trunc` behind, the observed
surface; pixels the view sees as empty (alpha below `alpha_min`) vote "outside" (+1) for every voxel on their
ray, which carves the visual hull. Voxels no view observed stay "inside" (−1), and the volume border is
outside, so marching cubes always returns closed surfaces.

Coarse to fine: a coarse pass finds the blocks near the surface; the fine pass fuses only those voxels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import StageError


@dataclass
class DepthView:
    """One depth observation: planar camera-space depth (H, W) in metres (0 = none), alpha (H, W) in [0, 1],
    OpenCV intrinsics K (3, 3) and world-to-camera w2c (4, 4)."""

    depth: np.ndarray
    alpha: np.ndarray
    K: np.ndarray
    w2c: np.ndarray


@dataclass
class Volume:
    """A dense TSDF grid: `tsdf` (nx, ny, nz) in [−1, 1], voxel centres at origin + voxel_size · index."""

    tsdf: np.ndarray
    weight: np.ndarray
    origin: np.ndarray
    voxel_size: float


def integrate(points: torch.Tensor, views: list[DepthView], trunc: float, alpha_min: float = 0.5,
              check_cancel=lambda: None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fuse every view into the voxels at `points` [P, 3] (world, metres) → (tsdf [P], weight [P])."""
    tsdf = torch.zeros(points.shape[0], dtype=torch.float32)
    weight = torch.zeros(points.shape[0], dtype=torch.float32)
    for view in views:
        check_cancel()
        depth = torch.as_tensor(np.asarray(view.depth, dtype=np.float32))
        alpha = torch.as_tensor(np.asarray(view.alpha, dtype=np.float32))
        h, w = depth.shape
        R = torch.as_tensor(np.asarray(view.w2c)[:3, :3], dtype=torch.float32)
        t = torch.as_tensor(np.asarray(view.w2c)[:3, 3], dtype=torch.float32)
        K = np.asarray(view.K, dtype=np.float64)
        for s in range(0, points.shape[0], 2_000_000):
            p = points[s:s + 2_000_000]
            pc = p @ R.T + t  # [p, 3] camera space
            z = pc[:, 2]
            zs = z.clamp(min=1e-6)
            u = torch.round(K[0, 0] * pc[:, 0] / zs + K[0, 2]).long()
            v = torch.round(K[1, 1] * pc[:, 1] / zs + K[1, 2]).long()
            seen = (z > 1e-6) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
            idx = torch.nonzero(seen).squeeze(1)
            pix = v[idx] * w + u[idx]
            d = depth.view(-1)[pix]
            a = alpha.view(-1)[pix]
            empty = (a < alpha_min) | (d <= 0)
            sdf = ((d - z[idx]) / trunc).clamp(-1.0, 1.0)
            obs = torch.where(empty, torch.ones_like(sdf), sdf)
            use = empty | (d - z[idx] > -trunc)
            idx, obs = idx[use] + s, obs[use]
            w_old = weight[idx]
            tsdf[idx] = (tsdf[idx] * w_old + obs) / (w_old + 1.0)
            weight[idx] = w_old + 1.0
    return tsdf, weight


def grid_points(origin: np.ndarray, shape: tuple[int, int, int], voxel_size: float) -> torch.Tensor:
    """Voxel centres [nx·ny·nz, 3] in C order."""
    axes = [torch.arange(n, dtype=torch.float32) * voxel_size + float(o) for n, o in zip(shape, origin)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).view(-1, 3)


def fuse(views: list[DepthView], bounds: np.ndarray, voxel_size: float, trunc: float | None = None,
         coarse_factor: int = 4, alpha_min: float = 0.5, check_cancel=lambda: None,
         on_progress=lambda f: None) -> Volume:
    """Fuse `views` into a TSDF over the box `bounds` (2, 3) at `voxel_size` metres, coarse to fine."""
    bounds = np.asarray(bounds, dtype=np.float64)
    if not views:
        raise StageError("No depth views to fuse.", code="mesh.no_views")
    trunc = float(trunc if trunc is not None else 4.0 * voxel_size)
    cf = max(int(coarse_factor), 1)
    coarse_vs = voxel_size * cf
    origin = bounds[0]
    n_fine = np.maximum(np.ceil((bounds[1] - bounds[0]) / voxel_size).astype(int) + 1, 2)
    n_coarse = np.ceil(n_fine / cf).astype(int)
    if n_fine.prod() > 600_000_000:
        raise StageError(f"A {n_fine.tolist()} voxel grid is too large; raise voxel_size.",
                         code="mesh.volume_too_large")
    # Coarse pass: voxel centres at the centre of each cf³ block of fine voxels.
    c_origin = origin + (cf - 1) * voxel_size / 2.0
    c_trunc = max(trunc, 1.5 * coarse_vs)
    ct, cw = integrate(grid_points(c_origin, tuple(n_coarse), coarse_vs), views, c_trunc, alpha_min, check_cancel)
    on_progress(0.3)
    ct[cw == 0] = -1.0
    ct = ct.view(*n_coarse)
    if cf == 1:
        return Volume(ct.numpy(), cw.view(*n_coarse).numpy(), origin, voxel_size)
    # Blocks whose coarse value says "near the surface", dilated by one block.
    band = (ct.abs() < 1.0).float()[None, None]
    band = torch.nn.functional.max_pool3d(band, 3, stride=1, padding=1)[0, 0] > 0
    # Fine grid defaults to the coarse sign (trilinear upsampling keeps it smooth away from the band).
    up = torch.nn.functional.interpolate(ct[None, None], scale_factor=cf, mode="trilinear", align_corners=False)
    up = up[0, 0, :n_fine[0], :n_fine[1], :n_fine[2]]
    tsdf = torch.sign(up)
    tsdf[tsdf == 0] = 1.0
    weight = torch.zeros_like(tsdf)
    blocks = torch.nonzero(band)  # [B, 3]
    offs = torch.stack(torch.meshgrid(*[torch.arange(cf)] * 3, indexing="ij"), -1).view(-1, 3)
    fine_idx = (blocks[:, None, :] * cf + offs[None]).reshape(-1, 3)
    inside = (fine_idx < torch.as_tensor(n_fine)).all(1)
    fine_idx = fine_idx[inside]
    pts = fine_idx.float() * voxel_size + torch.as_tensor(origin, dtype=torch.float32)
    ft, fw = integrate(pts, views, trunc, alpha_min, check_cancel)
    on_progress(1.0)
    ft[fw == 0] = -1.0
    flat = fine_idx[:, 0] * (n_fine[1] * n_fine[2]) + fine_idx[:, 1] * n_fine[2] + fine_idx[:, 2]
    tsdf.view(-1)[flat] = ft
    weight.view(-1)[flat] = fw
    return Volume(tsdf.numpy(), weight.numpy(), origin, voxel_size)


def extract_surface(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes at level 0 on the volume padded with "outside": closed surface (vertices [V, 3] world
    metres, faces [F, 3] wound counter-clockwise seen from outside)."""
    from skimage.measure import marching_cubes

    vol = np.pad(volume.tsdf.astype(np.float32), 1, constant_values=1.0)
    if vol.min() >= 0 or vol.max() <= 0:
        raise StageError("The fused volume holds no surface (nothing was seen inside the bounds).",
                         code="mesh.empty_surface")
    verts, faces, _, _ = marching_cubes(vol, level=0.0, spacing=(volume.voxel_size,) * 3,
                                        gradient_direction="ascent", allow_degenerate=False)
    verts = verts + volume.origin - volume.voxel_size  # undo the one-voxel pad
    return verts, faces.astype(np.int64)


def carve_with_mattes(depth_views: list, colour_views: list) -> int:
    """Where a view's own alpha matte says background, the fusion sees free space whatever the splat drew there.

    A fitted splat's silhouettes are soft: its alpha ≥ ½ region runs a pixel or more past the matte it was fitted
    to, and the depth there lies in front of the true surface. The matte is the observation itself, so it takes
    precedence: each depth view's alpha becomes min(splat alpha, matte resampled to the depth size). Views
    without alpha are left as they are. Returns how many depth views were changed."""
    changed = 0
    for cv in colour_views:
        ci = cv.camera_index
        if cv.alpha is None or ci is None or ci >= len(depth_views):
            continue
        dv = depth_views[ci]
        h, w = dv.alpha.shape
        matte = np.asarray(cv.alpha, np.float32)
        if matte.shape != (h, w):
            matte = np.asarray(Image.fromarray(matte).resize((w, h), Image.BILINEAR), np.float32)
        dv.alpha = np.minimum(np.asarray(dv.alpha, np.float32), matte)
        changed += 1
    return changed
