"""ID-TS speed and memory: one ring and all 96 views, per stage, with the time per UNet evaluation.

Full size (the released architecture, seeded weights: speed does not depend on values) on CUDA:
    python benchmarks/idts_speed.py --size real --device cuda [--memory balanced] [--precision fp16]
CPU smoke test at small size (what CI runs):
    python benchmarks/idts_speed.py --size small --device cpu --steps 2
Prints one JSON object: seconds per UNet call and per stage, one ring, 96 views (6 rings, measured or projected
from one ring with --rings 1), and peak GPU memory.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _import_backend():
    try:
        from headforge.backend.idts import builders, pipeline  # installed (editable) package
    except ImportError:  # run from a checkout: make the repository importable as `headforge`
        import importlib.util

        spec = importlib.util.spec_from_file_location("headforge", ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["headforge"] = mod
        from headforge.backend.idts import builders, pipeline  # noqa: F811
    return builders, pipeline


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["real", "small"], default="real")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=["fp16", "bf16", "fp32"], default=None)
    ap.add_argument("--memory", choices=["fast", "balanced", "low"], default="balanced")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--rings", type=int, default=6, help="rings to run (1..6); fewer rings project the 96-view time")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    builders, pipeline = _import_backend()
    device = torch.device(args.device)
    precision = args.precision or ("fp16" if device.type == "cuda" else "fp32")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]

    t0 = time.perf_counter()
    build_device = "cpu" if args.memory != "fast" else device
    low = builders.build_stage("low", args.size, seed=0, device=build_device, dtype=dtype)
    high = builders.build_stage("high", args.size, seed=0, device=build_device, dtype=dtype)
    build_s = time.perf_counter() - t0
    pipe = pipeline.IDTSPipeline(low, high, num_steps=args.steps, device=device, memory=args.memory,
                                 on_warning=lambda m: print("warning:", m, file=sys.stderr))
    portrait = np.full((600, 400, 3), 255, np.uint8)
    portrait[100:500, 80:320] = np.random.RandomState(0).randint(40, 220, (400, 240, 3))

    # time stages and UNet calls through the step callback
    marks: dict[str, list[float]] = {"low": [], "high": []}

    def on_step(stage, step, n):
        _sync(device)
        marks[stage].append(time.perf_counter())

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # warm-up: one ring with 1 step (kernels, allocator), not timed
    steps = pipe.num_steps
    pipe.num_steps = 1
    pipe.generate_ring(portrait, 0.0, seed=0)
    pipe.num_steps = steps
    ring_s, unet_s = [], []
    calls0 = pipe.unet_calls
    pipe.timings.clear()
    t_all = time.perf_counter()
    for r in range(args.rings):
        marks = {"low": [], "high": []}
        _sync(device)
        t = time.perf_counter()
        pipe.generate_ring(portrait, float(-10 + 10 * r), seed=r, callback=on_step)
        _sync(device)
        end = time.perf_counter()
        ring_s.append(end - t)
        for stage in ("low", "high"):
            m = marks[stage]
            unet_s += list(np.diff(m))  # step-to-step: one guided UNet evaluation (batch [uc, c]) + Euler update
    all_s = time.perf_counter() - t_all
    per_ring = float(np.mean(ring_s))
    out = {
        "size": args.size, "device": str(device), "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda" else "cpu", "precision": precision, "memory": args.memory, "steps": args.steps,
        "frames_per_ring": pipe.num_frames, "build_s": round(build_s, 2),
        "unet_eval_s": round(float(np.median(unet_s)), 4) if unet_s else None,
        "unet_calls_per_ring": (pipe.unet_calls - calls0) // max(args.rings, 1),
        "per_stage_ring_s": {stage: {k: round(float(np.mean([t[k] for t in pipe.timings if t["stage"] == stage])), 3)
                                     for k in ("condition_s", "sample_s", "decode_s")} for stage in ("low", "high")},
        "ring_s": round(per_ring, 3), "rings_run": args.rings,
        "views_96_s": round(all_s if args.rings == 6 else per_ring * 6, 3),
        "views_96_projected": args.rings != 6,
        "peak_gpu_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
        "torch": torch.__version__,
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
