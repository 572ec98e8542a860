"""The loss definitions against the reference's (sgm EDMSampling, VWeighting, StandardDiffusionLoss; HQ-Head
id_loss)."""
from __future__ import annotations

import math

import torch

from headforge.backend.idts.identity import IdentityEncoder
from headforge.backend.train.losses import diffusion_loss, identity_loss, sample_sigmas, v_weighting


def test_sigma_sampling_and_weighting():
    s = sample_sigmas(torch.Generator().manual_seed(0), 200_000, 1.0, 1.6)
    logs = s.log()
    assert abs(float(logs.mean()) - 1.0) < 0.01 and abs(float(logs.std()) - 1.6) < 0.01  # ln σ ~ N(1.0, 1.6²)
    sigma = torch.tensor([0.01, 0.5, 1.0, 7.0, 700.0])
    edm = (sigma ** 2 + 1.0) / (sigma * 1.0) ** 2  # EDMWeighting with σ_data = 1 (v-scaling's)
    assert torch.allclose(v_weighting(sigma), edm)


def test_diffusion_loss_is_the_weighted_l2_per_frame():
    g = torch.Generator().manual_seed(1)
    d, x = torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 4, 5, 5, generator=g)
    sigma = torch.tensor([0.3, 2.0, 40.0])
    want = torch.stack([(1 + s ** 2) / s ** 2 * ((d[i] - x[i]) ** 2).mean() for i, s in enumerate(sigma)])
    assert torch.allclose(diffusion_loss(d, x, sigma), want, rtol=1e-6)


def test_identity_loss_is_one_minus_cosine():
    torch.manual_seed(0)
    enc = IdentityEncoder(embedding_dim=32, token_dim=64, widths=(16, 16, 32, 32), units=(1, 1, 1, 1)).eval()
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1, torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    assert float(identity_loss(enc, a, a).abs().max()) < 1e-6
    ea, eb = enc.embed(a), enc.embed(b)
    want = 1 - torch.nn.functional.cosine_similarity(ea, eb)
    got = identity_loss(enc, a, b)
    assert torch.allclose(got, want, atol=1e-6) and float(got.min()) > 0
    assert 0 <= float(got.max()) <= 2 and not math.isnan(float(got.sum()))
