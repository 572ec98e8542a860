"""ID-TS speed and memory of the `multiview` stage as it runs: rings, the mattes of every ring's views, and the
Gaussian seed fits between rings (other_rings = splat), with the time per UNet evaluation.

The real stage function (backend/stages/multiview.py) runs on a temporary job folder with a pipeline of seeded
weights (speed does not depend on weight values); the benchmark only times the calls it makes: the ring
generations, `view_mattes` and `splat_seed_view`. With --rings N < 6 it stops the stage when ring N+1 would
start (after the N-th seed fit) and projects 96 views from what it measured.

Full size (the released architecture) on CUDA:
    python benchmarks/idts_speed.py --size real --device cuda [--memory balanced] [--precision fp16]
CPU smoke test at small size (what CI runs):
    python benchmarks/idts_speed.py --size small --device cpu --steps 2 --rings 1 --seed-fit-steps 5
Prints the figures with their units, then one JSON object (also returned by main()).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _import_backend():
    try:
        import headforge.backend  # noqa: F401  installed (editable) package
    except ImportError:  # run from a checkout: make the repository importable as `headforge`
        import importlib.util

        spec = importlib.util.spec_from_file_location("headforge", ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["headforge"] = mod
    from headforge.backend import job
    from headforge.backend.events import CancelToken
    from headforge.backend.idts import builders, orbit, pipeline
    from headforge.backend.stages import multiview

    return builders, pipeline, orbit, multiview, job, CancelToken


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _StopAfterRings(Exception):
    """Raised into the stage when the ring after the last one asked for would start."""


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["real", "small"], default="real")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", choices=["fp16", "bf16", "fp32"], default=None)
    ap.add_argument("--memory", choices=["fast", "balanced", "low"], default="balanced")
    ap.add_argument("--steps", type=int, default=25, help="sampler steps per stage")
    ap.add_argument("--rings", type=int, default=6, help="rings to run (1..6); fewer rings project the 96-view time")
    ap.add_argument("--other-rings", choices=["splat", "portrait"], default="splat",
                    help="how the stage seeds the rings after the first (the stage's option)")
    ap.add_argument("--seed-fit-steps", type=int, default=None, help="steps of each seed fit (default: the stage's)")
    ap.add_argument("--matte", choices=["auto", "birefnet", "white"], default="auto", help="the stage's matte option")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    ap.add_argument("--build-on", choices=["device", "cpu"], default="device",
                    help="where the seeded models are initialised (on the GPU it takes seconds, not minutes); with "
                    "--memory balanced/low they are then moved to the CPU, where loaded weights start")
    args = ap.parse_args(argv)
    if not 1 <= args.rings <= 6:
        ap.error("--rings must be 1..6")
    if args.threads:
        torch.set_num_threads(args.threads)
    builders, pipeline, orbit, multiview, jobmod, CancelToken = _import_backend()
    device = torch.device(args.device)
    precision = args.precision or ("fp16" if device.type == "cuda" else "fp32")
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
    defaults = multiview.MultiviewOptions()
    seed_steps = defaults.seed_fit_steps if args.seed_fit_steps is None else args.seed_fit_steps
    opts = multiview.MultiviewOptions(steps=args.steps, rings="all", other_rings=args.other_rings,
                                      seed_fit_steps=seed_steps, device=args.device, memory=args.memory,
                                      matte=args.matte)

    t0 = time.perf_counter()
    build_device = device if args.build_on == "device" else torch.device("cpu")
    low = builders.build_stage("low", args.size, seed=0, device=build_device, dtype=dtype)
    high = builders.build_stage("high", args.size, seed=0, device=build_device, dtype=dtype)
    if args.memory != "fast" and build_device.type != "cpu":  # where loading leaves them: the pipeline moves them
        low.to("cpu"), high.to("cpu")
        torch.cuda.empty_cache()
    build_s = time.perf_counter() - t0
    pipe = pipeline.IDTSPipeline(low, high, num_steps=args.steps, device=device, memory=args.memory,
                                 on_warning=lambda m: print("warning:", m, file=sys.stderr))
    portrait = np.full((600, 400, 3), 255, np.uint8)
    portrait[100:500, 80:320] = np.random.RandomState(0).randint(40, 220, (400, 240, 3))

    # warm-up: one ring with 1 step (kernels, allocator), not timed
    pipe.num_steps = 1
    pipe.generate_ring(portrait, 0.0, seed=0)
    pipe.num_steps = args.steps
    pipe.timings.clear()
    calls0 = pipe.unet_calls

    rec = {"ring_s": [], "unet_s": [], "matte_s": [], "matte_frames": 0, "matte_method": None, "seed_s": [],
           "seed_rings": []}
    generate = pipe.generate_ring

    def timed_generate(source, elevation, seed=0, callback=None):
        if len(rec["ring_s"]) == args.rings:
            raise _StopAfterRings()
        marks = {"low": [], "high": []}

        def on_step(stage, step, n):
            _sync(device)
            marks[stage].append(time.perf_counter())
            if callback is not None:
                callback(stage, step, n)

        _sync(device)
        t = time.perf_counter()
        result = generate(source, elevation, seed=seed, callback=on_step)
        _sync(device)
        rec["ring_s"].append(time.perf_counter() - t)
        for m in marks.values():  # step-to-step: one guided UNet evaluation (batch [uc, c]) + Euler update
            rec["unet_s"] += list(np.diff(m))
        return result

    def timed_mattes(frames, method):
        t = time.perf_counter()
        out = view_mattes(frames, method)
        rec["matte_s"].append(time.perf_counter() - t)
        rec["matte_frames"] += len(frames)
        rec["matte_method"] = out[1]
        return out

    def timed_seed(rings_rgba, ring, yaw_deg, o, check_cancel=None):
        _sync(device)
        t = time.perf_counter()
        out = splat_seed_view(rings_rgba, ring, yaw_deg, o, check_cancel=check_cancel)
        _sync(device)
        rec["seed_s"].append(time.perf_counter() - t)
        rec["seed_rings"].append(len(rings_rgba))
        return out

    warnings = []

    def on_event(e):
        if e.kind == "warning":
            warnings.append((e.data.get("code"), e.message))

    view_mattes, splat_seed_view = orbit.view_mattes, orbit.splat_seed_view
    pipe.generate_ring = timed_generate
    orbit.view_mattes, orbit.splat_seed_view = timed_mattes, timed_seed
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    stopped = False
    try:
        with tempfile.TemporaryDirectory(prefix="hf-idts-bench-") as tmp:
            job = jobmod.Job(tmp)
            (job.root / "face").mkdir()
            from PIL import Image

            Image.fromarray(portrait).save(job.path("face/crop.png"))
            ctx = jobmod.StageContext(job, "multiview", opts, "full", on_event, CancelToken(), lambda f: f)
            _sync(device)
            t_all = time.perf_counter()
            try:
                multiview.run_multiview(ctx, pipeline=pipe)
            except _StopAfterRings:
                stopped = True
            _sync(device)
            stage_s = time.perf_counter() - t_all
    finally:
        orbit.view_mattes, orbit.splat_seed_view = view_mattes, splat_seed_view
        del pipe.generate_ring

    rings_run = len(rec["ring_s"])
    ring_s, matte_s = float(np.mean(rec["ring_s"])), float(np.mean(rec["matte_s"]))
    seed_s = float(np.mean(rec["seed_s"])) if rec["seed_s"] else 0.0
    other_s = (stage_s - sum(rec["ring_s"]) - sum(rec["matte_s"]) - sum(rec["seed_s"])) / rings_run  # PNGs etc.
    seed_fits_96 = 5 if args.other_rings == "splat" else 0
    projected = stopped or rings_run != 6
    fallbacks = [m for c, m in warnings if c == "multiview.seed_fallback"]
    out = {
        "size": args.size, "device": str(device), "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda" else "cpu", "precision": precision, "memory": args.memory, "steps": args.steps,
        "frames_per_ring": pipe.num_frames, "build_s": round(build_s, 2),
        "unet_eval_s": round(float(np.median(rec["unet_s"])), 4) if rec["unet_s"] else None,
        "unet_calls_per_ring": (pipe.unet_calls - calls0) // max(rings_run, 1),
        "per_stage_ring_s": {stage: {k: round(float(np.mean([t[k] for t in pipe.timings if t["stage"] == stage])), 3)
                                     for k in ("condition_s", "sample_s", "decode_s")} for stage in ("low", "high")},
        "ring_s": round(ring_s, 3), "rings_run": rings_run,
        "mattes": rec["matte_frames"], "matte_ring_s": round(matte_s, 3),
        "matte_method": rec["matte_method"],
        "other_rings": args.other_rings, "seed_fit_steps": seed_steps,
        "seed_fits": len(rec["seed_s"]), "seed_fit_s": [round(s, 3) for s in rec["seed_s"]],
        "seed_fit_rings": rec["seed_rings"], "seed_fallbacks": len(fallbacks),
        "other_ring_s": round(other_s, 3), "stage_s": round(stage_s, 3),
        "rings_only_96_s": round(6 * ring_s, 3),
        "views_96_s": round(stage_s if not projected else 6 * (ring_s + matte_s + other_s) + seed_fits_96 * seed_s, 3),
        "views_96_projected": projected,
        "peak_gpu_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
        "torch": torch.__version__,
    }
    _report(out)
    for m in fallbacks:
        print(f"WARNING: a seed fit fell back to the portrait ({m}): its time is not a fit's time", file=sys.stderr)
    print(json.dumps(out, indent=1))
    return out


def _report(o: dict) -> None:
    p = lambda *a: print(*a, file=sys.stderr)  # noqa: E731  (figures to stderr, the JSON alone on stdout)
    p(f"idts_speed: {o['size']} models (seeded weights), {o['device_name']}, {o['precision']}, memory mode "
      f"{o['memory']}, {o['steps']} sampler steps per stage, {o['frames_per_ring']} frames per ring")
    unet = f"{o['unet_eval_s']:.4f} s (median)" if o["unet_eval_s"] is not None else "not measured (needs --steps >= 2)"
    p(f"  UNet evaluation (one guided step, batch [uncond, cond] + Euler update): {unet}; "
      f"{o['unet_calls_per_ring']} calls per ring")
    p(f"  one ring, both ID-TS stages: {o['ring_s']:.3f} s (mean of {o['rings_run']} ring(s))")
    p(f"  mattes ({o['matte_method']}): {o['mattes']} views matted, {o['matte_ring_s']:.3f} s per ring of 16")
    p(f"  seed fits (other_rings = {o['other_rings']}, {o['seed_fit_steps']} steps each): {o['seed_fits']} run, "
      f"seconds {o['seed_fit_s']} on {o['seed_fit_rings']} ring(s) of views")
    p(f"  rest of the stage (view PNGs, bookkeeping): {o['other_ring_s']:.3f} s per ring")
    how = ("projected: 6 x (ring + mattes + rest) + 5 x the mean measured seed fit (later ones fit more rings)"
           if o["views_96_projected"] else "measured")
    p(f"  96 views, the whole stage: {o['views_96_s']:.3f} s ({how}); "
      f"rings alone would be {o['rings_only_96_s']:.3f} s")
    if o["peak_gpu_gb"] is not None:
        p(f"  peak GPU memory allocated: {o['peak_gpu_gb']:.2f} GiB")
    p(f"  model build: {o['build_s']:.2f} s (not counted above)")


if __name__ == "__main__":
    main()
