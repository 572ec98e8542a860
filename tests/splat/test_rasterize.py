"""The PyTorch rasterizer against the dense reference (values and gradients) and the camera conventions."""
import pytest
import torch

from headforge.backend import cameras
from headforge.backend.errors import DependencyError
from headforge.backend.splat.rasterize import rasterize
from headforge.backend.splat.reference import rasterize_dense

from .scenes import random_gaussians, rig_tensors


def _weights(t: torch.Tensor) -> torch.Tensor:
    """Fixed pseudo-random weights so every output pixel and channel gets a distinct gradient."""
    return torch.cos(torch.arange(t.numel(), dtype=t.dtype).reshape(t.shape) * 0.7)


def _loss(outs):
    return sum((o * _weights(o)).sum() for o in outs)


@pytest.mark.parametrize("sh_k,opacity,n", [(16, (0.05, 0.95), 60), (1, (0.05, 0.95), 40), (9, (0.9, 0.99), 150)])
def test_matches_dense_reference_values_and_gradients(sh_k, opacity, n):
    size = 24
    params = random_gaussians(n, seed=sh_k + n, sh_k=sh_k, opacity=opacity)
    viewmats, Ks = rig_tensors(size, [0, 5, 40, 90])  # front, side, up, and a ring-5 view
    bg = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    ours_in = [p.clone().requires_grad_(True) for p in params]
    ref_in = [p.clone().requires_grad_(True) for p in params]
    ours = rasterize(*ours_in, viewmats, Ks, size, size, backgrounds=bg, backend="torch")
    ref = rasterize_dense(*ref_in, viewmats, Ks, size, size, backgrounds=bg)
    assert ours[1].max() > 0.5, "the scene must cover pixels"
    if opacity[0] > 0.5:  # dense opaque scene: the transmittance cut-off must be exercised
        assert (ref[1] > 0.999).sum() > 20
    for name, a, b in zip(("rgb", "alpha", "depth"), ours, ref):
        assert a.shape == b.shape == (4, size, size, 3 if name == "rgb" else 1)
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9, msg=name)
    g_ours = torch.autograd.grad(_loss(ours), ours_in)
    g_ref = torch.autograd.grad(_loss(ref), ref_in)
    for name, a, b in zip(("means", "quats", "scales", "opacities", "sh"), g_ours, g_ref):
        assert b.abs().max() > 0, name
        torch.testing.assert_close(a, b, atol=1e-8 * max(1.0, b.abs().max().item()), rtol=1e-7, msg=name)


def test_float32_close_to_float64_reference_with_rgb_features():
    size = 32
    means, quats, scales, opacities, sh = random_gaussians(120, seed=3)
    rgb_feats = torch.rand(120, 3, dtype=torch.float64)
    viewmats, Ks = rig_tensors(size, [2, 20])
    ref = rasterize_dense(means, quats, scales, opacities, rgb_feats, viewmats, Ks, size, size)
    f32 = [t.float() for t in (means, quats, scales, opacities, rgb_feats, viewmats, Ks)]
    ours = rasterize(*f32, size, size)
    for a, b in zip(ours, ref):
        assert a.dtype == torch.float32
        assert (a.double() - b).abs().max() < 2e-4
    # Expected depth lies within the scene's depth range where something is drawn.
    drawn = ref[1][..., 0] > 0.5
    assert ((ours[2][..., 0][drawn] - 1.5).abs() < 0.12).all()


def test_single_gaussian_lands_on_projected_pixel_at_its_depth():
    """The conventions: OpenCV w2c/K, pixel centres at integer coordinates, expected depth = camera z."""
    size = 64
    point = torch.tensor([[0.031, -0.02, 0.017]], dtype=torch.float64)
    cams = cameras.rig_cameras(size)
    for index in (0, 7, 37, 90):
        cam = cams[index]
        uv, z = cameras.project(point.numpy(), cam)
        viewmats, Ks = rig_tensors(size, [index])
        rgb, alpha, depth = rasterize(point, torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64),
                                      torch.full((1, 3), 0.002, dtype=torch.float64),
                                      torch.tensor([0.9], dtype=torch.float64),
                                      torch.ones(1, 3, dtype=torch.float64), viewmats, Ks, size, size)
        a = alpha[0, ..., 0]
        ys, xs = torch.meshgrid(torch.arange(size, dtype=a.dtype), torch.arange(size, dtype=a.dtype), indexing="ij")
        centroid = torch.stack([(a * xs).sum() / a.sum(), (a * ys).sum() / a.sum()])
        assert torch.allclose(centroid, torch.tensor(uv[0]), atol=0.03), (index, centroid, uv)
        peak = depth[0, ..., 0][a > 0.1]
        assert torch.allclose(peak, torch.tensor(z[0], dtype=peak.dtype), atol=1e-9)


def test_nothing_visible_gives_background():
    size = 16
    means, quats, scales, opacities, sh = random_gaussians(10, seed=1)
    viewmats, Ks = rig_tensors(size, [0])
    means = means + torch.tensor([0.0, -3.0, 0.0], dtype=means.dtype)  # behind the front camera (at y = -1.5)
    rgb, alpha, depth = rasterize(means, quats, scales, opacities, sh, viewmats, Ks, size, size,
                                  backgrounds=torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64))
    assert alpha.abs().max() == 0 and depth.abs().max() == 0
    assert torch.allclose(rgb, torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64).expand_as(rgb))


def test_backend_choice_on_cpu():
    means, quats, scales, opacities, sh = random_gaussians(5, seed=2, dtype=torch.float32)
    viewmats, Ks = rig_tensors(8, [0], dtype=torch.float32)
    *_, info = rasterize(means, quats, scales, opacities, sh, viewmats, Ks, 8, 8, return_info=True)
    assert info["backend"] == "torch" and info["means2d"].shape == (1, 5, 2) and info["radii"].shape == (1, 5, 2)
    with pytest.raises(DependencyError):
        rasterize(means, quats, scales, opacities, sh, viewmats, Ks, 8, 8, backend="gsplat")
