"""Per-subject fine-tuning of LGM on the generated views (SPEC 4.11) and its Gaussians in our splat layout.

Each step: 8 views (the 4 inputs + a permutation of the ring), the reference's augmentations, a forward pass,
the 8 views rendered at `output_size` over white by our rasterizer (`backend/splat/rasterize.py`: gsplat on CUDA,
the PyTorch compositor on the CPU), loss = MSE(image) + MSE(alpha, mask) + λ·LPIPS-VGG (when its weights are
installed; otherwise the record says it was off), AdamW (β 0.9/0.95, weight decay 0.05), OneCycleLR, gradient
clipping at 1, fp16 autocast + GradScaler on CUDA (the reference's precision). The view choice and augmentations
of step k depend on (seed, k) alone, so a resumed run takes the same steps. Checkpoints (model, optimiser,
schedule, scaler, history) every `checkpoint_every` steps and on cancel; a matching checkpoint is resumed.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import KIUI_TO_WORLD
from ..cpu_numerics import native_kernels
from ..errors import Cancelled, StageError
from ..fileio import load_torch_checkpoint, save_torch_checkpoint
from ..splat.ply import SH_C0
from ..splat.rasterize import rasterize
from . import lpips_vgg
from .data import Batch, Subject, augment, choose_vids, opencv_cameras
from .model import LGMModel

PLY_OPACITY_FLOOR = 0.005  # the reference drops Gaussians below this opacity when it writes pc.ply


@dataclass
class FinetuneConfig:
    steps: int = 500  # the reference's epochs (one step each): 500 in pipeline_infer_full.py
    lr: float = 1e-6
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.95)
    gradient_clip: float = 1.0
    lambda_lpips: float = 1.0
    prob_grid_distortion: float = 0.5
    prob_cam_jitter: float = 0.5
    seed: int = 0
    precision: str = "auto"  # auto (fp16 autocast + GradScaler on CUDA, fp32 on the CPU) | fp16 | bf16 | fp32
    checkpoint_every: int = 100  # big model: weights + AdamW state are about 5 GB a checkpoint

    def key(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("checkpoint_every")
        d["betas"] = list(d["betas"])
        return d


@dataclass
class FinetuneResult:
    gaussians: Tensor  # [N, 14] activated, LGM frame, after the last update (no augmentation)
    to_kiui: Tensor  # [4, 4] LGM frame → kiui world
    history: list = field(default_factory=list)  # {step, loss, mse, mse_alpha, lpips, psnr, lr}
    lpips: str = ""  # "on: …" or "off: …"
    seconds: float = 0.0


ProgressFn = Callable[[int, int, dict], None]


def pick_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}[precision]


def render(gaussians: Tensor, viewmats: Tensor, Ks: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Gaussians [N, 14] → images [V, 3, S, S] over white (clamped to [0, 1], as the reference) and alphas
    [V, 1, S, S], SH degree 0 with precomputed colours."""
    g = gaussians.float()
    white = torch.ones(viewmats.shape[0], 3, device=g.device)
    rgb, alpha, _ = rasterize(g[:, 0:3].contiguous(), g[:, 7:11].contiguous(), g[:, 4:7].contiguous(),
                              g[:, 3].contiguous(), g[:, 11:14].contiguous(), viewmats, Ks, size, size,
                              backgrounds=white)
    return rgb.clamp(0, 1).permute(0, 3, 1, 2), alpha.permute(0, 3, 1, 2)


def step_batch(subject: Subject, cfg: FinetuneConfig, model_cfg, step: int) -> Batch:
    """The (augmented) batch of step `step`: a function of (seed, step) only."""
    rng = np.random.RandomState([cfg.seed, step])
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    batch = subject.batch(choose_vids(rng, subject.available), model_cfg.input_size, model_cfg.output_size)
    return augment(batch, rng, gen, cfg.prob_grid_distortion, cfg.prob_cam_jitter)


def losses(model: LGMModel, batch: Batch, device, lpips_net, cfg: FinetuneConfig, autocast_dtype) -> dict:
    size = model.config.output_size
    viewmats, Ks = (t.to(device) for t in opencv_cameras(batch, size))
    with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        gaussians = model(batch.input[None].to(device))[0]
    images, alphas = render(gaussians, viewmats, Ks, size)
    gt, mask = batch.images_output.to(device), batch.masks_output.to(device)
    mse = _mean_square(images - gt)
    mse_alpha = _mean_square(alphas - mask)
    loss = mse + mse_alpha
    out = {"gaussians": gaussians}
    if lpips_net is not None and cfg.lambda_lpips > 0:
        lp = lpips_vgg.lpips_loss(lpips_net, images, gt)
        loss = loss + cfg.lambda_lpips * lp
        out["lpips"] = lp
    out.update(loss=loss, mse=mse, mse_alpha=mse_alpha, psnr=-10 * torch.log10(mse.detach().clamp_min(1e-10)))
    return out


def _mean_square(d: Tensor) -> Tensor:
    """MSE summed in float64: torch's float32 sum splits by thread count and its last bit moved with it."""
    return d.square().double().mean().float()


def train_step(model: LGMModel, batch: Batch, opt, scaler, cfg: FinetuneConfig, device, lpips_net=None,
               autocast_dtype=None) -> dict:
    """One optimisation step (forward, render, loss, scaled backward, clipping, update) → its figures."""
    with native_kernels(device):
        out = losses(model, batch, device, lpips_net, cfg, autocast_dtype)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise StageError(f"LGM fine-tuning diverged (loss {float(loss)}); the last good checkpoint is kept. "
                             "Lower splat.lgm_finetune_lr.", code="lgm.nan_loss")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.gradient_clip)
    scaler.step(opt)
    scaler.update()
    row = {"loss": float(loss.detach()), "mse": float(out["mse"].detach()),
           "mse_alpha": float(out["mse_alpha"].detach()), "psnr": float(out["psnr"]), "lr": opt.param_groups[0]["lr"]}
    if "lpips" in out:
        row["lpips"] = float(out["lpips"].detach())
    return row


def make_optimizer(model: LGMModel, cfg: FinetuneConfig):
    """AdamW and OneCycleLR as the reference sets them up (pct_start 300/steps above 300 steps, else 0.1)."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas))
    total = max(cfg.steps, 1)
    pct = 300 / total if total > 300 else 0.1
    if abs(pct * total - 1) < 1e-9:  # exactly 10 steps: torch's warm-up phase would end at step 0 (÷0)
        pct = 2 / total
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=pct)
    return opt, sched


def finetune(model: LGMModel, subject: Subject, cfg: FinetuneConfig, device: str | torch.device = "cpu", *,
             on_progress: ProgressFn | None = None, check_cancel: Callable[[], None] | None = None,
             checkpoint: str | Path | None = None, lpips_root=None, source: str = "") -> FinetuneResult:
    """Fine-tune `model` in place on `subject`; returns its Gaussians after the last step (no augmentation).

    `source` names the starting weights (e.g. their hash): a checkpoint is resumed only for the same source, model
    config and fine-tuning config."""
    device = torch.device(device)
    model.to(device).float()
    autocast_dtype = pick_precision(cfg.precision, device)
    lpips_net = lpips_vgg.load(lpips_root, device) if cfg.lambda_lpips > 0 else None
    lp_status = lpips_vgg.status(lpips_root) if cfg.lambda_lpips > 0 else "off: lambda_lpips = 0"
    opt, sched = make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)
    start, history, elapsed = 0, [], 0.0
    key = {"config": cfg.key(), "model_config": _plain(model.config), "source": source}
    state = _load_checkpoint(checkpoint, key, device)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start, history, elapsed = int(state["step"]), list(state["history"]), float(state["elapsed"])
    t0 = time.time() - elapsed
    done = start
    model.train()
    try:
        for step in range(start, cfg.steps):
            if check_cancel is not None:
                check_cancel()
            batch = step_batch(subject, cfg, model.config, step)
            row = {"step": step + 1, **train_step(model, batch, opt, scaler, cfg, device, lpips_net, autocast_dtype)}
            sched.step()
            history.append(row)
            done = step + 1
            if checkpoint is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                _save_checkpoint(checkpoint, key, model, opt, sched, scaler, done, history, time.time() - t0)
            if on_progress is not None:
                on_progress(done, cfg.steps, row)
    except Cancelled:
        if checkpoint is not None:
            _save_checkpoint(checkpoint, key, model, opt, sched, scaler, done, history, time.time() - t0)
        raise
    seconds = time.time() - t0
    gaussians, to_kiui = predict(model, subject, device)
    return FinetuneResult(gaussians, to_kiui, history, lp_status, seconds)


@torch.no_grad()
def predict(model: LGMModel, subject: Subject, device: str | torch.device = "cpu",
            dtype: torch.dtype | None = None) -> tuple[Tensor, Tensor]:
    """Gaussians [N, 14] (float32, LGM frame) of the subject's 4 input views, and the LGM frame → kiui world."""
    device = torch.device(device)
    model.eval()
    vids = choose_vids(np.random.RandomState(0), subject.available)
    batch = subject.batch(vids, model.config.input_size, model.config.output_size)
    with native_kernels(device), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        g = model(batch.input[None].to(device, model.dtype))[0]
    return g.float().cpu(), batch.to_kiui


def to_world_splat(gaussians: Tensor, to_kiui: Tensor, min_opacity: float = PLY_OPACITY_FLOOR,
                   sh_degree: int = 0) -> dict:
    """Activated Gaussians [N, 14] in the LGM frame → the ply.py splat dict in our world (Blender frame).

    Positions and rotations go LGM frame → kiui world (`to_kiui`) → our world (`cameras.KIUI_TO_WORLD`); scales
    are unchanged (both maps are rigid). Gaussians below `min_opacity` are dropped, as the reference's pc.ply.
    The colour becomes the SH DC term; higher SH bands (for `sh_degree` > 0) start at zero."""
    g = gaussians.double()
    g = g[g[:, 3] >= min_opacity]
    rot = torch.from_numpy(KIUI_TO_WORLD) @ to_kiui[:3, :3].double()
    trans = torch.from_numpy(KIUI_TO_WORLD) @ to_kiui[:3, 3].double()
    means = g[:, 0:3] @ rot.T + trans
    quats = _quat_mul(_matrix_to_quat(rot), F.normalize(g[:, 7:11], dim=-1))
    n, k = g.shape[0], (sh_degree + 1) ** 2
    sh = torch.zeros(n, k, 3, dtype=torch.float64)
    sh[:, 0] = (g[:, 11:14] - 0.5) / SH_C0
    opacity = g[:, 3].clamp(1e-6, 1 - 1e-6)
    return {"means": means.float().numpy(), "quats": quats.float().numpy(),
            "log_scales": torch.log(g[:, 4:7] + 1e-8).float().numpy(),
            "opacity_logits": torch.logit(opacity).float().numpy(), "sh": sh.float().numpy()}


def _matrix_to_quat(r: Tensor) -> Tensor:
    """Rotation matrix [3, 3] → unit quaternion wxyz [4]."""
    m = r.double()
    w = math.sqrt(max(0.0, 1.0 + float(m[0, 0] + m[1, 1] + m[2, 2]))) / 2
    if w > 1e-6:
        q = torch.stack([torch.tensor(w, dtype=torch.float64), (m[2, 1] - m[1, 2]) / (4 * w),
                         (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w)])
    else:  # a half turn: the largest diagonal element picks the axis
        i = int(torch.argmax(torch.diagonal(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = math.sqrt(max(0.0, 1.0 + float(m[i, i] - m[j, j] - m[k, k]))) * 2
        q = torch.zeros(4, dtype=torch.float64)
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = s / 4
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    return q / q.norm()


def _quat_mul(a: Tensor, b: Tensor) -> Tensor:
    """a [4] ⊗ b [N, 4] (wxyz)."""
    aw, ax, ay, az = a
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], -1)


def _plain(config) -> dict:
    return {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in dict(config).items()
            if not k.startswith("_")}


def _save_checkpoint(path, key, model, opt, sched, scaler, step, history, elapsed) -> None:
    blob = {"key": key, "step": step, "elapsed": elapsed,
            "history": history, "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "scaler": scaler.state_dict()}
    save_torch_checkpoint(path, blob, model.parameters())


def _load_checkpoint(path, key, device):
    return load_torch_checkpoint(path, device, "key", key)
