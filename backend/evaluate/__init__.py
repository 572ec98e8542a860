"""`headforge evaluate`: the paper's metrics (PSNR, SSIM, LPIPS, CSIM, DreamSim) of the multi-view stage on a
dataset's test split."""
