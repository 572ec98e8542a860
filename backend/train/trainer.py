"""The ID-TS fine-tuning loop on Hugging Face accelerate.

`Trainer(cfg).run()` loads the converted stage folder `cfg.model` (`StageModels.from_pretrained`), trains the UNet
(all of it, or the parameters named by `cfg.trainable`, as the reference's `trained_param_keys`) with AdamW; the
VAE, the conditioner, IR-SE-50 and LPIPS stay frozen. accelerate gives mixed precision (autocast; the frozen models
are cast to the half type), gradient accumulation (`accelerator.accumulate`), and multi-GPU data parallelism under
`accelerate launch` (each process draws its own clips). EMA of the trained parameters is diffusers' `EMAModel`.

Randomness: every micro-batch's draws (clips, cond_aug, UCG drops, σ, noise, posterior ε) come from a CPU generator
seeded by (seed, step, micro-batch, process), so a run resumed from a checkpoint continues the same loss curve; the
micro-batches (`Drawer`: clips, noise, expression weight maps) can be prepared ahead by `num_workers` DataLoader
processes without changing them.
Checkpoints (`output/checkpoints/step-NNNNNNNN.pt`: trained parameters, optimiser, EMA, history; written atomically
by fileio.save_torch_checkpoint, read back with weights_only) every `checkpoint_every` steps, at the end and on
cancel; a run starts from the newest checkpoint of the same configuration fingerprint. accelerate's own
`save_state` is not used: it pickles RNG states, which we neither need nor load (weights_only everywhere).
Logs: `output/logs/train.jsonl` (one line per logged step) always, and TensorBoard event files through accelerate's
tracker when tensorboardX (or tensorboard) is installed. The result is `output/model/`: a converted stage folder the
pipeline loads (the trained — EMA by default — UNet, the other components copied from `cfg.model`).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from diffusers.training_utils import EMAModel

from ..cameras import INPUT_RING
from ..cpu_numerics import fixed_threads
from ..errors import Cancelled, HeadForgeError
from ..fileio import load_torch_checkpoint, save_torch_checkpoint, write_json
from ..idts.pipeline import StageModels
from ..idts.sampler import denoise
from ..idts.vae import decode, encode_sample
from ..lgm import lpips_vgg
from .config import TrainConfig
from .data import ClipSource
from .expression import LandmarkSource, expression_loss, region_weights
from .losses import diffusion_loss, identity_loss, lpips_term, sample_sigmas

CHECKPOINT_GLOB = "step-*.pt"
TERMS = ("diffusion", "lpips", "identity", "expression")


@dataclass
class TrainResult:
    model_dir: Path | None
    steps: int
    resumed_from: int
    history: list = field(default_factory=list)  # per logged step: {step, loss, diffusion, lpips, identity, ...}
    lpips: str = ""  # "on: ..." / "off: ..."
    expression: str = ""
    logger: str = ""
    seconds: float = 0.0


def step_seed(seed: int, step: int, micro: int, process: int) -> int:
    h = hashlib.sha256(f"headforge-train:{seed}:{step}:{micro}:{process}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def tracker_available() -> bool:
    for mod in ("torch.utils.tensorboard", "tensorboardX"):
        try:
            __import__(mod)
            return True
        except ImportError:
            continue
    return False


def default_lpips(models_root) -> tuple[torch.nn.Module | None, str]:
    return lpips_vgg.load(models_root), lpips_vgg.status(models_root)


class Drawer:
    """One micro-batch's CPU work from a generator, in a fixed order: clips, cond_aug, conditioning-frame noise,
    posterior ε, UCG keeps, σ, noise (stage 2: + the stage-1 video's posterior ε), and the expression landmarks'
    weight maps of the decoded frames. Picklable: DataLoader workers run it."""

    def __init__(self, cfg: TrainConfig, source: ClipSource, landmarks, resolution: int):
        self.cfg, self.source, self.landmarks, self.resolution = cfg, source, landmarks, resolution

    def __call__(self, gen: torch.Generator) -> dict:
        cfg, T, B = self.cfg, self.cfg.num_frames, self.cfg.batch_size
        clips = [self.source.draw(gen) for _ in range(B)]
        video = torch.stack([c.video() for c in clips])  # [B, T, 3, R, R]
        R, h = self.resolution, self.resolution // 8
        d = {"clips": [(c.sequence, c.ring, c.start) for c in clips], "video": video,
             "elevation": torch.tensor([c.elevation for c in clips])}
        d["cond_aug"] = (cfg.cond_aug_mean + cfg.cond_aug_std * torch.randn(B, generator=gen)).exp()
        d["cond_noise"] = torch.randn((B, 3, R, R), generator=gen)
        d["eps_x"] = torch.randn((B * T, 4, h, h), generator=gen)
        d["keep"] = (torch.rand((3, B), generator=gen) >= cfg.ucg_rate).float()  # CLIP, ArcFace, concat
        d["sigma"] = sample_sigmas(gen, B, cfg.p_mean, cfg.p_std)
        d["noise"] = torch.randn((B * T, 4, h, h), generator=gen)
        if cfg.stage == "high":
            d["video_stage1"] = torch.stack([c.video_stage1() for c in clips])
            d["eps_stage1"] = torch.randn((B * T, 4, h, h), generator=gen)
        if cfg.losses.expression > 0:
            P = min(cfg.perceptual_frames or T, T)
            rows, maps = [], []
            for b, c in enumerate(clips):
                for t, pts in enumerate(self.landmarks.points(c.sequence, c.views[:P], c.frames[:P])):
                    if pts is not None and len(pts):
                        rows.append(b * P + t)
                        maps.append(region_weights(pts, R))
            d["expression_rows"] = torch.tensor(rows, dtype=torch.long)
            d["expression_maps"] = torch.stack(maps) if maps else torch.zeros(0, R, R)
            d["landmark_error"] = getattr(self.landmarks, "mediapipe_error", None)
        return d


class StepDraws(torch.utils.data.Dataset):
    """The micro-batches of steps first..last in order: item i is step first + i // accum, micro-batch i % accum,
    drawn from its own (seed, step, micro-batch, process) generator, so workers and resumes change nothing."""

    def __init__(self, drawer: Drawer, seed: int, process: int, accum: int, first: int, last: int):
        self.drawer, self.seed, self.process, self.accum = drawer, seed, process, accum
        self.first, self.last = first, last

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1) * self.accum

    def __getitem__(self, i: int) -> dict:
        step, micro = self.first + i // self.accum, i % self.accum
        return self.drawer(torch.Generator().manual_seed(step_seed(self.seed, step, micro, self.process)))


class Trainer:
    """One training run. `models`: the stage's models already built (benchmarks; default: loaded from cfg.model);
    `lpips_net`: an LPIPS network to use instead of the installed LPIPS-VGG (tests); `landmarks`: a LandmarkSource
    (default: from the dataset, cfg.landmarks); on_progress(step, steps, record) after every step; `cancel`: a
    CancelToken, checked between steps (the state is checkpointed, then `Cancelled` is raised)."""

    def __init__(self, cfg: TrainConfig, *, models: StageModels | None = None, lpips_net: torch.nn.Module | None = None,
                 landmarks=None, on_progress: Callable[[int, int, dict], None] | None = None, cancel=None,
                 accelerator=None):
        self.cfg = cfg
        self.out = Path(cfg.output)
        self.on_progress = on_progress or (lambda step, total, rec: None)
        self.cancel = cancel
        self.logger = "jsonl"
        log_with = None
        if cfg.log_with in ("auto", "tensorboard"):
            if tracker_available():
                log_with, self.logger = "tensorboard", "tensorboard + jsonl"
            elif cfg.log_with == "tensorboard":
                raise HeadForgeError("log_with: tensorboard, but neither tensorboardX nor tensorboard is installed.",
                                     code="train.logger_missing", hint="pip install tensorboardX (the `train` extra), "
                                     "or set log_with: jsonl")
        if cfg.mixed_precision == "fp16" and not torch.cuda.is_available():
            raise HeadForgeError("mixed_precision fp16 needs a CUDA GPU.", code="train.config.bad_value",
                                 hint="use bf16 or no on the CPU")
        if accelerator is None:
            # accelerate keeps one process-wide state and refuses a second Accelerator of another precision; a
            # process that trains twice (tests, a notebook) starts afresh (the distributed state is kept)
            if AcceleratorState._shared_state and AcceleratorState().mixed_precision != cfg.mixed_precision:
                AcceleratorState._reset_state(reset_partial_state=False)
            accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum,
                                      log_with=log_with, project_dir=str(self.out / "logs"))
        self.acc = accelerator
        self.device = self.acc.device
        self.models = models or StageModels.from_pretrained(cfg.model, cfg.stage, dtype=torch.float32,
                                                            resolution=cfg.resolution)
        self.resolution = self.models.resolution
        half = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision, torch.float32)
        for m in (self.models.vae, self.models.conditioner):
            m.requires_grad_(False).eval().to(self.device)
            if half != torch.float32:
                m.to(half)
        if lpips_net is None and cfg.losses.lpips > 0:
            lpips_net, self.lpips_status = default_lpips(cfg.models_root)
        else:
            self.lpips_status = "on: given network" if lpips_net is not None else "off: weight 0"
        self.lpips_net = None if lpips_net is None else lpips_net.requires_grad_(False).eval().to(self.device, half)
        self.landmarks = landmarks if landmarks is not None else LandmarkSource(cfg.dataset, cfg.landmarks)
        stage1_res = None
        if cfg.stage == "high":
            stage1_res = self.resolution // 2
        rings = cfg.rings if cfg.rings is not None else (None if cfg.stage == "low" else [INPUT_RING])
        self.source = ClipSource(cfg.dataset, cfg.split, self.resolution, cfg.num_frames, cfg.start_frames,
                                 rings, stage1_res)
        self.drawer = Drawer(cfg, self.source, self.landmarks, self.resolution)
        self.landmark_error: str | None = None

        unet = self.models.unet
        unet.requires_grad_(False)
        self.trained = [(n, p) for n, p in unet.named_parameters()
                        if "all" in cfg.trainable or any(s in n for s in cfg.trainable)]
        if not self.trained:
            raise HeadForgeError(f"trainable {cfg.trainable} names no UNet parameter.", code="train.config.bad_value")
        for _, p in self.trained:
            p.requires_grad_(True)
        if cfg.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()
        params = [p for _, p in self.trained]
        opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay)
        self.unet, self.opt = self.acc.prepare(unet, opt)
        self.ema = None
        if cfg.ema_decay > 0:
            self.ema = EMAModel(params, decay=cfg.ema_decay)
        self.history: list[dict] = []
        self.expression_frames = 0

    # -- one micro-batch ------------------------------------------------------------------------------
    def draw(self, gen: torch.Generator) -> dict:
        """The CPU draws of one micro-batch (see Drawer)."""
        return self.drawer(gen)

    def _unet_call(self, x, t, context, vector, num_frames, image_only_indicator=None):
        return self.unet(x, t, context, vector, num_frames=num_frames, image_only_indicator=image_only_indicator)

    def losses(self, d: dict) -> dict:
        """The loss terms of one micro-batch (total under "loss"; tensors, the total with its graph)."""
        cfg, T, dev = self.cfg, self.cfg.num_frames, self.device
        B = d["video"].shape[0]
        vae, cond_model = self.models.vae, self.models.conditioner
        dt = vae.dtype
        video = d["video"].flatten(0, 1).to(dev)
        with torch.no_grad():
            x = encode_sample(vae, video.to(dt), d["eps_x"].to(dev)).float()  # [B*T, 4, h, w], scaled
            image = d["video"][:, 0].to(dev)
            cond_frames = image + d["cond_aug"].to(dev)[:, None, None, None] * d["cond_noise"].to(dev)
            cond, _ = cond_model(image.to(dt), cond_frames.to(dt), d["elevation"], d["cond_aug"], T,
                                 aesthetic_frame=d["video"][:, T // 2].to(dev, dt))
            keep = d["keep"].to(dev)
            ca = cond.crossattn.float()
            cond.crossattn = torch.stack([ca[:, 0] * keep[0, :, None], ca[:, 1] * keep[1, :, None]], dim=1)
            cond.concat = cond.concat.float() * keep[2].repeat_interleave(T)[:, None, None, None]
            cond.vector = cond.vector.float()
            noise = d["noise"].to(dev)
            if cfg.stage == "high":
                z1 = encode_sample(vae, d["video_stage1"].flatten(0, 1).to(dev, dt), d["eps_stage1"].to(dev))
                noise = 0.5 * noise + 0.5 * z1.float()
        sigma = d["sigma"].to(dev).repeat_interleave(T)  # [B*T]
        noised = x + noise * sigma[:, None, None, None]
        with self.acc.autocast():
            den = denoise(self._unet_call, noised, sigma, cond, T).float()
        out = {"diffusion": diffusion_loss(den, x, sigma).mean()}
        w = cfg.losses
        need_images = any(getattr(w, n) > 0 for n in ("lpips", "identity", "expression"))
        if need_images:
            P = min(cfg.perceptual_frames or T, T)
            idx = torch.arange(B * T, device=dev).view(B, T)[:, :P].reshape(-1)
            with self.acc.autocast():
                pred = decode(vae, (den[idx]).to(dt), chunk=len(idx)).float()
                with torch.no_grad():
                    target = decode(vae, x[idx].to(dt), chunk=len(idx)).float()
                if w.lpips > 0 and self.lpips_net is not None:
                    out["lpips"] = lpips_term(self.lpips_net, pred, target).mean()
                if w.identity > 0:
                    out["identity"] = identity_loss(cond_model.identity_encoder, pred, target).mean()
            if w.expression > 0:
                rows = d["expression_rows"].to(dev)
                self.expression_frames += len(rows)
                self.landmark_error = self.landmark_error or d.get("landmark_error")
                if len(rows):
                    out["expression"] = expression_loss(pred[rows], target[rows],
                                                        d["expression_maps"].to(dev)).mean()
        total = sum(getattr(w, k) * v for k, v in out.items())
        out["loss"] = total
        return out

    def evaluate(self, draws: int = 4, seed: int = 12345) -> dict:
        """Mean loss terms over `draws` fixed micro-batches (seeded apart from training), without gradients."""
        sums: dict = {}
        with torch.no_grad(), fixed_threads(self.cfg.cpu_threads, self.device.type == "cpu"):
            for i in range(draws):
                gen = torch.Generator().manual_seed(step_seed(seed, -1, i, self.acc.process_index))
                for k, v in self.losses(self.draw(gen)).items():
                    sums[k] = sums.get(k, 0.0) + float(v) / draws
        return sums

    # -- checkpoints ----------------------------------------------------------------------------------
    def _ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def save_checkpoint(self, step: int) -> Path | None:
        self.acc.wait_for_everyone()
        path = self._ckpt_dir() / f"step-{step:08d}.pt"
        if self.acc.is_main_process:
            blob = {"fingerprint": self.cfg.fingerprint(), "step": step,
                    "params": {n: p.detach().cpu().clone() for n, p in self.trained},
                    "optimizer": self.opt.state_dict(), "history": self.history}
            if self.ema is not None:
                blob["ema"] = self.ema.state_dict()
            if save_torch_checkpoint(path, blob, [p for _, p in self.trained]):
                old = sorted(self._ckpt_dir().glob(CHECKPOINT_GLOB))[:-self.cfg.keep_checkpoints]
                for f in old:
                    f.unlink(missing_ok=True)
        self.acc.wait_for_everyone()
        return path

    def load_checkpoint(self) -> int:
        """Resume from the newest matching checkpoint; returns the step it ends at (0: none)."""
        for path in sorted(self._ckpt_dir().glob(CHECKPOINT_GLOB), reverse=True):
            blob = load_torch_checkpoint(path, "cpu", "fingerprint", self.cfg.fingerprint())
            if blob is None:
                continue
            with torch.no_grad():
                for n, p in self.trained:
                    p.copy_(blob["params"][n].to(p.device, p.dtype))
            self.opt.load_state_dict(blob["optimizer"])
            if self.ema is not None and "ema" in blob:
                self.ema.load_state_dict(blob["ema"])
            self.history = list(blob.get("history", []))
            return int(blob["step"])
        return 0

    # -- the loop -------------------------------------------------------------------------------------
    def run(self, export: bool = True) -> TrainResult:
        with fixed_threads(self.cfg.cpu_threads, self.device.type == "cpu"):
            return self._run(export)

    def _run(self, export: bool) -> TrainResult:
        cfg, t0 = self.cfg, time.perf_counter()
        start = self.load_checkpoint()
        if self.acc.is_main_process:
            (self.out / "logs").mkdir(parents=True, exist_ok=True)
            write_json(self.out / "train_config.json", cfg.to_dict())
            self._rewrite_log()
        if self.logger.startswith("tensorboard"):
            self.acc.init_trackers("idts", config={k: v for k, v in _flat(cfg.to_dict()).items()})
        params = [p for _, p in self.trained]
        draws = StepDraws(self.drawer, cfg.seed, self.acc.process_index, cfg.grad_accum, start + 1, cfg.steps)
        loader = torch.utils.data.DataLoader(draws, batch_size=None, shuffle=False, num_workers=cfg.num_workers,
                                             collate_fn=_keep, prefetch_factor=2 if cfg.num_workers else None)
        batches = iter(loader)
        try:
            for step in range(start + 1, cfg.steps + 1):
                if self.cancel is not None and self.cancel.cancelled:
                    self.save_checkpoint(step - 1)
                    raise Cancelled("Training cancelled; run the same config again to resume.")
                ts = time.perf_counter()
                sums = {}
                for _micro in range(cfg.grad_accum):
                    with self.acc.accumulate(self.unet):
                        terms = self.losses(next(batches))
                        self.acc.backward(terms["loss"])
                        if self.acc.sync_gradients and cfg.max_grad_norm > 0:
                            self.acc.clip_grad_norm_(params, cfg.max_grad_norm)
                        self.opt.step()
                        self.opt.zero_grad(set_to_none=True)
                    for k, v in terms.items():
                        sums[k] = sums.get(k, 0.0) + float(v.detach()) / cfg.grad_accum
                if self.ema is not None:
                    self.ema.step(params)
                sums = self._mean_over_processes(sums)
                rec = {"step": step, **{k: round(v, 7) for k, v in sums.items()}, "lr": cfg.lr,
                       "seconds": round(time.perf_counter() - ts, 4)}
                if not np.isfinite(rec["loss"]):
                    raise HeadForgeError(f"The loss diverged at step {step} ({rec['loss']}); the last checkpoint "
                                         "is kept.", code="train.diverged", hint="lower lr or use bf16/fp32")
                if step % cfg.log_every == 0 or step == cfg.steps or step == start + 1:
                    self._log(rec)
                if self.acc.is_main_process:
                    self.on_progress(step, cfg.steps, rec)
                if step % cfg.checkpoint_every == 0 and step != cfg.steps:
                    self.save_checkpoint(step)
            if cfg.steps > start:
                self.save_checkpoint(cfg.steps)
        finally:
            del batches  # stops the loader's workers
            if self.logger.startswith("tensorboard"):
                self.acc.end_training()
        model_dir = self.export() if export else None
        return TrainResult(model_dir, cfg.steps, start, self.history, self.lpips_status,
                           self.expression_status(), self.logger, time.perf_counter() - t0)

    def _mean_over_processes(self, sums: dict) -> dict:
        """Each term's mean over the processes that computed it (one process may lack, e.g., landmarks)."""
        if self.acc.num_processes == 1:
            return sums
        keys = ("loss",) + TERMS
        vals = torch.tensor([[sums.get(k, 0.0), float(k in sums)] for k in keys], device=self.device,
                            dtype=torch.float64)
        vals = self.acc.reduce(vals, reduction="sum")
        return {k: float(v / n) for k, (v, n) in zip(keys, vals.tolist()) if n > 0}

    def expression_status(self) -> str:
        if self.cfg.losses.expression == 0:
            return "off: weight 0"
        err = self.landmark_error
        if self.expression_frames == 0:
            return "off: no landmarks found in the target frames" + (f" (MediaPipe: {err})" if err else "")
        return f"on: {self.expression_frames} frames with landmarks"

    def _log(self, rec: dict) -> None:
        self.history.append(rec)
        if self.acc.is_main_process:
            with open(self.out / "logs" / "train.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        if self.logger.startswith("tensorboard"):
            self.acc.log({f"train/{k}": v for k, v in rec.items() if k != "step"}, step=rec["step"])

    def _rewrite_log(self) -> None:
        """The JSON-lines log holds exactly the history of the state we start from."""
        with open(self.out / "logs" / "train.jsonl", "w") as f:
            for rec in self.history:
                f.write(json.dumps(rec) + "\n")

    # -- export ---------------------------------------------------------------------------------------
    def export(self) -> Path | None:
        """Write `output/model/` (a converted stage folder) atomically; returns it (None on other processes)."""
        self.acc.wait_for_everyone()
        if not self.acc.is_main_process:
            return None
        final = self.out / "model"
        tmp = self.out / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        src = Path(self.cfg.model)
        for comp in src.iterdir():
            if comp.is_dir() and comp.name != "unet":
                shutil.copytree(comp, tmp / comp.name)
        params = [p for _, p in self.trained]
        unet = self.acc.unwrap_model(self.unet)
        use_ema = self.ema is not None and self.cfg.export_ema
        if use_ema:
            self.ema.store(params)
            self.ema.copy_to(params)
        try:
            unet.save_pretrained(str(tmp / "unet"), safe_serialization=True)
        finally:
            if use_ema:
                self.ema.restore(params)
        info = json.loads((src / "idts_stage.json").read_text())
        info.update(source="headforge train", trained_from=str(src), steps=self.cfg.steps, ema=use_ema,
                    resolution=self.resolution, config_fingerprint=self.cfg.fingerprint())
        write_json(tmp / "idts_stage.json", info)
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        return final


def _keep(item):
    return item


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, (int, float, str, bool)):
            out[f"{prefix}{k}"] = v
        else:
            out[f"{prefix}{k}"] = str(v)
    return out


def train(cfg: TrainConfig, **kw) -> TrainResult:
    return Trainer(cfg, **kw).run()

