"""`evaluate --reconstruct`: the views the multi-view stage generated → 3D Gaussians (backend/splat, the splat
stage's recipe, every generated view used for fitting) → renders from all 96 of the rig's cameras, so each
ground-truth view, including those of rings the model did not generate, is compared with the reconstruction."""
from __future__ import annotations

import numpy as np

from .. import cameras


def fit_generated(generated: dict[int, np.ndarray], steps: int, seed: int = 0, device: str = "auto",
                  init_points: int = 20_000, check_cancel=None, progress=lambda f, m: None,
                  intrinsics: np.ndarray | None = None) -> dict:
    """Gaussians (ply.py splat dict) fitted to generated rings {ring: (16, S, S, 4) uint8 RGBA}, cameras of the
    un-turned orbit (frame 0 at azimuth 0); `intrinsics` (3, 3): every view's K when the views are framed otherwise
    than the rig's (evaluate's input framing, framing.framed_intrinsics)."""
    import torch

    from ..splat.optimize import FitConfig, fit

    rings = sorted(generated)
    size = next(iter(generated.values())).shape[1]
    cams = cameras.rig_cameras(size, rings=rings)
    views = torch.from_numpy(np.concatenate([generated[e] for e in rings]).astype(np.float32) / 255.0)
    views[..., :3] *= views[..., 3:] > 0
    viewmats = torch.tensor(np.stack([c["w2c"] for c in cams]), dtype=torch.float32)
    Ks = torch.tensor(np.stack([c["K"] if intrinsics is None else intrinsics for c in cams]), dtype=torch.float32)
    cfg = FitConfig.ours(steps, init_points=init_points, holdout_every=0, seed=seed, device=device,
                         checkpoint_every=0)

    def on_progress(step, total, info, preview):
        progress(step / total, f"reconstruction step {step}/{total}, {info['n_gaussians']} Gaussians")

    return fit(views, viewmats, Ks, cfg, check_cancel=check_cancel, on_progress=on_progress).splat


def render_splat(splat: dict, cams: list[dict], device: str = "cpu") -> np.ndarray:
    """Straight RGBA renders (C, H, W, 4) float in [0, 1] of a splat dict from cameras.json entries."""
    import torch

    from ..splat.rasterize import rasterize

    dev = torch.device(device)
    t = {k: torch.as_tensor(v, dtype=torch.float32, device=dev) for k, v in splat.items()}
    out = []
    with torch.no_grad():
        for c in cams:
            rgb, alpha, _ = rasterize(t["means"], t["quats"], torch.exp(t["log_scales"]),
                                      torch.sigmoid(t["opacity_logits"]), t["sh"],
                                      torch.tensor(np.asarray(c["w2c"])[None], dtype=torch.float32, device=dev),
                                      torch.tensor(np.asarray(c["K"])[None], dtype=torch.float32, device=dev),
                                      int(c["width"]), int(c["height"]))
            straight = (rgb / alpha.clamp_min(1e-6)).clamp(0, 1) * (alpha > 0)
            out.append(torch.cat([straight, alpha.clamp(0, 1)], -1)[0].cpu().numpy().astype(np.float64))
    return np.stack(out)
