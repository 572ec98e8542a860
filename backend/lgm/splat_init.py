"""LGM as the start of the splat stage's fit (`splat.init = lgm`): the job's elevation-0 ring → (optionally
fine-tuned) LGM → Gaussians in our world → the fit's step-0 state.

The converted weights live in `<models root>/lgm` (or `splat.lgm_dir`): `python -m headforge.backend.lgm.converter`
writes them from HQ-Head's recon.safetensors. The fit starts from LGM's Gaussians by way of its own resumable state:
`splat.optimize.write_start_state` writes the step-0 checkpoint that `fit` resumes (parameters, fresh optimisers and
densification state), so the fit itself runs unchanged.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from ..cameras import view_file
from ..errors import ModelMissingError, StageError
from ..fileio import sha256_file
from ..models import store
from ..splat import optimize
from ..splat.optimize import split_views
from ..views import read_views
from .data import INPUT_VIDS, Subject

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"


def weights_dir(lgm_dir: str = "") -> Path:
    """`splat.lgm_dir`, else <models root>/lgm (the add-on's models folder, $HEADFORGE_MODELS or the default)."""
    if lgm_dir:
        return Path(lgm_dir).expanduser()

    return store.model_path("lgm")


def missing_files(lgm_dir: str = "") -> list[str]:
    folder = weights_dir(lgm_dir)
    return [str(folder / n) for n in ("config.json", WEIGHTS_FILE) if not (folder / n).is_file()]


def load_model(lgm_dir: str = "", device="cpu"):
    """The converted LGM in float32 (fine-tuning keeps fp32 master weights; autocast gives the fp16 compute)."""
    from .model import LGMModel

    missing = missing_files(lgm_dir)
    if missing:
        raise ModelMissingError(
            f"splat.init=lgm needs the converted LGM reconstructor; missing: {', '.join(missing)}.",
            code="lgm.weights_missing",
            hint="Download HQ-Head's recon.safetensors and run `python -m headforge.backend.lgm.converter --recon "
                 "recon.safetensors --out " + str(weights_dir(lgm_dir)) + "`, or use splat.init=hull.")
    return LGMModel.from_pretrained(str(weights_dir(lgm_dir)), torch_dtype=torch.float32).to(device)


def lgm_splat(views_dir, *, lgm_dir: str = "", finetune_steps: int = 0, finetune_lr: float = 1e-6, seed: int = 0,
              device="cpu", sh_degree: int = 3, on_progress: Callable[[int, int, dict], None] | None = None,
              check_cancel: Callable[[], None] | None = None, checkpoint=None) -> tuple[dict, dict]:
    """(splat dict in our world, record) from the job's views: LGM on the 4 input views, fine-tuned first when
    `finetune_steps` > 0 (SPEC 4.11's loop, on the generated ring)."""
    from .finetune import FinetuneConfig, finetune, predict, to_world_splat

    t0 = time.time()
    device = torch.device(device)
    subject = Subject.from_job_views(views_dir)
    model = load_model(lgm_dir, device)
    record = {"weights": str(weights_dir(lgm_dir)), "input_views": [16, 21, 24, 27],
              "ring_views": subject.available, "finetune_steps": finetune_steps}
    if finetune_steps > 0:
        cfg = FinetuneConfig(steps=finetune_steps, lr=finetune_lr, seed=seed)
        result = finetune(model, subject, cfg, device, on_progress=on_progress, check_cancel=check_cancel,
                          checkpoint=checkpoint, source=sha256_file(weights_dir(lgm_dir) / WEIGHTS_FILE))
        gaussians, to_kiui = result.gaussians, result.to_kiui
        record.update(finetune_lr=finetune_lr, lpips=result.lpips, finetune_seconds=round(result.seconds, 2),
                      finetune_loss_first=result.history[0]["loss"], finetune_loss_last=result.history[-1]["loss"])
    else:
        gaussians, to_kiui = predict(model, subject, device)
    splat = to_world_splat(gaussians, to_kiui, sh_degree=sh_degree)
    record.update(gaussians=int(gaussians.shape[0]), kept=int(splat["means"].shape[0]),
                  seconds=round(time.time() - t0, 2))
    return splat, record


def choose_init(option: str, mode: str, lgm_dir: str = "", views_dir=None) -> tuple[str, str]:
    """("hull" | "lgm", why) for `splat.init` = auto | hull | lgm. Auto takes LGM in full mode when its weights are
    installed and the views hold its 4 input views; otherwise the visual hull."""
    if option in ("hull", "lgm"):
        return option, f"splat.init={option}"
    if mode != "full":
        return "hull", f"splat.init=auto: the visual hull in {mode} mode (LGM starts full mode's fit)"
    missing = missing_files(lgm_dir)
    if missing:
        return "hull", f"splat.init=auto: the visual hull, LGM's weights are not installed ({', '.join(missing)})"
    if views_dir is not None:
        try:
            cams = {int(c["index"]): c for c in read_views(views_dir, code="lgm", with_images=False)[0]}
            absent = [v for v in INPUT_VIDS if v not in cams or not view_file(views_dir, cams[v]).is_file()]
        except (StageError, OSError, ValueError, KeyError):
            absent = list(INPUT_VIDS)
        if absent:
            return "hull", f"splat.init=auto: the visual hull, the views lack LGM's input views {absent}"
    return "lgm", "splat.init=auto: LGM, full mode with its weights installed"


def start_fit_from_lgm(views_dir, checkpoint, lgm_checkpoint, cfg, *, lgm_dir: str = "", finetune_steps: int = 0,
                       finetune_lr: float = 1e-6, seed: int = 0, device="cpu", on_progress=None,
                       check_cancel=None) -> dict:
    """Make the fit start from LGM's Gaussians: unless the fit's own state at `checkpoint` is resumable (a cancelled
    run), run LGM (fine-tuned when asked, its state in `lgm_checkpoint` so that a cancel resumes there) and seed the
    fit's step-0 state. Returns LGM's record (or {"resumed_fit": True})."""
    if optimize.checkpoint_resumable(checkpoint, cfg, device):
        return {"resumed_fit": True}
    splat, record = lgm_splat(views_dir, lgm_dir=lgm_dir, finetune_steps=finetune_steps, finetune_lr=finetune_lr,
                              seed=seed, device=device, sh_degree=cfg.sh_degree, on_progress=on_progress,
                              check_cancel=check_cancel, checkpoint=lgm_checkpoint)
    optimize.write_start_state(checkpoint, cfg, splat)
    Path(lgm_checkpoint).unlink(missing_ok=True)
    record["held_out_views_seen"] = held_out_views_seen(views_dir, cfg.holdout_every, record)
    return record


def held_out_views_seen(views_dir, holdout_every: int, record: dict) -> list[int]:
    """The fit's held-out views (every `holdout_every`-th camera of cameras.json) that LGM saw: its input views, and
    with fine-tuning every ring view. Their held-out figures are then not independent of the start."""
    cams = read_views(views_dir, code="lgm", with_images=False)[0]
    seen = set(record["ring_views"] if record.get("finetune_steps", 0) > 0 else record["input_views"])
    return [int(cams[i]["index"]) for i in split_views(len(cams), holdout_every)[1] if int(cams[i]["index"]) in seen]
