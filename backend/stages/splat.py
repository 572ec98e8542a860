"""Stage `splat`: the 96 views (`views/NNN.png` RGBA + `views/cameras.json`) → `splat/head.ply` + `splat/splat.json`.

Fits 3D Gaussians with `backend/splat/optimize.py` (gsplat on CUDA, our PyTorch rasterizer on the CPU).
Progress events carry a preview render of a held-out view (`splat/preview.png`) every `preview_every` steps.
Cancel is checked between steps; the fit state goes to `splat/checkpoint.pt` (every `checkpoint_every` steps
and on cancel) and a re-run with the same views and options continues from it.
`init` picks the fit's start: the visual hull of the masks, or LGM's Gaussians (backend/lgm/splat_init.py: the
paper's reconstructor on the elevation-0 ring, fine-tuned first for `lgm_finetune_steps`); auto takes LGM in full
mode when its converted weights are installed. Which one ran, and why, is in the stage's metrics (job.json).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import StageError
from ..fileio import write_image, write_json
from ..splat.ply import write_ply
from ..stage import stage
from ..views import read_views

SPLAT_FORMAT = 1
CPU_SIZE = 128  # default fitting size without a GPU: the PyTorch rasterizer is ~100x slower than gsplat's


@dataclass
class SplatOptions:
    steps: int = 3000
    sh_degree: int = 3
    size: int = 0  # fit at most this image width in pixels (0: the views' own on CUDA, CPU_SIZE on the CPU)
    init_points: int = 20_000
    max_gaussians: int = 200_000
    holdout_every: int = 8  # hold out every 8th view for the reported metrics (0: fit on all)
    preview_every: int = 100
    checkpoint_every: int = 200
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    # the fit's start: auto (LGM in full mode when its weights are installed, else the hull) | hull | lgm
    init: str = field(default="auto", metadata={"choices": ("auto", "hull", "lgm")})
    lgm_finetune_steps: int = 500  # LGM's per-subject fine-tuning on the ring before the fit (0: LGM as it is)
    lgm_finetune_lr: float = 1e-6
    lgm_dir: str = ""  # the converted LGM folder ("" = <models root>/lgm)


def _lgm_weights(inputs: dict, options: dict) -> dict:
    """The LGM weights the fit may start from (in the fingerprint, so new weights re-run the stage)."""
    if options.get("init", "auto") == "hull":
        return {}
    from ..lgm.splat_init import WEIGHTS_FILE, weights_dir

    path = weights_dir(options.get("lgm_dir", "")) / WEIGHTS_FILE
    return {"lgm_weights": path} if path.is_file() else {}


@stage("splat", inputs=("views",), outputs=("splat/head.ply", "splat/splat.json"),
       optional_outputs=("splat/preview.png",), options=SplatOptions, external_inputs=_lgm_weights)
def run_splat(ctx) -> dict:
    from ..splat.optimize import FitConfig, choose_device, fit

    opts: SplatOptions = ctx.options
    ctx.progress(0.0, "Reading views")
    size = opts.size or None
    if choose_device(opts.device).type != "cuda":
        ctx.note("No CUDA device with gsplat's kernels: fitting on the CPU with the PyTorch rasterizer"
                 + ("" if size else f" at {CPU_SIZE} px") + ".")
        size = size or CPU_SIZE
    views, viewmats, Ks, cams = load_views(ctx.path("views"), size)
    from ..lgm.splat_init import choose_init, start_fit_from_lgm

    init, init_why = choose_init(opts.init, ctx.mode, opts.lgm_dir, ctx.path("views"))
    ctx.note(init_why)
    cfg = FitConfig.ours(opts.steps, sh_degree=opts.sh_degree, init_points=opts.init_points,
                         max_gaussians=opts.max_gaussians, holdout_every=opts.holdout_every, seed=opts.seed,
                         device=opts.device, preview_every=opts.preview_every,
                         checkpoint_every=opts.checkpoint_every, init=init)
    preview_path = ctx.path("splat/preview.png")
    checkpoint = ctx.path("splat/checkpoint.pt")
    lgm_record = None
    if init == "lgm":
        ctx.progress(0.01, "LGM: Gaussians from the ring's 4 input views")

        def on_lgm_step(step, total, row):
            ctx.progress(0.01, f"LGM fine-tuning step {step}/{total}: loss {row['loss']:.4f}", lgm=row)

        lgm_record = start_fit_from_lgm(
            ctx.path("views"), checkpoint, ctx.path("splat/lgm_checkpoint.pt"), cfg, lgm_dir=opts.lgm_dir,
            finetune_steps=opts.lgm_finetune_steps, finetune_lr=opts.lgm_finetune_lr, seed=opts.seed,
            device=choose_device(opts.device), on_progress=on_lgm_step, check_cancel=ctx.check_cancel)

    def on_progress(step, total, info, preview):
        if preview is not None:
            write_image(preview_path, Image.fromarray(preview))
        ctx.progress(0.02 + 0.93 * step / total, f"step {step}/{total}: loss {info['loss']:.4f}, "
                     f"{info['n_gaussians']} Gaussians", preview=preview_path if preview is not None else None,
                     step=step, **info)

    result = fit(views, viewmats, Ks, cfg, on_progress=on_progress, check_cancel=ctx.check_cancel,
                 checkpoint=checkpoint)
    result.metrics["init"] = init
    result.metrics["init_reason"] = init_why
    if lgm_record is not None:
        result.metrics["lgm"] = lgm_record
    ctx.progress(0.97, "Writing splat/head.ply")
    write_ply(ctx.path("splat/head.ply"), result.splat)
    record = {"format": SPLAT_FORMAT, "count": int(result.metrics["n_gaussians"]), "sh_degree": opts.sh_degree,
              "frame": "blender world: +Z up, metres, head faces -Y (DESIGN.md)",
              "ply": {"opacity": "logit", "scale": "log", "rot": "wxyz", "f_rest": "channel-major"},
              "image_size": int(views.shape[1]), "options": dataclasses.asdict(opts),
              "config": dataclasses.asdict(cfg), "metrics": result.metrics}
    write_json(ctx.path("splat/splat.json"), record)
    checkpoint.unlink(missing_ok=True)
    psnr = result.metrics.get("test_psnr", float("nan"))
    ctx.progress(1.0, f"{record['count']} Gaussians, held-out PSNR {psnr:.2f} dB",
                 preview=preview_path if preview_path.exists() else None)
    return result.metrics


def load_views(views_dir, size: int | None = None):
    """views/ → (views [V, S, S, 4] float32 straight RGBA, viewmats [V, 4, 4], Ks [V, 3, 3], cameras list).

    Downscales views wider than `size` (area filter) and scales the intrinsics to match. Raises StageError on missing or
    inconsistent views.
    """
    import torch  # lazily: planning a job imports every stage module

    cams, views = read_views(views_dir, code="splat", size=size)
    if len({v.rgba.shape for v in views}) != 1:
        raise StageError("The views do not all have the same size.", code="splat.inconsistent_views")
    rgba = torch.from_numpy(np.stack([v.rgba for v in views]))
    # Premultiplied edges in 8-bit PNGs are straight here (PNG stores straight alpha); fully transparent
    # pixels carry no colour.
    rgba[..., :3] *= (rgba[..., 3:] > 0)
    viewmats = torch.tensor(np.stack([v.w2c for v in views]), dtype=torch.float32)
    Ks = torch.tensor(np.stack([v.K for v in views]), dtype=torch.float32)
    if not torch.isfinite(viewmats).all() or not torch.isfinite(Ks).all():
        raise StageError(f"{Path(views_dir) / 'cameras.json'} holds non-finite camera values.",
                         code="splat.bad_cameras")
    return rgba, viewmats, Ks, cams
