"""`headforge evaluate DATASET [--split test] [--model DIR] [-o OUT]`: see run.py. Prints the table (table.md) and
writes OUT/results.json; Ctrl-C stops between diffusion steps."""
from __future__ import annotations

import signal
from pathlib import Path

from ..events import CancelToken, ProgressEvent


def add_parser(subparsers) -> None:
    e = subparsers.add_parser("evaluate", help="research: the paper's metrics of the multi-view stage on a dataset")
    e.add_argument("dataset", help="dataset folder (headforge dataset build / check)")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--model", default="", metavar="DIR", help="converted ID-TS folder with low_stage/ and "
                   "high_stage/ (default: the models folder's idts/, or a `headforge train` export)")
    e.add_argument("-o", "--output", help="results folder (default DATASET/eval-SPLIT)")
    e.add_argument("--rings", default="input", choices=["input", "all"],
                   help="input: the frontal ring (16 views); all: the 96-view orbit")
    e.add_argument("--steps", type=int, default=25)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--no-stage2", action="store_true", help="stage 1 only (256 px views)")
    e.add_argument("--device", default="auto")
    e.add_argument("--precision", default="auto")
    e.add_argument("--limit", type=int, default=0, metavar="N", help="at most N sequences")
    e.add_argument("--keep-views", action="store_true", help="write the generated views under OUT/<sequence>/")
    e.add_argument("--reconstruct", action="store_true", help="also fit Gaussians to the generated views and score "
                   "their renders from all 96 cameras")
    e.add_argument("--recon-steps", type=int, default=3000, help="Gaussian fit steps with --reconstruct")
    e.add_argument("--cpu-threads", type=int, default=1, metavar="N", help="torch threads on the CPU (fixed so the "
                   "figures do not change with the machine; 0: torch's default)")
    e.add_argument("--models-root", help="folder holding lpips/ and dreamsim/ weights (default: the models folder)")
    e.add_argument("--face-models", default="", metavar="DIR", help="folder holding the face detectors (insightface/, "
                   "opencv_zoo/) for the input's framing and CSIM's face alignment (default: the models folder)")
    e.add_argument("--detector", default="auto", choices=["auto", "scrfd", "yunet", "mediapipe"],
                   help="the face detector (as the face stage's face.detector)")


def cmd_evaluate(args, report) -> int:
    from .run import EvalOptions, evaluate_dataset, format_table

    opts = EvalOptions(split=args.split, models_dir=args.model, steps=args.steps, seed=args.seed, rings=args.rings,
                       stage2=not args.no_stage2, device=args.device, precision=args.precision, limit=args.limit,
                       keep_views=args.keep_views, models_root=args.models_root, reconstruct=args.reconstruct,
                       recon_steps=args.recon_steps, cpu_threads=args.cpu_threads, face_models_root=args.face_models,
                       detector=args.detector)
    out = Path(args.output) if args.output else Path(args.dataset) / f"eval-{args.split}"
    cancel = CancelToken()
    handlers = {sig: signal.signal(sig, lambda *a: cancel.cancel()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        report(ProgressEvent("stage_start", "evaluate", message=f"{args.split} split"))
        result = evaluate_dataset(Path(args.dataset), out, opts, report, cancel)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    summary = {k: result[k] for k in ("metrics", "missing", "overall", "per_elevation", "per_azimuth", "csim_excluded",
                                      "skipped", "seconds")}
    if "reconstruction" in result:
        summary["reconstruction"] = {k: v for k, v in result["reconstruction"].items() if k != "views"}
    report(ProgressEvent("stage_done", "evaluate", 1.0, 1.0, "evaluated"))
    report(ProgressEvent("job_done", "evaluate", 1.0, 1.0, f"{len(result['views'])} views of "
                         f"{len(result['sequences'])} sequence(s) → {out / 'results.json'}", data=summary))
    report.close()
    report.print(format_table(result))
    return 0
