"""PSNR and SSIM against scikit-image's implementations, masks, and compositing over white."""
import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from headforge.backend.metrics import image_metrics, over_white, psnr, ssim


def _images(seed=0, size=40):
    rng = np.random.default_rng(seed)
    a = rng.random((size, size, 3))
    b = np.clip(a + rng.normal(0, 0.08, a.shape), 0, 1)
    return a, b


def test_psnr_and_ssim_match_scikit_image():
    a, b = _images()
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert abs(psnr(ta, tb) - peak_signal_noise_ratio(b, a, data_range=1.0)) < 1e-6
    ref = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, data_range=1.0)
    assert abs(float(ssim(ta, tb)) - ref) < 1e-6
    assert abs(float(ssim(ta, ta)) - 1.0) < 1e-9


def test_masked_metrics_ignore_the_outside():
    a, b = _images(seed=1)
    mask = np.zeros(a.shape[:2])
    mask[10:30, 10:30] = 1
    b2 = b.copy()
    b2[mask == 0] = 0.0  # corrupt only the outside
    ta, tb, tb2, tm = (torch.from_numpy(x) for x in (a, b, b2, mask))
    assert abs(psnr(ta, tb, tm) - psnr(ta, tb2, tm)) < 1e-9
    inside = ((a - b)[10:30, 10:30] ** 2).mean()
    assert abs(psnr(ta, tb, tm) - 10 * np.log10(1 / inside)) < 1e-6
    assert psnr(ta, tb2) < psnr(ta, tb2, tm)


def test_image_metrics_over_white():
    rng = np.random.default_rng(2)
    rgba = torch.from_numpy(rng.random((32, 32, 4)))
    rgba[..., 3] = (rgba[..., 3] > 0.5).double()
    m = image_metrics(rgba[..., :3], rgba[..., 3:], rgba)
    assert m["psnr"] > 100 and abs(m["ssim"] - 1) < 1e-9 and m["alpha_iou"] == 1.0
    white = over_white(rgba[..., :3], torch.zeros_like(rgba[..., 3:]))
    assert torch.all(white == 1.0)
