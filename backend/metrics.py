"""Image-quality metrics for splat fits and benchmarks: PSNR, SSIM (whole image or masked), optional LPIPS.

Images are float tensors in [0, 1], shape [H, W, 3] or [B, H, W, 3]; masks [H, W] / [B, H, W] (or with a
trailing 1) in [0, 1]. Compare renders composited over white against views composited over white
(`over_white`), the framing DESIGN.md uses everywhere. SSIM is the standard one (Wang et al. 2004: 11×11
Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03) and is differentiable, so the fitting loss uses it too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def over_white(rgb: Tensor, alpha: Tensor) -> Tensor:
    """Composite straight (non-premultiplied) colour [..., 3] with alpha [..., 1] over white."""
    return rgb * alpha + (1.0 - alpha)


def psnr(img: Tensor, ref: Tensor, mask: Tensor | None = None) -> float:
    """Peak signal-to-noise ratio in dB (peak 1.0) over all pixels, or over pixels weighted by `mask`."""
    dt = torch.promote_types(torch.promote_types(img.dtype, ref.dtype), torch.float32)
    se = (img.to(dt) - ref.to(dt)) ** 2
    if mask is None:
        mse = se.mean()
    else:
        m = _mask_like(mask, se)
        mse = (se * m).sum() / (m.sum() * se.shape[-1]).clamp_min(1e-12)
    return float(10.0 * torch.log10(1.0 / mse.clamp_min(1e-20)))


def ssim_map(img: Tensor, ref: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Per-pixel SSIM [B, H, W] (mean over channels), same size as the input (borders replicate-padded)."""
    x, y = _bchw(img), _bchw(ref)
    c = x.shape[1]
    g = torch.exp(-((torch.arange(window, dtype=x.dtype, device=x.device) - window // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    kx, ky = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t):
        t = F.conv2d(F.pad(t, (window // 2, window // 2, 0, 0), mode="replicate"), kx, groups=c)
        return F.conv2d(F.pad(t, (0, 0, window // 2, window // 2), mode="replicate"), ky, groups=c)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean(1)


def ssim(img: Tensor, ref: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean SSIM (a 0-d tensor, differentiable). Without a mask: over the image less a 5-pixel border, as
    scikit-image's `structural_similarity(gaussian_weights=True)` reports it; with one: weighted by it."""
    s = ssim_map(img, ref)
    if mask is None:
        return s[:, 5:-5, 5:-5].mean()
    m = _mask_like(mask, s[..., None])[..., 0]
    return (s * m).sum() / m.sum().clamp_min(1e-12)


def lpips(img: Tensor, ref: Tensor) -> float | None:
    """LPIPS is optional: it needs the `lpips` package and its network weights on disk; None when absent."""
    try:
        import lpips as _lpips  # noqa: F401
    except ImportError:
        return None
    from .models import store

    weights = store.model_path("lpips", "alex.pth")
    if not weights.is_file():
        return None
    net = _lpips.LPIPS(net="alex", pretrained=True, model_path=str(weights), verbose=False)
    with torch.no_grad():
        return float(net(_bchw(img) * 2 - 1, _bchw(ref) * 2 - 1).mean())


def image_metrics(rgb: Tensor, alpha: Tensor, ref_rgba: Tensor) -> dict:
    """Metrics of a render (rgb [..., H, W, 3] straight colour, alpha [..., H, W, 1]) against a view
    (ref_rgba [..., H, W, 4]): PSNR/SSIM over white, PSNR/SSIM inside the view's mask, alpha IoU."""
    ref_rgb, ref_a = ref_rgba[..., :3], ref_rgba[..., 3:4]
    a, b = over_white(rgb, alpha).clamp(0, 1), over_white(ref_rgb, ref_a)
    m = ref_a[..., 0] > 0.5
    inter = ((alpha[..., 0] > 0.5) & m).sum()
    union = ((alpha[..., 0] > 0.5) | m).sum()
    out = {"psnr": psnr(a, b), "ssim": float(ssim(a, b)), "psnr_masked": psnr(a, b, m.float()),
           "ssim_masked": float(ssim(a, b, m.float())), "alpha_iou": float(inter / union.clamp_min(1))}
    lp = lpips(a, b)
    if lp is not None:
        out["lpips"] = lp
    return out


def _bchw(t: Tensor) -> Tensor:
    t = t.float() if t.dtype not in (torch.float32, torch.float64) else t
    return (t[None] if t.dim() == 3 else t).permute(0, 3, 1, 2)


def _mask_like(mask: Tensor, like: Tensor) -> Tensor:
    """Mask → broadcastable to `like` [..., H, W, C]."""
    m = mask.to(like.dtype)
    if m.dim() == like.dim() and m.shape[-1] == 1:
        return m
    return m[..., None]

