"""The training losses of ID-TS, as the reference defines them, with gradients where the reference had none.

Diffusion (sgm `StandardDiffusionLoss`, Hi3D train-v01.yaml): one σ per video from `EDMSampling` (ln σ ~ N(p_mean,
p_std²), p_mean 1.0, p_std 1.6), repeated over its frames; x_σ = x + σ n (stage 2: n = ½ ε + ½ z₁, z₁ the encoded
stage-1 video); D = the v-scaled denoiser (idts.sampler.denoise); loss = mean over latent elements of
w(σ) (D − x)² with `VWeighting` w = (σ² + 1)/σ².

On the decoded x̂₀ = VAE.decode(D) against the decoded target VAE.decode(x) (HQ-Head `vtdm_gen_v04.forward`):
LPIPS(x̂₀, x) per frame and the identity term 1 − ⟨ArcFace(x̂₀), ArcFace(x)⟩ with unit IR-SE-50 embeddings of the
frames mapped to [0, 1], clamped and resized to 112 (the paper's L_id; the IR-SE-50 is the stage's own identity
encoder: the reference's separate `id_model` copy loads the same `trained_arcface.pth`). The reference computes both
under `torch.no_grad()`, so they add a constant and train nothing; here the gradient flows from them through the
frozen decoder into D and the UNet. The frozen models' parameters get no gradient.
"""
from __future__ import annotations

import torch

from ..idts.identity import IdentityEncoder


def sample_sigmas(gen: torch.Generator, n: int, p_mean: float, p_std: float) -> torch.Tensor:
    """EDMSampling: σ = exp(p_mean + p_std·N(0, 1)), [n] float32 on the CPU."""
    return (p_mean + p_std * torch.randn(n, generator=gen)).exp()


def v_weighting(sigma: torch.Tensor) -> torch.Tensor:
    """VWeighting (= EDMWeighting with σ_data 1): (σ² + 1)/σ²."""
    return (sigma ** 2 + 1.0) / sigma ** 2


def diffusion_loss(denoised: torch.Tensor, target: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-frame weighted L2: denoised, target [N, 4, h, w], sigma [N] -> [N]."""
    w = v_weighting(sigma.float())[:, None, None, None]
    return (w * (denoised.float() - target.float()) ** 2).flatten(1).mean(1)


def identity_loss(encoder: IdentityEncoder, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − cosine of the unit ArcFace embeddings: pred, target [N, 3, H, W] in [-1, 1] -> [N] (gradient to pred)."""
    with torch.no_grad():
        e_t = encoder.embed(target.to(encoder.dtype)).float()
    e_p = encoder.embed(pred.to(encoder.dtype)).float()
    return 1.0 - (e_p * e_t).sum(dim=1)


def lpips_term(net: torch.nn.Module, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """LPIPS-VGG of [-1, 1] frames at their own size (sgm's LPIPS on the decoded frames): [N, 3, H, W] -> [N]."""
    dtype = next(net.parameters()).dtype
    return net(pred.to(dtype), target.to(dtype)).float().reshape(-1)
