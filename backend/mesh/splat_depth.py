"""From a fitted splat to depth observations: validation, floater removal, depth/alpha renders from the rig.

Floaters are removed before rendering: Gaussians that are nearly transparent, outside the rig's object box,
or outside the largest connected cluster of Gaussian centres (on a coarse occupancy grid) are dropped. The
largest-component step after marching cubes removes whatever still gets through.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import HeadForgeError
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
                       on_progress=lambda f: None) -> list[DepthView]:
    """Expected depth and alpha of the kept Gaussians from each camera ({K, w2c, width, height}), rendered at
    `size` px on the long side (intrinsics rescaled).

    Fitted splats build their surfaces from stacks of semi-transparent Gaussians, so plain expected depth
    lies several millimetres inside the head. Opacities are sharpened for the depth renders,
    o' = 1 − (1 − o)^opacity_gain, which moves the expected depth to the front-most layer."""
    from ..splat.ply import render_args
    from ..splat.rasterize import rasterize

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
        _, alpha, depth = rasterize(args["means"], args["quats"], args["scales"], args["opacities"], feats,
                                    torch.as_tensor(np.asarray(cam["w2c"])[None], dtype=torch.float32, device=device),
                                    torch.as_tensor(K[None], dtype=torch.float32, device=device), w, h)
        out.append(DepthView(depth[0, ..., 0].cpu().numpy(), alpha[0, ..., 0].cpu().numpy(), K,
                             np.asarray(cam["w2c"], np.float64)))
        on_progress((i + 1) / len(cameras))
    return out


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics for an image resized by (sx, sy), pixel centres at integers."""
    K = np.asarray(K, np.float64).copy()
    K[0, 0] *= sx
    K[1, 1] *= sy
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K
