"""Dense reference rasterizer: every pixel against every Gaussian, written from the 3DGS equations alone.

Slow (memory C·H·W·N) and meant for tests on tiny scenes: it shares no code with `rasterize.py` or gsplat.
Same signature and outputs as `rasterize.rasterize`; pixel centres at integer coordinates (OpenCV `K`).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .rasterize import ALPHA_MAX, ALPHA_THRESHOLD, T_MIN

# Real spherical-harmonic constants (the 3DGS convention: Y_l^m with the Condon-Shortley phase folded in).
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)


def eval_sh(degree: int, sh: Tensor, dirs: Tensor) -> Tensor:
    """SH coefficients [..., K, 3] at unit directions [..., 3] → [..., 3] (degree <= 3)."""
    x, y, z = (dirs[..., i:i + 1] for i in range(3))
    out = SH_C0 * sh[..., 0, :]
    if degree > 0:
        out = out - SH_C1 * y * sh[..., 1, :] + SH_C1 * z * sh[..., 2, :] - SH_C1 * x * sh[..., 3, :]
    if degree > 1:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out = (out + SH_C2[0] * xy * sh[..., 4, :] + SH_C2[1] * yz * sh[..., 5, :]
               + SH_C2[2] * (2 * zz - xx - yy) * sh[..., 6, :] + SH_C2[3] * xz * sh[..., 7, :]
               + SH_C2[4] * (xx - yy) * sh[..., 8, :])
    if degree > 2:
        out = (out + SH_C3[0] * y * (3 * xx - yy) * sh[..., 9, :] + SH_C3[1] * xy * z * sh[..., 10, :]
               + SH_C3[2] * y * (4 * zz - xx - yy) * sh[..., 11, :]
               + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * sh[..., 12, :]
               + SH_C3[4] * x * (4 * zz - xx - yy) * sh[..., 13, :] + SH_C3[5] * z * (xx - yy) * sh[..., 14, :]
               + SH_C3[6] * x * (xx - 3 * yy) * sh[..., 15, :])
    return out


def rotation_from_quat(q: Tensor) -> Tensor:
    """[N, 4] wxyz (any norm) → [N, 3, 3]."""
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def rasterize_dense(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree=None,
                    backgrounds=None, *, near_plane=0.01, far_plane=1e10, eps2d=0.3):
    """Reference render → (rgb [C, H, W, D], alpha [C, H, W, 1], expected depth [C, H, W, 1])."""
    if colors.dim() == 3 and sh_degree is None:
        sh_degree = int(round(colors.shape[1] ** 0.5)) - 1
    rgbs, alphas, depths = [], [], []
    R = rotation_from_quat(quats)
    M = R * scales[:, None, :]
    cov3 = M @ M.transpose(-1, -2)  # [N, 3, 3]
    ys, xs = torch.meshgrid(torch.arange(height, dtype=means.dtype), torch.arange(width, dtype=means.dtype),
                            indexing="ij")
    for ci in range(viewmats.shape[0]):
        Rv, tv, K = viewmats[ci, :3, :3], viewmats[ci, :3, 3], Ks[ci]
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        pc = means @ Rv.T + tv  # [N, 3]
        x, y, z = pc.unbind(-1)
        # EWA Jacobian, with gsplat's guard band on x/z, y/z (affects only Gaussians far outside the view)
        tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
        lxp, lxn = (width - (cx + 0.5)) / fx + 0.3 * tan_x, (cx + 0.5) / fx + 0.3 * tan_x
        lyp, lyn = (height - (cy + 0.5)) / fy + 0.3 * tan_y, (cy + 0.5) / fy + 0.3 * tan_y
        xj = z * torch.clamp(x / z, -lxn, lxp)
        yj = z * torch.clamp(y / z, -lyn, lyp)
        zero = torch.zeros_like(z)
        J = torch.stack([torch.stack([fx / z, zero, -fx * xj / z ** 2], -1),
                         torch.stack([zero, fy / z, -fy * yj / z ** 2], -1)], -2)  # [N, 2, 3]
        cov2 = J @ Rv @ cov3 @ Rv.T @ J.transpose(-1, -2) + eps2d * torch.eye(2, dtype=means.dtype)
        u, v = fx * x / z + cx, fy * y / z + cy  # [N]
        a, b, c = cov2[:, 0, 0], cov2[:, 0, 1], cov2[:, 1, 1]
        det = a * c - b * b
        ia, ib, ic = c / det, -b / det, a / det  # inverse covariance
        if sh_degree is None:
            col = colors
        else:
            campos = -Rv.T @ tv
            d = means - campos
            col = torch.clamp_min(eval_sh(sh_degree, colors, d / d.norm(dim=-1, keepdim=True)) + 0.5, 0.0)
        ok = (z > near_plane) & (z < far_plane) & (det > 0)
        idx = torch.nonzero(ok).squeeze(1)
        idx = idx[torch.argsort(z[idx].detach(), stable=True)]  # front to back
        dx = xs[..., None] - u[idx]  # [H, W, n]
        dy = ys[..., None] - v[idx]
        sigma = 0.5 * (ia[idx] * dx * dx + ic[idx] * dy * dy) + ib[idx] * dx * dy
        alpha = torch.clamp_max(opacities[idx] * torch.exp(-sigma), ALPHA_MAX)
        alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_THRESHOLD), alpha, torch.zeros_like(alpha))
        t_incl = torch.cumprod(1.0 - alpha, dim=-1)  # [H, W, n]
        t_excl = torch.cat([torch.ones_like(t_incl[..., :1]), t_incl[..., :-1]], -1)
        w = torch.where(t_incl.detach() > T_MIN, alpha * t_excl, torch.zeros_like(alpha))
        acc = w.sum(-1, keepdim=True)  # [H, W, 1]
        rgb = w @ col[idx]  # [H, W, D]
        if backgrounds is not None:
            bg = backgrounds if backgrounds.dim() == 1 else backgrounds[ci]
            rgb = rgb + bg * (1.0 - acc)
        rgbs.append(rgb)
        alphas.append(acc)
        depths.append((w @ z[idx][:, None]) / acc.clamp(min=1e-10))
    return torch.stack(rgbs), torch.stack(alphas), torch.stack(depths)
