"""Denoiser scaling, EDM schedule, linear per-frame guidance and the Euler sampler of ID-TS (SPEC 4.6, 4.7).

Functional and stateless: `edm_sigmas` gives the schedule, `denoise` wraps the UNet as D(x, sigma),
`guided_denoise` forms [uc, c] in one batch and mixes them per frame, `sample_euler` runs the loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

SIGMA_MIN = 0.002
SIGMA_MAX = 700.0
RHO = 7.0
GUIDANCE_MIN = 1.0
GUIDANCE_MAX = 2.5


def edm_sigmas(num_steps: int, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX,
               rho: float = RHO) -> torch.Tensor:
    """EDM (Karras) schedule, descending, with a final 0 appended: [num_steps + 1], float32."""
    ramp = torch.linspace(0, 1, num_steps)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sigmas, sigmas.new_zeros([1])])


def v_scalings(sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """VScalingWithEDMcNoise: (c_skip, c_out, c_in, c_noise) for sigma [N]."""
    c_skip = 1.0 / (sigma ** 2 + 1.0)
    c_out = -sigma / (sigma ** 2 + 1.0) ** 0.5
    c_in = 1.0 / (sigma ** 2 + 1.0) ** 0.5
    c_noise = 0.25 * sigma.log()
    return c_skip, c_out, c_in, c_noise


def guidance_scale(num_frames: int, min_scale: float = GUIDANCE_MIN, max_scale: float = GUIDANCE_MAX) -> torch.Tensor:
    """Per-frame guidance scale linspace(min, max, T): [T]. Frame 0 (the input view) gets `min_scale`."""
    return torch.linspace(min_scale, max_scale, num_frames)


@dataclass
class Conditioning:
    """Per-video conditioning. crossattn [B, N, D]; vector [B, V]; concat [B*T, 4, h, w]."""

    crossattn: torch.Tensor
    vector: torch.Tensor
    concat: torch.Tensor

    @staticmethod
    def cat(a: "Conditioning", b: "Conditioning") -> "Conditioning":
        return Conditioning(torch.cat([a.crossattn, b.crossattn]), torch.cat([a.vector, b.vector]),
                            torch.cat([a.concat, b.concat]))


def denoise(unet: Callable, x: torch.Tensor, sigma: torch.Tensor, cond: Conditioning, num_frames: int,
            image_only_indicator: torch.Tensor | None = None) -> torch.Tensor:
    """D(x, sigma) = UNet([x c_in, concat], c_noise, crossattn, vector) c_out + x c_skip.

    x: [B*T, 4, h, w]; sigma: [B*T] -> [B*T, 4, h, w]
    """
    c_skip, c_out, c_in, c_noise = (c[:, None, None, None] if i < 3 else c for i, c in enumerate(v_scalings(sigma)))
    net_in = torch.cat([x * c_in, cond.concat.to(x.dtype)], dim=1)
    out = unet(net_in, c_noise, cond.crossattn, cond.vector, num_frames=num_frames,
               image_only_indicator=image_only_indicator)
    return out * c_out + x * c_skip


def guided_denoise(unet: Callable, x: torch.Tensor, sigma: torch.Tensor, cond: Conditioning,
                   uncond: Conditioning, scale: torch.Tensor, num_frames: int, split: bool = False) -> torch.Tensor:
    """One network call on [uc, c] (two calls when `split`, to save memory); D = D_u + s_t (D_c - D_u) per frame t.

    x: [B*T, 4, h, w]; sigma: scalar; scale: [T] -> [B*T, 4, h, w]
    """
    n = x.shape[0]
    s_in = sigma.reshape(1).to(x.dtype).expand(n)
    if split:
        d_u = denoise(unet, x, s_in, uncond, num_frames)
        d_c = denoise(unet, x, s_in, cond, num_frames)
    else:
        d_u, d_c = denoise(unet, torch.cat([x, x]), torch.cat([s_in, s_in]), Conditioning.cat(uncond, cond),
                           num_frames).chunk(2)
    s = scale.to(x).repeat(n // num_frames)[:, None, None, None]
    return d_u + s * (d_c - d_u)


def sample_euler(unet: Callable, init: torch.Tensor, cond: Conditioning, uncond: Conditioning, sigmas: torch.Tensor,
                 num_frames: int, scale: torch.Tensor | None = None,
                 callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
                 split: bool = False) -> torch.Tensor:
    """EulerEDMSampler with s_churn = 0: x0 = init sqrt(1 + sigma_0^2); x += (x - D)/sigma_i (sigma_i+1 - sigma_i).

    init: [B*T, 4, h, w] unit-variance latent; sigmas: [n + 1] ending in 0.
    callback(step, x_after_step, denoised) is called after every step (it may raise to cancel).
    """
    if scale is None:
        scale = guidance_scale(num_frames)
    sigmas = sigmas.to(init.device)
    x = init * torch.sqrt(1.0 + sigmas[0] ** 2)
    for i in range(len(sigmas) - 1):
        sigma, nxt = sigmas[i], sigmas[i + 1]
        d = guided_denoise(unet, x, sigma, cond, uncond, scale, num_frames, split)
        x = x + (x - d) / sigma * (nxt - sigma)
        if callback is not None:
            callback(i, x, d)
    return x
