"""From a fitted splat to depth observations: validation, floater removal, depth/alpha renders from the rig.

Floaters are removed before rendering: Gaussians that are nearly transparent, outside the rig's object box,
or outside the largest connected cluster of Gaussian centres (on a coarse occupancy grid) are dropped. The
largest-component step after marching cubes removes whatever still gets through.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..cameras import scale_intrinsics
from ..errors import HeadForgeError
from ..splat.ply import render_args
from ..splat.rasterize import (
    ALPHA_MAX,
    ALPHA_THRESHOLD,
    T_MIN,
    _opacity_aware_radii,
    _pixel_centre_shift,
    _pixel_pairs,
    rasterize,
)
from .fusion import DepthView


class SplatInputError(HeadForgeError):
    """The splat cannot be meshed (empty, degenerate, non-finite, nothing opaque)."""

    code = "mesh.bad_splat"


@dataclass
class SplatSelection:
    keep: np.ndarray  # [N] bool, Gaussians used for meshing
    counts: dict  # why the others were dropped


def select_gaussians(splat: dict, min_opacity: float = 0.05, half_extent: float = 0.2, cell: float = 0.01,
                     min_kept: int = 16) -> SplatSelection:
    """Choose the Gaussians that form the head: finite, opaque enough, inside the rig box, in the largest
    cluster of occupied `cell`-sized grid cells (26-connected, bridged by one cell). Raises SplatInputError."""
    from scipy import ndimage

    means = np.asarray(splat["means"], np.float64)
    n = len(means)
    if n == 0:
        raise SplatInputError("The splat holds no Gaussians; nothing to mesh.", code="mesh.empty_splat",
                              hint="Re-run the splat stage (--force splat).")
    finite = np.isfinite(means).all(1) & np.isfinite(splat["log_scales"]).all(1) & \
        np.isfinite(splat["opacity_logits"]) & np.isfinite(splat["quats"]).all(1)
    opacity = 1.0 / (1.0 + np.exp(-np.clip(np.asarray(splat["opacity_logits"], np.float64), -60, 60)))
    opaque = finite & (opacity >= min_opacity)
    in_box = opaque & (np.abs(np.nan_to_num(means, nan=1e9)) <= half_extent).all(1)
    counts = {"gaussians": n, "non_finite": int((~finite).sum()), "transparent": int((finite & ~opaque).sum()),
              "outside_box": int((opaque & ~in_box).sum())}
    if in_box.sum() < min_kept:
        raise SplatInputError(f"The splat has only {int(in_box.sum())} usable Gaussians (of {n}) inside the "
                              f"{2 * half_extent:.2f} m object box; it is empty or degenerate.",
                              code="mesh.degenerate_splat", hint="Check the splat stage's output.")
    idx = np.floor((means[in_box] + half_extent) / cell).astype(int)
    dims = np.full(3, int(np.ceil(2 * half_extent / cell)) + 1)
    occ = np.zeros(dims, bool)
    occ[tuple(idx.T)] = True
    bridged = ndimage.binary_dilation(occ, np.ones((3, 3, 3), bool))
    labels, n_labels = ndimage.label(bridged, np.ones((3, 3, 3), bool))
    lab = labels[tuple(idx.T)]
    sizes = np.bincount(lab, weights=opacity[in_box], minlength=n_labels + 1)
    sizes[0] = 0
    main = int(np.argmax(sizes))
    keep = np.zeros(n, bool)
    keep[np.flatnonzero(in_box)[lab == main]] = True
    counts["floaters"] = int(in_box.sum() - keep.sum())
    counts["kept"] = int(keep.sum())
    extent = means[keep].max(0) - means[keep].min(0)
    if keep.sum() < min_kept or extent.max() < 4 * cell:
        raise SplatInputError(f"The splat's main cluster spans {extent.max() * 1000:.0f} mm with "
                              f"{int(keep.sum())} Gaussians: too small to be a head.", code="mesh.degenerate_splat")
    return SplatSelection(keep, counts)


def surface_bounds(splat: dict, keep: np.ndarray, margin: float = 0.01, half_extent: float = 0.2) -> np.ndarray:
    """The box (2, 3) around the kept Gaussians (± 3σ of their largest axis, capped at 1 cm, plus `margin`)."""
    means = np.asarray(splat["means"], np.float64)[keep]
    sig = np.minimum(np.exp(np.asarray(splat["log_scales"], np.float64)[keep]).max(1), 0.01)[:, None]
    lo = (means - 3 * sig).min(0) - margin
    hi = (means + 3 * sig).max(0) + margin
    return np.stack([np.maximum(lo, -half_extent), np.minimum(hi, half_extent)])


@torch.no_grad()
def render_depth_views(splat: dict, keep: np.ndarray, cameras: list[dict], size: int, device: str = "cpu",
                       opacity_gain: float = 30.0, check_cancel=lambda: None,
                       on_progress=lambda f: None, mode: str = "median") -> list[DepthView]:
    """Depth and alpha of the kept Gaussians from each camera ({K, w2c, width, height}), rendered at `size` px
    on the long side (intrinsics rescaled).

    Fitted splats build their surfaces from stacks of semi-transparent, millimetre-thick Gaussians, so plain
    expected depth lies several millimetres inside the head. Opacities are sharpened for the depth renders,
    o' = 1 − (1 − o)^opacity_gain, which moves the surface to the front-most layer. Then, per pixel:

    - "median" (default): the depth where the ray's transmittance through the sharpened Gaussians falls to ½,
      each Gaussian attenuating the ray along its own 3D extent (see `median_depth`);
    - "expected": the alpha-weighted mean of the Gaussians' centre depths, which sits about one standard
      deviation of a Gaussian behind the surface it draws (1–2 mm on a splat fitted at 128–256 px)."""
    if mode not in ("median", "expected"):
        raise ValueError(f"mode must be 'median' or 'expected', not {mode!r}")

    sub = {k: (np.asarray(v)[keep] if k != "extra" else {}) for k, v in splat.items()}
    args = render_args(sub, device=device)
    if opacity_gain != 1.0:
        args["opacities"] = 1.0 - (1.0 - args["opacities"]).clamp(min=1e-7) ** float(opacity_gain)
    feats = torch.zeros((args["means"].shape[0], 1), dtype=torch.float32, device=device)
    out = []
    for i, cam in enumerate(cameras):
        check_cancel()
        w0, h0 = int(cam["width"]), int(cam["height"])
        s = size / max(w0, h0)
        w, h = max(int(round(w0 * s)), 1), max(int(round(h0 * s)), 1)
        K = scale_intrinsics(np.asarray(cam["K"], np.float64), w / w0, h / h0)
        w2c = torch.as_tensor(np.asarray(cam["w2c"]), dtype=torch.float32, device=device)
        Kt = torch.as_tensor(K, dtype=torch.float32, device=device)
        if mode == "median":
            depth, alpha = median_depth(args["means"], args["quats"], args["scales"], args["opacities"], w2c, Kt, w, h)
        else:
            _, alpha, depth = rasterize(args["means"], args["quats"], args["scales"], args["opacities"], feats,
                                        w2c[None], Kt[None], w, h)
            depth, alpha = depth[0, ..., 0], alpha[0, ..., 0]
        out.append(DepthView(depth.cpu().numpy(), alpha.cpu().numpy(), K, np.asarray(cam["w2c"], np.float64)))
        on_progress((i + 1) / len(cameras))
    return out


@torch.no_grad()
def median_depth(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor, opacities: torch.Tensor,
                 w2c: torch.Tensor, K: torch.Tensor, width: int, height: int, level: float = 0.5,
                 iterations: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Median depth of a splat from one camera → (depth (H, W), 0 where the pixel's alpha < 1 − level;
    alpha (H, W)).

    The Gaussians are composited as the rasterizer does (same pixel footprints, per-pixel alphas α_i, cut
    once transmittance reaches T_MIN). Each Gaussian's attenuation is spread along the pixel's ray as the 3D
    Gaussian lies on it: optical depth τ_i = −ln(1 − α_i), centred on the depth t_i where the ray passes
    closest to the Gaussian's centre (in its own metric), with the standard deviation σ_i of its 1D profile
    along the ray. The pixel's depth is where T(t) = exp(−Σ_i τ_i Φ((t − t_i) / σ_i)) falls to `level`,
    found by bisection. Unlike the expected centre depth, this does not put the surface at the centre of
    the front-most Gaussians but where the ray is half blocked, and it follows tilted Gaussians across their
    footprint instead of giving every pixel of one the same depth. Depth is camera z (planar), metres."""
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci


    dev, dt = means.device, means.dtype
    n_pix = height * width
    depth = torch.zeros(n_pix, dtype=dt, device=dev)
    alpha_img = torch.zeros(n_pix, dtype=dt, device=dev)
    covars, precis = _quat_scale_to_covar_preci(quats, scales, compute_covar=True, compute_preci=True)
    _, means2d, depths, conics, _ = _fully_fused_projection(means, covars, w2c[None], _pixel_centre_shift(K[None]),
                                                            width, height, 0.3, 0.01, 1e10)
    radii = _opacity_aware_radii(means2d, depths, conics, opacities, width, height, 0.01, 1e10)
    vis = torch.nonzero((radii[0] > 0).all(-1)).squeeze(1)
    if vis.numel() == 0:
        return depth.view(height, width), alpha_img.view(height, width)
    g = vis[torch.argsort(depths[0, vis], stable=True)]  # visible Gaussians, front to back by centre depth
    attrs = torch.cat([means2d[0, g], conics[0, g], opacities[g, None]], 1)
    pair_g, pix = _pixel_pairs(attrs, torch.zeros(len(g), dtype=torch.long, device=dev), width, height)
    pix = pix.long()
    mx, my, ca, cb, cc, op = attrs.index_select(0, pair_g).unbind(1)
    px, py = (pix % width).to(dt), (pix // width).to(dt)
    dx, dy = px + 0.5 - mx, py + 0.5 - my  # gsplat's pixel centres
    sig = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
    a = torch.clamp_max(op * torch.exp(-sig), ALPHA_MAX)
    tau = torch.where((sig >= 0) & (a >= ALPHA_THRESHOLD), -torch.log1p(-a), torch.zeros_like(a)).double()
    # the rasterizer's early stop: drop pairs behind the point where transmittance has reached T_MIN
    seg_pix, seg_len = torch.unique_consecutive(pix, return_counts=True)
    first = torch.cumsum(seg_len, 0) - seg_len
    cs = torch.cumsum(tau, 0)
    before = cs - tau - (cs - tau)[first].repeat_interleave(seg_len)
    use = torch.nonzero((tau > 0) & (before < -math.log(T_MIN))).squeeze(1)
    if use.numel() == 0:
        return depth.view(height, width), alpha_img.view(height, width)
    pix, pair_g, tau, px, py = pix[use], pair_g[use], tau[use].to(dt), px[use], py[use]
    seg_pix, seg_len = torch.unique_consecutive(pix, return_counts=True)
    n_seg = seg_pix.numel()
    seg = torch.repeat_interleave(torch.arange(n_seg, device=dev), seg_len)
    # ray r = (x, y, 1) in camera space meets Gaussian g at planar depth t* = rᵀPμ / rᵀPr, σ = 1/√(rᵀPr)
    R, tr = w2c[:3, :3], w2c[:3, 3]
    P = R @ precis[g] @ R.T  # [G, 3, 3] camera-space precision
    mu = means[g] @ R.T + tr
    q = (P @ mu[:, :, None])[..., 0]
    x = (px - K[0, 2]) / K[0, 0]
    y = (py - K[1, 2]) / K[1, 1]
    Pp, qp = P[pair_g], q[pair_g]
    rPr = (Pp[:, 0, 0] * x * x + 2 * Pp[:, 0, 1] * x * y + 2 * Pp[:, 0, 2] * x + Pp[:, 1, 1] * y * y
           + 2 * Pp[:, 1, 2] * y + Pp[:, 2, 2]).clamp_min(1e-12)
    t0 = (qp[:, 0] * x + qp[:, 1] * y + qp[:, 2]) / rPr
    sd = torch.rsqrt(rPr)
    del Pp, qp, rPr, x, y, px, py
    total = torch.zeros(n_seg, dtype=torch.float64, device=dev).index_add_(0, seg, tau.double())
    lo = torch.full((n_seg,), float("inf"), dtype=dt, device=dev).scatter_reduce_(0, seg, t0 - 5 * sd, "amin")
    hi = torch.full((n_seg,), -float("inf"), dtype=dt, device=dev).scatter_reduce_(0, seg, t0 + 5 * sd, "amax")
    target = -math.log(level)
    inv = 1.0 / (sd * math.sqrt(2.0))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        f = torch.zeros(n_seg, dtype=dt, device=dev).index_add_(0, seg, tau * 0.5 * torch.erfc((t0 - mid[seg]) * inv))
        above = f > target
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    seen = total > target
    depth[seg_pix] = torch.where(seen, 0.5 * (lo + hi), torch.zeros_like(lo))
    alpha_img[seg_pix] = (1.0 - torch.exp(-total)).to(dt)
    return depth.view(height, width), alpha_img.view(height, width)


