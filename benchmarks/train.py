"""ID-TS training step: seconds per optimiser step and memory, with every loss on (diffusion, LPIPS, identity,
expression), on a synthetic dataset (backend/train/synthetic.py) and seeded random weights (speed and memory do not
depend on the values; LPIPS-VGG too has random weights unless --lpips installed).

    python benchmarks/train.py --size small --device cpu                     # the tiny model on this machine's CPU
    python benchmarks/train.py --size real --device cuda --precision bf16    # real size (benchmarks/gpu_check.sh)

CPU memory is the process's peak resident set (ru_maxrss: a process-wide peak, so give one --precision per run for
memory figures); CUDA memory is torch.cuda.max_memory_allocated over the timed steps.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from headforge.backend.idts.builders import SMALL_RESOLUTION, build_stage
from headforge.backend.idts.pipeline import STAGE_RESOLUTION
from headforge.backend.train.config import parse_config
from headforge.backend.train.synthetic import make_dataset
from headforge.backend.train.trainer import Trainer

IDENTITIES = {"a": ((0.85, 0.3, 0.25), 0.2, "train"), "b": ((0.3, 0.75, 0.35), 0.8, "train")}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=["small", "real"], default="small")
    ap.add_argument("--stage", choices=["low", "high"], default="low")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="no", help="comma-separated: no, bf16, fp16 (one run each)")
    ap.add_argument("--frames", type=int, help="frames per video (default: 4 small, 16 real)")
    ap.add_argument("--perceptual-frames", type=int, help="frames decoded for LPIPS/identity/expression (all)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (after one warm-up step)")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--lpips", choices=["random", "installed", "off"], default="random")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    frames = args.frames or (4 if args.size == "small" else 16)
    res = SMALL_RESOLUTION[args.stage] if args.size == "small" else STAGE_RESOLUTION[args.stage]
    tmp = Path(tempfile.mkdtemp(prefix="headforge-train-bench-"))
    t = time.perf_counter()
    ids = IDENTITIES if args.size == "small" else dict(list(IDENTITIES.items())[:1])
    dataset = make_dataset(tmp / "data", ids, size=res, landmarks=True)
    print(f"train_bench: synthetic dataset ({len(ids)} sequence(s) × 96 views at {res} px) in "
          f"{time.perf_counter() - t:.1f} s")
    results = []
    for precision in args.precision.split(","):
        rss0 = rss_mib()
        t = time.perf_counter()
        models = build_stage(args.stage, args.size, seed=0, device=device)
        models.resolution = res
        build_s = time.perf_counter() - t
        cfg = parse_config({"stage": args.stage, "model": "(built in memory)", "dataset": str(dataset),
                            "output": str(tmp / f"run-{precision}"), "steps": args.steps + 1, "num_frames": frames,
                            "mixed_precision": precision, "gradient_checkpointing": args.gradient_checkpointing,
                            "perceptual_frames": args.perceptual_frames, "log_with": "jsonl",
                            "checkpoint_every": 10 ** 6, "ema_decay": 0.9999, "landmarks": "file",
                            "losses": {"lpips": 0.0 if args.lpips == "off" else 1.0}})
        lpips = None
        if args.lpips == "random":
            from headforge.backend.lgm.lpips_vgg import LPIPSVGG

            lpips = LPIPSVGG()
        trainer = Trainer(cfg, models=models, lpips_net=lpips)
        times = []

        def on_step(step, n, rec):
            times.append(rec["seconds"])
            if device.type == "cuda" and step == 1:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()

        trainer.on_progress = on_step
        rss_before = rss_mib()
        run = trainer.run(export=False)  # the last step also writes a checkpoint: its time is outside `seconds`
        timed = times[1:]
        rec = {"size": args.size, "stage": args.stage, "device": str(device), "precision": precision,
               "frames": frames, "resolution": res, "perceptual_frames": args.perceptual_frames or frames,
               "gradient_checkpointing": args.gradient_checkpointing, "lpips": trainer.lpips_status,
               "expression": run.expression, "threads": torch.get_num_threads(),
               "trained_parameters": sum(p.numel() for _, p in trainer.trained),
               "build_s": round(build_s, 2), "step_s_median": round(statistics.median(timed), 4),
               "step_s_all": timed, "last_loss": run.history[-1]}
        if device.type == "cuda":
            rec["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
        else:
            rec.update(rss_start_mib=round(rss0, 1), rss_after_build_mib=round(rss_before, 1),
                       rss_peak_mib=round(rss_mib(), 1))
        results.append(rec)
        mem = (f"peak GPU memory {rec['peak_gpu_gib']} GiB" if device.type == "cuda" else
               f"peak RSS {rec['rss_peak_mib']:.0f} MiB (models built: {rec['rss_after_build_mib']:.0f} MiB, "
               f"start {rec['rss_start_mib']:.0f} MiB)")
        print(f"train_bench: {args.size} stage {args.stage} {precision} on {device} ({rec['threads']} threads): "
              f"{rec['step_s_median']:.3f} s/step (median of {len(timed)}; B=1 video × {frames} frames at {res} px, "
              f"{rec['perceptual_frames']} decoded), {mem}; {rec['trained_parameters']:,} trained parameters; "
              f"LPIPS {rec['lpips']}; expression {rec['expression']}")
        del trainer, models
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
