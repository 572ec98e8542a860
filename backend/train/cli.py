"""`headforge train CONFIG`: fine-tune ID-TS stage 1 or 2 on a dataset (see backend/train/config.py for the options).

The config is read and validated, and its model folder and dataset checked, before any model loads. Progress
events go to the reporter (JSON lines with --json); Ctrl-C checkpoints and stops (run again to resume). Several GPUs:
`accelerate launch -m headforge.backend.cli train CONFIG` (each process draws its own clips; process 0 writes).
"""
from __future__ import annotations

import signal
import threading

from ..events import CancelToken, ProgressEvent
from .config import load_config


def add_parser(subparsers) -> None:
    t = subparsers.add_parser("train", help="fine-tune the ID-TS multi-view model on a dataset (accelerate)")
    t.add_argument("config", help="training config (.yaml/.yml, .json or .toml); see backend/train/config.py")
    t.add_argument("--check", action="store_true", help="validate the config and its inputs, then stop")


def _quiet(event) -> None:
    pass


def cmd_train(args, report) -> int:
    cfg = load_config(args.config)
    if args.check:
        report.print(f"config OK: stage {cfg.stage}, {cfg.steps} steps, model {cfg.model}, dataset {cfg.dataset}")
        return 0
    from .trainer import Trainer  # torch, diffusers, accelerate: only once the config is known to be good

    cancel = CancelToken()
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())

    def progress(step: int, steps: int, rec: dict) -> None:
        msg = f"step {step}/{steps} loss {rec['loss']:.4f}"
        report(ProgressEvent("progress", "train", fraction=step / steps, overall=step / steps, message=msg,
                             data=rec))

    try:
        trainer = Trainer(cfg, on_progress=progress, cancel=cancel)
        if not trainer.acc.is_main_process:  # under `accelerate launch`: process 0 speaks for all
            report = _quiet
        report(ProgressEvent("stage_start", "train", message=f"stage {cfg.stage} → {cfg.output}"))
        report(ProgressEvent("info", "train", message=f"LPIPS {trainer.lpips_status}; logs: {trainer.logger}"))
        result = trainer.run()
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    summary = {"model": str(result.model_dir) if result.model_dir else None, "steps": result.steps,
               "resumed_from": result.resumed_from, "lpips": result.lpips, "expression": result.expression,
               "logger": result.logger, "seconds": round(result.seconds, 2),
               "last": result.history[-1] if result.history else None}
    report(ProgressEvent("stage_done", "train", fraction=1.0, overall=1.0,
                         message=f"{result.steps} steps → {result.model_dir}", data=summary))
    if not args.json and trainer.acc.is_main_process:
        report.print(f"trained stage {cfg.stage}: {result.steps} steps (resumed from {result.resumed_from}); "
                     f"model folder {result.model_dir}; LPIPS {result.lpips}; expression {result.expression}")
    return 0
