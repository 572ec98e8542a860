"""One rasterization interface for 3D Gaussians, two implementations chosen by device.

`rasterize(...)` renders colour, alpha and expected depth of Gaussians seen by OpenCV-convention cameras
(`viewmats` world-to-camera, camera +X right, +Y down, +Z forward; `Ks` with pixel centres at integer
coordinates, as `backend/cameras.py` writes them).

- On CUDA (with gsplat's compiled kernels): gsplat's `rasterization`.
- Elsewhere: a differentiable PyTorch compositor. It reuses gsplat's pure-PyTorch projection (EWA splatting,
  `_fully_fused_projection`) and spherical harmonics (`_spherical_harmonics`), bins every Gaussian to the
  pixels of its opacity-aware bounding box (the tile intersection of gsplat, at one-pixel tiles, vectorised),
  and composites front to back with gsplat's rules: alpha = min(0.999, o·exp(−σ)), skipped below 1/255,
  a pixel stops before the Gaussian that would take its transmittance to 1e-4 or less.

Both follow gsplat's colour rule: with SH coefficients, colour = max(SH(dir) + 0.5, 0); with plain features
the features are composited as given. `reference.py` holds the dense every-pixel-against-every-Gaussian
reference the PyTorch path is tested against.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import DependencyError

_SH_C0 = 0.28209479177387814
ALPHA_THRESHOLD = 1.0 / 255.0  # alphas below this are skipped (gsplat's ALPHA_THRESHOLD)
ALPHA_MAX = 0.999  # per-Gaussian alpha clamp
T_MIN = 1e-4  # a pixel is done before the Gaussian that would take its transmittance to <= T_MIN
EXTEND_MAX = 3.33  # bounding-box half-size in standard deviations (gsplat)


def rasterize(
    means: Tensor,  # [N, 3] world
    quats: Tensor,  # [N, 4] wxyz (normalised inside)
    scales: Tensor,  # [N, 3] activated (not log)
    opacities: Tensor,  # [N] activated (not logits)
    colors: Tensor,  # [N, K, 3] SH coefficients, or [N, D] features (RGB: D = 3)
    viewmats: Tensor,  # [C, 4, 4] world-to-camera, OpenCV axes
    Ks: Tensor,  # [C, 3, 3] OpenCV intrinsics, pixel centres at integers
    width: int,
    height: int,
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,  # [C, D] or [D]
    *,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    backend: str = "auto",  # "auto" | "gsplat" | "torch"
    absgrad: bool = False,
    return_info: bool = False,
):
    """Render Gaussians → (rgb [C, H, W, D], alpha [C, H, W, 1], depth [C, H, W, 1]) (+ info when asked).

    `depth` is the expected camera-space z (accumulated w·z divided by alpha; 0 where alpha is 0). With
    `colors` of shape [N, K, 3], `sh_degree` defaults to the highest the K coefficients hold. `info` carries
    what gsplat's densification strategies read: means2d [C, N, 2] (in the graph), radii [C, N, 2], depths,
    width, height, n_cameras.
    """
    if colors.dim() == 3 and sh_degree is None:
        sh_degree = int(math.isqrt(colors.shape[1])) - 1
    if colors.dim() == 2 and sh_degree is not None:
        raise ValueError("sh_degree given but colors are plain features [N, D]; pass SH as [N, K, 3].")
    if backgrounds is not None and backgrounds.dim() == 1:
        backgrounds = backgrounds.expand(viewmats.shape[0], -1)
    use = _choose_backend(backend, means)
    fn = _rasterize_gsplat if use == "gsplat" else _rasterize_torch
    rgb, alpha, depth, info = fn(means, quats, scales, opacities, colors, viewmats, Ks, int(width), int(height),
                                 sh_degree, backgrounds, near_plane, far_plane, eps2d, absgrad)
    info["backend"] = use
    return (rgb, alpha, depth, info) if return_info else (rgb, alpha, depth)


def gsplat_cuda_available() -> bool:
    """True when CUDA is present and gsplat's CUDA extension loads."""
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat.cuda._backend import _C
    except Exception:  # noqa: BLE001  (a broken or uncompiled extension is simply unavailable)
        return False
    return _C is not None


def _choose_backend(backend: str, means: Tensor) -> str:
    if backend not in ("auto", "gsplat", "torch"):
        raise ValueError(f"backend must be 'auto', 'gsplat' or 'torch', not {backend!r}")
    if backend == "torch":
        return "torch"
    if means.is_cuda and gsplat_cuda_available():
        return "gsplat"
    if backend == "gsplat":
        raise DependencyError("gsplat's CUDA rasterizer needs a CUDA device and gsplat's compiled kernels; "
                              "the tensors are on " + str(means.device) + ".", code="dependency.gsplat_cuda")
    return "torch"


def _pixel_centre_shift(Ks: Tensor) -> Tensor:
    """Our K (pixel centres at integers) → gsplat's K (pixel centres at +0.5)."""
    Ks = Ks.clone()
    Ks[..., 0, 2] += 0.5
    Ks[..., 1, 2] += 0.5
    return Ks


def _rasterize_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                      backgrounds, near_plane, far_plane, eps2d, absgrad):
    from gsplat import rasterization

    renders, alpha, meta = rasterization(
        means, quats, scales, opacities, colors, viewmats, _pixel_centre_shift(Ks), width, height,
        near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, sh_degree=sh_degree, packed=False,
        backgrounds=backgrounds, render_mode="RGB+ED", absgrad=absgrad)
    info = {k: meta[k] for k in ("means2d", "radii", "depths", "width", "height", "n_cameras")}
    info["gaussian_ids"] = None
    return renders[..., :-1], alpha, renders[..., -1:], info


def _rasterize_torch(means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree,
                     backgrounds, near_plane, far_plane, eps2d, absgrad):
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics

    if absgrad:
        raise ValueError("absgrad is only available with gsplat's CUDA rasterizer.")
    C, N, W, H = viewmats.shape[0], means.shape[0], width, height
    dtype = means.dtype
    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)  # [N, 3, 3]
    _, means2d, depths, conics, _ = _fully_fused_projection(
        means, covars, viewmats, _pixel_centre_shift(Ks), W, H, eps2d, near_plane, far_plane)
    # means2d [C, N, 2] (pixel centres at +0.5), depths [C, N], conics [C, N, 3] (upper triangle of Σ2⁻¹)
    radii = _opacity_aware_radii(means2d, depths, conics, opacities, W, H, near_plane, far_plane)  # [C, N, 2]

    D = colors.shape[-1]
    # Visible (camera, Gaussian) pairs, ordered by camera then depth: position = compositing rank.
    with torch.no_grad():
        cam_ids, gs_ids = (radii > 0).all(-1).nonzero(as_tuple=True)  # [V]
        order = torch.argsort(depths.detach()[cam_ids, gs_ids], stable=True)
        order = order[torch.argsort(cam_ids[order], stable=True)]
        cam_ids, gs_ids = cam_ids[order], gs_ids[order]
    flat = cam_ids * N + gs_ids  # [V] index into [C*N]
    if sh_degree is None:
        fv_col = colors.index_select(0, gs_ids)  # [V, D]
    elif sh_degree == 0:
        fv_col = torch.clamp_min(colors[:, 0].index_select(0, gs_ids) * _SH_C0 + 0.5, 0.0)  # [V, 3]
    else:
        campos = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3]
        dirs = means.index_select(0, gs_ids) - campos.index_select(0, cam_ids)  # [V, 3]
        k = (sh_degree + 1) ** 2
        fv_col = _spherical_harmonics(sh_degree, dirs, colors[:, :k].index_select(0, gs_ids))
        fv_col = torch.clamp_min(fv_col + 0.5, 0.0)  # [V, 3]
    # Per visible pair: mean x, y | conic a, b, c | opacity, and features D | depth
    geo = torch.cat([means2d.reshape(C * N, 2), conics.reshape(C * N, 3),
                     opacities[None].expand(C, N).reshape(C * N, 1)], 1).index_select(0, flat)  # [V, 6]
    feat = torch.cat([fv_col, depths.reshape(C * N).index_select(0, flat)[:, None]], 1)  # [V, D + 1]
    pair_v, pix = _pixel_pairs(geo.detach(), cam_ids, W, H)  # [M], [M] sorted by pixel then depth rank

    mx, my, ca, cb, cc, op = geo.index_select(0, pair_v).unbind(1)  # 6 x [M]
    fv = feat.index_select(0, pair_v)  # [M, D + 1]
    dx = (pix % W).to(dtype) + 0.5 - mx  # pixel centres in gsplat's frame
    dy = ((pix // W) % H).to(dtype) + 0.5 - my
    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
    alpha = torch.clamp_max(op * torch.exp(-sigma), ALPHA_MAX)
    alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_THRESHOLD), alpha, torch.zeros_like(alpha))

    # Front-to-back compositing per pixel (pairs sorted by pixel, then depth), with a hand-written backward.
    with torch.no_grad():
        seg_pix, seg_len = torch.unique_consecutive(pix, return_counts=True)  # [P], [P]
    pix = pix.long()
    out = _Composite.apply(alpha, fv, pix, seg_len, C * H * W)  # [C*H*W, D + 2]: Σw·f, Σw
    out = out.reshape(C, H, W, D + 2)
    rgb, acc_depth, alpha_img = out[..., :D], out[..., D:D + 1], out[..., D + 1:]
    if backgrounds is not None:
        rgb = rgb + backgrounds[:, None, None, :] * (1.0 - alpha_img)
    depth = acc_depth / alpha_img.clamp(min=1e-10)
    info = {"means2d": means2d, "radii": radii, "depths": depths, "width": W, "height": H, "n_cameras": C,
            "gaussian_ids": None, "n_pairs": int(pix.numel()), "n_pixels_hit": int(seg_pix.numel())}
    return rgb, alpha_img, depth, info


class _Composite(torch.autograd.Function):
    """Σ_i w_i·[f_i, 1] per pixel with w_i = α_i·Π_{j<i}(1 − α_j), cut before transmittance reaches T_MIN.

    alpha [M], feats [M, F] for pairs sorted by pixel then depth; pix [M] (int64), seg_len [P] pairs per hit
    pixel. Backward: ∂/∂f_i = w_i·g, ∂/∂α_i = T_i·(g·f_i + g_a) − (Σ_{k>i} w_k·(g·f_k + g_a)) / (1 − α_i).
    """

    @staticmethod
    def forward(ctx, alpha, feats, pix, seg_len, n_pixels):
        log1m = torch.log1p(-alpha.double())  # [M]
        cs = torch.cumsum(log1m, 0)
        first = torch.cumsum(seg_len, 0) - seg_len
        log_t_incl = cs - (cs[first] - log1m[first]).repeat_interleave(seg_len)
        keep = log_t_incl > math.log(T_MIN)
        trans = torch.where(keep, torch.exp(log_t_incl - log1m), 0.0).to(alpha.dtype)  # T_i (0 when cut)
        weight = alpha * trans  # [M]
        out = torch.zeros(n_pixels, feats.shape[1] + 1, dtype=alpha.dtype, device=alpha.device)
        out.index_add_(0, pix, torch.cat([weight[:, None] * feats, weight[:, None]], 1))
        ctx.save_for_backward(alpha, feats, pix, seg_len, trans)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        alpha, feats, pix, seg_len, trans = ctx.saved_tensors
        g = grad_out.index_select(0, pix)  # [M, F + 1]
        gf, ga = g[:, :-1], g[:, -1]
        weight = alpha * trans
        grad_feats = weight[:, None] * gf if ctx.needs_input_grad[1] else None
        grad_alpha = None
        if ctx.needs_input_grad[0]:
            per = (gf * feats).sum(1) + ga  # [M] g·f_i + g_a
            s = (weight * per).double()
            cs = torch.cumsum(s, 0)
            last = torch.cumsum(seg_len, 0) - 1
            after = cs[last].repeat_interleave(seg_len) - cs  # Σ_{k>i} in the same pixel
            grad_alpha = torch.where(trans > 0, trans * per - (after / (1.0 - alpha.double())).to(alpha.dtype), 0.0)
        return grad_alpha, grad_feats, None, None, None


@torch.no_grad()
def _pixel_pairs(attrs: Tensor, cam_ids: Tensor, W: int, H: int) -> tuple[Tensor, Tensor]:
    """Every (visible Gaussian, pixel) pair where the Gaussian's alpha reaches 1/255, in compositing order.

    attrs [V, 6] (mean x, y, conic a, b, c, opacity), V ordered by camera then depth. Returns pair_v [M] (int64, index
    into V) and pix [M] (int32 flat pixel index over cameras), sorted by pixel, then by depth rank.
    """
    V, device = attrs.shape[0], attrs.device
    m2, (ca, cb, cc), op = attrs[:, 0:2].double(), attrs[:, 2:5].double().unbind(1), attrs[:, 5].double()
    # alpha >= 1/255  <=>  σ = ½a·dx² + b·dx·dy + ½c·dy² <= L = ln(255·o): an ellipse, scanned row by row.
    L = torch.log((op / ALPHA_THRESHOLD).clamp_min(1.0))  # [V]
    det = (ca * cc - cb * cb).clamp_min(1e-30)
    half_y = torch.sqrt(2.0 * L * ca / det)  # the ellipse's half height (a / det = Σ2_yy)
    y_lo = torch.ceil(m2[:, 1] - half_y - 0.5).clamp_min(0).long()  # pixel y covers centre y + 0.5
    y_hi = torch.minimum(torch.floor(m2[:, 1] + half_y - 0.5).long(), torch.tensor(H - 1, device=device))
    n_rows = (y_hi - y_lo + 1).clamp_min(0)  # [V]
    row_v = torch.repeat_interleave(torch.arange(V, device=device), n_rows)  # [R]
    py = y_lo[row_v] + torch.arange(row_v.numel(), device=device) - (torch.cumsum(n_rows, 0) - n_rows)[row_v]
    dy = py.double() + 0.5 - m2[row_v, 1]
    a_r, b_r = ca[row_v], cb[row_v]
    disc = (b_r * dy) ** 2 - a_r * (cc[row_v] * dy * dy - 2.0 * L[row_v])  # of ½a·dx² + b·dy·dx + (½c·dy² − L)
    root = torch.sqrt(disc.clamp_min(0.0))
    x_mid = m2[row_v, 0] - b_r * dy / a_r
    slack = 1e-4  # a hair wider than exact: the compositor's own alpha test rejects the extra pixels
    x_lo = torch.ceil(x_mid - root / a_r - 0.5 - slack).clamp_min(0).long()
    x_hi = torch.minimum(torch.floor(x_mid + root / a_r - 0.5 + slack).long(), torch.tensor(W - 1, device=device))
    n_px = torch.where(disc >= 0, (x_hi - x_lo + 1).clamp_min(0), torch.zeros_like(x_hi))  # [R]
    pair_r = torch.repeat_interleave(torch.arange(row_v.numel(), device=device), n_px)  # [M]
    px = x_lo[pair_r] + torch.arange(pair_r.numel(), device=device) - (torch.cumsum(n_px, 0) - n_px)[pair_r]
    pair_v, py = row_v[pair_r], py[pair_r]
    pix = ((cam_ids.index_select(0, pair_v) * H + py) * W + px)
    if _fits_int32(pix):
        pix = pix.int()
    pix, perm = torch.sort(pix, stable=True)
    return pair_v.index_select(0, perm), pix


def _fits_int32(pix: Tensor) -> bool:
    return pix.numel() == 0 or int(pix.max()) < 2**31 - 1


@torch.no_grad()
def _opacity_aware_radii(means2d, depths, conics, opacities, width, height, near_plane, far_plane):
    """Bounding-box half sizes [C, N, 2] (int32) as gsplat's CUDA projection computes them; 0 = culled.

    Outside the box a Gaussian's alpha is below 1/255 everywhere, so culling by it changes nothing.
    """
    a, b, c = conics.unbind(-1)  # Σ2⁻¹ = [[a, b], [b, c]]
    det_inv = (a * c - b * b).clamp_min(1e-30)
    var = torch.stack([c / det_inv, a / det_inv], -1)  # [C, N, 2] diagonal of Σ2
    op = opacities[None].expand_as(depths)
    extend = torch.sqrt(2.0 * torch.log((op / ALPHA_THRESHOLD).clamp_min(1.0))).clamp_max(EXTEND_MAX)
    radii = torch.ceil(extend[..., None] * torch.sqrt(var))
    valid = (depths > near_plane) & (depths < far_plane) & (op >= ALPHA_THRESHOLD) & (a * c - b * b > 0)
    valid &= (radii > 0).any(-1)
    valid &= (means2d[..., 0] + radii[..., 0] > 0) & (means2d[..., 0] - radii[..., 0] < width)
    valid &= (means2d[..., 1] + radii[..., 1] > 0) & (means2d[..., 1] - radii[..., 1] < height)
    radii = torch.where(valid[..., None], radii, torch.zeros_like(radii))
    return radii.int()
