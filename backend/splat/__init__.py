"""3D Gaussian splats: rasterization (gsplat on CUDA, PyTorch on the CPU), 3DGS PLY files, the fitting loop."""
