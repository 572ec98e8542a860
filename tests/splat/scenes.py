"""Small synthetic splat scenes and rig cameras for the splat tests."""
from __future__ import annotations

import numpy as np
import torch

from headforge.backend import cameras


def rig_tensors(size: int, views, dtype=torch.float64, rings=None):
    """(viewmats [C, 4, 4], Ks [C, 3, 3]) of the given rig view indices (index into rig_cameras order)."""
    cams = cameras.rig_cameras(size, rings=rings)
    cams = [cams[i] for i in views]
    return (torch.tensor(np.stack([c["w2c"] for c in cams]), dtype=dtype),
            torch.tensor(np.stack([c["K"] for c in cams]), dtype=dtype))


def random_gaussians(n: int, seed: int = 0, sh_k: int = 16, spread: float = 0.12, log_scale: float = -4.5,
                     opacity=(0.05, 0.95), dtype=torch.float64):
    """Random Gaussians around the orbit centre: (means, quats, scales, opacities, sh [N, K, 3])."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) - 0.5) * spread
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.exp(torch.randn(n, 3, generator=g, dtype=dtype) * 0.5 + log_scale)
    lo, hi = opacity
    opacities = torch.rand(n, generator=g, dtype=dtype) * (hi - lo) + lo
    sh = torch.randn(n, sh_k, 3, generator=g, dtype=dtype) * 0.3
    return means, quats, scales, opacities, sh
