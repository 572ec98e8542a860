"""Fitting 3D Gaussians to posed RGBA views: initialisation, per-parameter Adam, SH schedule, densification
(gsplat's DefaultStrategy), L1 + SSIM + alpha-mask loss, held-out evaluation, checkpoints, cancel.

`fit(views, viewmats, Ks, config)` is device-agnostic: views, cameras and the fit live on `config.device`
("auto": CUDA when gsplat's kernels load, else CPU with our PyTorch rasterizer). `FitConfig.ours(steps)` is
HeadForge's recipe (visual-hull init, mask loss, schedules scaled to the step budget);
`FitConfig.baseline_3dgs(steps)` is the original 3DGS recipe for its synthetic scenes (100k uniformly random
Gaussians in the object's bounding volume, the paper's learning rates and its 30k-step schedule).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from ..errors import Cancelled, StageError
from ..fileio import load_torch_checkpoint, save_torch_checkpoint
from ..metrics import image_metrics, over_white, ssim
from .hull import carve_hull, hull_surface, visible_colours
from .ply import SH_C0
from .rasterize import gsplat_cuda_available, rasterize


@dataclass
class FitConfig:
    steps: int = 3000
    sh_degree: int = 3
    sh_increase_every: int = 500  # raise the SH degree by one every this many steps
    init: str = "hull"  # "hull" (visual hull of the masks) | "random" (uniform in the object's cube)
    init_points: int = 20_000
    hull_resolution: int = 64
    half_extent: float = 0.15  # the object lies in [-h, h]³ about the orbit centre (metres)
    init_opacity: float = 0.1
    scene_scale: float = 0.3  # metres; scales the means' learning rate and the strategy's 3D thresholds
    lr_means: float = 1.6e-4  # × scene_scale, decays exponentially to lr_means_final
    lr_means_final: float = 1.6e-6
    lr_decay_steps: int | None = None  # steps over which the means' rate decays (None: `steps`)
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20
    ssim_weight: float = 0.2
    mask_weight: float = 1.0  # L1 between rendered alpha and the view's alpha
    background: str = "white"  # "white" | "random" (per step; the loss target is composited the same way)
    refine_start: int = 500
    refine_stop: int = 15_000
    refine_every: int = 100
    reset_every: int = 3000  # opacity reset period (0: never)
    grow_grad2d: float = 2e-4
    prune_opa: float = 0.005
    max_gaussians: int = 0  # 0: no cap; else prune the least opaque after each refinement
    holdout_every: int = 8  # views with index % holdout_every == 0 are held out (0: none)
    seed: int = 0
    device: str = "auto"
    preview_every: int = 100
    checkpoint_every: int = 200
    eval_every: int = 0  # 0: only at the end

    @classmethod
    def ours(cls, steps: int = 3000, **kw) -> "FitConfig":
        """HeadForge's recipe: hull init coloured from the views, alpha-mask loss, SH degree raised every
        steps/8, densification over the first 60% of the budget (every min(100, steps/30) steps, at least 25),
        no opacity reset, and a 2.5x larger initial learning rate on the means (short budgets)."""
        base = dict(steps=steps, sh_increase_every=max(steps // 8, 1), refine_start=max(steps // 20, 1),
                    refine_stop=int(steps * 0.6), refine_every=max(min(100, steps // 30), 25),
                    reset_every=0, init="hull", mask_weight=1.0, lr_means=4e-4, lr_means_final=4e-6)
        base.update(kw)
        return cls(**base)

    @classmethod
    def baseline_3dgs(cls, steps: int = 30_000, **kw) -> "FitConfig":
        """Plain 3DGS (Kerbl et al. 2023, synthetic scenes) on gsplat's DefaultStrategy, unchanged schedule.

        Note: gsplat 1.5.3's DefaultStrategy never performs its opacity reset (`step % reset_every == 0 &
        step > 0` parses as a chained comparison that is always false); the baseline runs as gsplat does."""
        base = dict(steps=steps, sh_increase_every=1000, init="random", init_points=100_000, mask_weight=0.0,
                    refine_start=500, refine_stop=15_000, refine_every=100, reset_every=3000,
                    lr_means=1.6e-4, lr_means_final=1.6e-6, lr_decay_steps=30_000, max_gaussians=0)
        base.update(kw)
        return cls(**base)


@dataclass
class FitResult:
    splat: dict  # the ply.py splat dict (numpy)
    metrics: dict  # held-out (and training) image metrics, counts, timings
    history: list = field(default_factory=list)  # (step, loss, n_gaussians, seconds)
    # (step, seconds, held-out PSNR, held-out PSNR inside the views' masks, CPU seconds) every `eval_every` steps
    curve: list = field(default_factory=list)


ProgressFn = Callable[[int, int, dict, "np.ndarray | None"], None]  # step, total, info, preview [H, W, 3] uint8


def choose_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if gsplat_cuda_available() else "cpu")
    return torch.device(name)


def split_views(n: int, holdout_every: int) -> tuple[list[int], list[int]]:
    """(train, held-out) view indices: every `holdout_every`-th view (0, k, 2k, ...) is held out."""
    if holdout_every <= 0:
        return list(range(n)), []
    test = [i for i in range(n) if i % holdout_every == 0]
    return [i for i in range(n) if i % holdout_every != 0], test


def fit(views: Tensor, viewmats: Tensor, Ks: Tensor, config: FitConfig, *, on_progress: ProgressFn | None = None,
        check_cancel: Callable[[], None] | None = None, checkpoint: str | Path | None = None,
        preview_view: int | None = None) -> FitResult:
    """Fit Gaussians to views [V, H, W, 4] (straight RGBA in [0, 1]) seen by viewmats [V, 4, 4] / Ks [V, 3, 3].

    With `checkpoint`, the fit state is saved there every `checkpoint_every` steps and on cancel, and a
    matching checkpoint found there is resumed. Raises Cancelled (state saved) or StageError on NaN losses.
    """
    cfg, device = config, choose_device(config.device)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    V, H, W, _ = views.shape
    views, viewmats, Ks = views.float().to(device), viewmats.float().to(device), Ks.float().to(device)
    train, test = split_views(V, cfg.holdout_every)
    if not train:
        raise StageError("No training views left after the held-out split.", code="splat.no_views")
    if float(views[..., 3].max()) <= 0.5 / 255:
        raise StageError("Every view's alpha mask is empty: nothing to reconstruct.", code="splat.empty_masks")
    preview_view = (test[0] if test else train[0]) if preview_view is None else preview_view
    strategy = _strategy(cfg)

    state = _load_checkpoint(checkpoint, cfg, device)
    if state is not None:
        params, optimizers, strat_state, start, history, elapsed = state
    else:
        params = _init_params(views[train].cpu(), viewmats[train].cpu(), Ks[train].cpu(), cfg, gen)
        params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(device)) for k, v in params.items()})
        optimizers = _optimizers(params, cfg)
        strat_state = strategy.initialize_state(scene_scale=cfg.scene_scale)
        start, history, elapsed = 0, [], 0.0
    strategy.check_sanity(params, optimizers)
    decay_steps = cfg.lr_decay_steps or cfg.steps
    gamma = (cfg.lr_means_final / cfg.lr_means) ** (1.0 / max(decay_steps, 1))
    white = torch.ones(3, device=device)
    # The view order depends on the seed alone (not on how the fit started), so a resumed fit sees the same views.
    order_gen = torch.Generator().manual_seed(cfg.seed + 1)
    order = torch.cat([torch.randperm(len(train), generator=order_gen) for _ in range(cfg.steps // len(train) + 1)])

    if start == 0 and test:
        init_metrics = evaluate(params, views, viewmats, Ks, test, cfg.sh_degree, prefix="init_test_")
    else:
        init_metrics = {}
    t0 = time.time() - elapsed
    c0 = time.process_time()  # this process's CPU time of the fit (this call's part of it; shared machines)
    done = start  # steps completed
    curve = []  # (step, seconds, held-out PSNR, held-out PSNR in the masks, CPU seconds) every eval_every steps
    try:
        for step in range(start, cfg.steps):
            if check_cancel is not None:
                check_cancel()
            for g in optimizers["means"].param_groups:
                g["lr"] = cfg.lr_means * cfg.scene_scale * gamma ** min(step, decay_steps)
            v = train[int(order[step])]
            gt = views[v]  # [H, W, 4]
            bg = white if cfg.background == "white" else torch.rand(3, generator=order_gen).to(device)
            target = gt[..., :3] * gt[..., 3:] + bg * (1 - gt[..., 3:])
            deg = min(step // cfg.sh_increase_every, cfg.sh_degree)
            rgb, alpha, _, info = _render(params, viewmats[v:v + 1], Ks[v:v + 1], W, H, deg, bg[None])
            strategy.step_pre_backward(params, optimizers, strat_state, step, info)
            l1 = (rgb[0] - target).abs().mean()
            loss = (1 - cfg.ssim_weight) * l1 + cfg.ssim_weight * (1 - ssim(rgb[0], target))
            if cfg.mask_weight > 0:
                loss = loss + cfg.mask_weight * (alpha[0] - gt[..., 3:]).abs().mean()
            if not torch.isfinite(loss):
                raise StageError(f"The fit diverged at step {step} (loss {float(loss)}); the last good checkpoint "
                                 "is kept. Try fewer steps or lower learning rates.", code="splat.nan_loss")
            loss.backward()
            for opt in optimizers.values():
                opt.step()
                opt.zero_grad(set_to_none=True)
            strategy.step_post_backward(params, optimizers, strat_state, step, info, packed=False)
            if cfg.max_gaussians and len(params["means"]) > cfg.max_gaussians:
                _cap(params, optimizers, strat_state, cfg.max_gaussians)
            history.append((step, float(loss.detach()), len(params["means"]), time.time() - t0))
            done = step + 1
            if checkpoint is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                _save_checkpoint(checkpoint, cfg, params, optimizers, strat_state, done, history, time.time() - t0)
            if cfg.eval_every and test and done % cfg.eval_every == 0:  # not counted in the fit's time
                t_eval, c_eval = time.time(), time.process_time()
                ev = evaluate(params, views, viewmats, Ks, test, cfg.sh_degree)
                curve.append((done, round(t_eval - t0, 3), ev["psnr"], ev["psnr_masked"], round(c_eval - c0, 3)))
                t0 += time.time() - t_eval
                c0 += time.process_time() - c_eval
            if on_progress is not None and (done % cfg.preview_every == 0 or done == cfg.steps):
                prev = _preview(params, viewmats, Ks, preview_view, W, H, cfg.sh_degree)
                on_progress(done, cfg.steps, {"loss": float(loss.detach()), "n_gaussians": len(params["means"]),
                                              "sh_degree": deg, "seconds": time.time() - t0}, prev)
    except Cancelled:
        if checkpoint is not None:
            _save_checkpoint(checkpoint, cfg, params, optimizers, strat_state, done, history, time.time() - t0)
        raise
    seconds, cpu_seconds = time.time() - t0, time.process_time() - c0
    metrics = {"n_gaussians": len(params["means"]), "steps": cfg.steps, "fit_seconds": round(seconds, 2),
               "fit_cpu_seconds": round(cpu_seconds, 2),
               "device": str(device), "n_train_views": len(train), "n_test_views": len(test)}
    metrics.update({k: v for k, v in init_metrics.items() if k in ("init_test_psnr", "init_test_alpha_iou")})
    metrics.update(evaluate(params, views, viewmats, Ks, test, cfg.sh_degree, prefix="test_"))
    metrics.update(evaluate(params, views, viewmats, Ks, train[:: max(len(train) // 8, 1)], cfg.sh_degree,
                            prefix="train_"))
    return FitResult(splat_from_params(params), metrics, history, curve)


def _render(params, viewmats, Ks, W, H, sh_degree, bg):
    colors = torch.cat([params["sh0"], params["shN"]], 1)  # [N, K, 3]
    return rasterize(params["means"], params["quats"], torch.exp(params["scales"]),
                     torch.sigmoid(params["opacities"]), colors, viewmats, Ks, W, H, sh_degree=sh_degree,
                     backgrounds=bg, return_info=True)


@torch.no_grad()
def render_views(params, viewmats, Ks, W, H, sh_degree, indices) -> tuple[Tensor, Tensor]:
    """Straight colour [n, H, W, 3] and alpha [n, H, W, 1] of the given views, one at a time."""
    rgbs, alphas = [], []
    for i in indices:
        rgb, alpha, _, _ = _render(params, viewmats[i:i + 1], Ks[i:i + 1], W, H, sh_degree, None)
        rgbs.append((rgb / alpha.clamp_min(1e-6)).clamp(0, 1) * (alpha > 0))
        alphas.append(alpha)
    return torch.cat(rgbs), torch.cat(alphas)


@torch.no_grad()
def evaluate(params, views, viewmats, Ks, indices, sh_degree, prefix="") -> dict:
    """Mean image metrics (metrics.image_metrics) of the given views."""
    if not indices:
        return {}
    H, W = views.shape[1:3]
    rows = []
    for i in indices:
        rgb, alpha = render_views(params, viewmats, Ks, W, H, sh_degree, [i])
        rows.append(image_metrics(rgb[0].cpu(), alpha[0].cpu(), views[i].cpu()))
    return {prefix + k: round(float(np.mean([r[k] for r in rows])), 4) for k in rows[0]}


def _preview(params, viewmats, Ks, v, W, H, sh_degree) -> np.ndarray:
    rgb, alpha = render_views(params, viewmats, Ks, W, H, sh_degree, [v])
    img = over_white(rgb[0], alpha[0]).clamp(0, 1).cpu().numpy()
    return (img * 255 + 0.5).astype(np.uint8)


def _strategy(cfg: FitConfig):
    from gsplat.strategy import DefaultStrategy

    return DefaultStrategy(prune_opa=cfg.prune_opa, grow_grad2d=cfg.grow_grad2d, refine_start_iter=cfg.refine_start,
                           refine_stop_iter=cfg.refine_stop, refine_every=cfg.refine_every,
                           reset_every=cfg.reset_every if cfg.reset_every > 0 else 10**9)


def _cap(params, optimizers, state, limit: int) -> None:
    from gsplat.strategy.ops import remove

    n = len(params["means"])
    drop = torch.zeros(n, dtype=torch.bool, device=params["means"].device)
    drop[torch.argsort(params["opacities"].detach())[: n - limit]] = True
    remove(params, optimizers, state, drop)


def _init_params(views: Tensor, viewmats: Tensor, Ks: Tensor, cfg: FitConfig, gen: torch.Generator) -> dict:
    """Initial Gaussians (CPU tensors) in gsplat's layout: means, scales (log), quats, opacities (logit), sh0, shN."""
    h = cfg.half_extent
    if cfg.init == "hull":
        inside, step = carve_hull(views[..., 3], viewmats, Ks, h, cfg.hull_resolution)
        if inside.shape[0] == 0:
            raise StageError("The views' masks do not agree on any point in space (empty visual hull): the "
                             "cameras or the masks are inconsistent.", code="splat.empty_hull")
        surface = hull_surface(inside, step)
        idx = torch.randint(0, surface.shape[0], (cfg.init_points,), generator=gen)
        means = surface[idx] + (torch.rand(cfg.init_points, 3, generator=gen) - 0.5) * step
        rgb = visible_colours(means, views[..., :3], viewmats, Ks, depth_tol=2.0 * step)
    elif cfg.init == "random":
        means = (torch.rand(cfg.init_points, 3, generator=gen) * 2 - 1) * h
        rgb = torch.rand(cfg.init_points, 3, generator=gen)
    else:
        raise ValueError(f"init must be 'hull' or 'random', not {cfg.init!r}")
    n, k = means.shape[0], (cfg.sh_degree + 1) ** 2
    dist = _knn_mean_distance(means, 3).clamp_min(1e-5)
    sh0 = ((rgb - 0.5) / SH_C0)[:, None, :]
    return {"means": means, "scales": torch.log(dist)[:, None].repeat(1, 3), "quats": _random_unit_quats(n, gen),
            "opacities": torch.logit(torch.full((n,), cfg.init_opacity)), "sh0": sh0,
            "shN": torch.zeros(n, k - 1, 3)}


def _random_unit_quats(n: int, gen: torch.Generator) -> Tensor:
    q = torch.randn(n, 4, generator=gen)
    return q / q.norm(dim=-1, keepdim=True)


def _knn_mean_distance(points: Tensor, k: int) -> Tensor:
    """Root-mean-square distance of each point to its k nearest neighbours (the 3DGS scale init)."""
    from scipy.spatial import cKDTree

    d, _ = cKDTree(points.numpy()).query(points.numpy(), k=k + 1)
    return torch.from_numpy(np.sqrt((d[:, 1:] ** 2).mean(1))).float()


def _optimizers(params, cfg: FitConfig) -> dict:
    lrs = {"means": cfg.lr_means * cfg.scene_scale, "scales": cfg.lr_scales, "quats": cfg.lr_quats,
           "opacities": cfg.lr_opacities, "sh0": cfg.lr_sh0, "shN": cfg.lr_shN}
    return {k: torch.optim.Adam([{"params": params[k], "lr": lr, "name": k}], eps=1e-15) for k, lr in lrs.items()}


def splat_from_params(params) -> dict:
    """gsplat-layout parameters → the ply.py splat dict (numpy float32)."""
    p = {k: v.detach().float().cpu().numpy() for k, v in params.items()}
    return {"means": p["means"], "quats": p["quats"], "log_scales": p["scales"], "opacity_logits": p["opacities"],
            "sh": np.concatenate([p["sh0"], p["shN"]], 1)}


def _config_key(cfg: FitConfig) -> dict:
    d = dataclasses.asdict(cfg)
    for k in ("preview_every", "checkpoint_every", "eval_every", "device"):
        d.pop(k)
    return d


def _save_checkpoint(path, cfg, params, optimizers, strat_state, step, history, elapsed) -> None:
    blob = {"config": _config_key(cfg), "step": step, "elapsed": elapsed, "history": history,
            "params": {k: v.detach().cpu() for k, v in params.items()},
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "strategy": {k: (v.cpu() if isinstance(v, Tensor) else v) for k, v in strat_state.items()}}
    save_torch_checkpoint(path, blob, params.values())


def _load_checkpoint(path, cfg, device):
    blob = load_torch_checkpoint(path, device, "config", _config_key(cfg))
    if blob is None:
        return None
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(device)) for k, v in blob["params"].items()})
    optimizers = _optimizers(params, cfg)
    for k, o in optimizers.items():
        o.load_state_dict(blob["optimizers"][k])
    strat = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in blob["strategy"].items()}
    history = [tuple(h) for h in blob["history"]]
    return params, optimizers, strat, int(blob["step"]), history, float(blob["elapsed"])


def checkpoint_resumable(checkpoint, cfg: FitConfig, device) -> bool:
    """Whether `fit` would resume the state at `checkpoint` (readable, made with the same config)."""
    return _load_checkpoint(checkpoint, cfg, choose_device(device) if isinstance(device, str) else device) is not None


def write_start_state(checkpoint, cfg: FitConfig, splat: dict) -> None:
    """Write a step-0 fit state at `checkpoint` whose Gaussians are `splat` (read_ply's layout: means, quats,
    log_scales, opacity_logits, sh (N, K, 3)); `fit` with that checkpoint then starts from them (e.g. LGM's)."""
    sh = torch.as_tensor(splat["sh"], dtype=torch.float32)
    k = (cfg.sh_degree + 1) ** 2
    if sh.shape[1] < k:
        sh = torch.cat([sh, torch.zeros(sh.shape[0], k - sh.shape[1], 3)], 1)
    tensors = {"means": splat["means"], "scales": splat["log_scales"], "quats": splat["quats"],
               "opacities": splat["opacity_logits"], "sh0": sh[:, :1], "shN": sh[:, 1:k]}
    params = torch.nn.ParameterDict({name: torch.nn.Parameter(torch.as_tensor(v, dtype=torch.float32).contiguous())
                                     for name, v in tensors.items()})
    _save_checkpoint(checkpoint, cfg, params, _optimizers(params, cfg),
                     _strategy(cfg).initialize_state(scene_scale=cfg.scene_scale), 0, [], 0.0)
