"""gsplat's CUDA rasterizer against our PyTorch path, through the one `rasterize` interface (GPU only)."""
import pytest
import torch

from headforge.backend.splat.rasterize import gsplat_cuda_available, rasterize

if not gsplat_cuda_available():
    pytest.skip("needs CUDA and gsplat's compiled kernels", allow_module_level=True)

from .scenes import random_gaussians, rig_tensors  # noqa: E402


@pytest.mark.parametrize("sh_k", [1, 16])
def test_cuda_matches_torch_path(sh_k):
    size = 48
    params = random_gaussians(300, seed=sh_k, sh_k=sh_k, dtype=torch.float32)
    viewmats, Ks = rig_tensors(size, [0, 9, 50], dtype=torch.float32)
    bg = torch.tensor([1.0, 1.0, 1.0])
    cpu_in = [p.clone().requires_grad_(True) for p in params]
    gpu_in = [p.cuda().requires_grad_(True) for p in params]
    cpu = rasterize(*cpu_in, viewmats, Ks, size, size, backgrounds=bg, backend="torch")
    gpu = rasterize(*gpu_in, viewmats.cuda(), Ks.cuda(), size, size, backgrounds=bg.cuda(), backend="gsplat")
    for a, b in zip(cpu, gpu):
        assert (a - b.cpu()).abs().max() < 2e-3
    w = [torch.cos(torch.arange(o.numel(), dtype=torch.float32).reshape(o.shape)) for o in cpu]
    g_cpu = torch.autograd.grad(sum((o * wi).sum() for o, wi in zip(cpu, w)), cpu_in)
    g_gpu = torch.autograd.grad(sum((o * wi.cuda()).sum() for o, wi in zip(gpu, w)), gpu_in)
    for a, b in zip(g_cpu, g_gpu):
        b = b.cpu()
        assert (a - b).abs().max() <= 2e-2 * b.abs().max() + 1e-5
