"""Splat-fit benchmark: Lee Perry-Smith rendered from the 96-view rig, every 8th view held out.

Fits the views with HeadForge's recipe and with a plain 3DGS baseline (gsplat's DefaultStrategy, the original
paper's hyper-parameters and synthetic-scene init: 100k uniform random Gaussians in the object's volume) and
prints one row per method: held-out PSNR/SSIM (over white, and inside the mask), Gaussian count, fit wall time,
peak memory, and the time each method needed to reach the baseline's final held-out PSNR.

    python benchmarks/splat_fit.py --size 128 --steps 3000            # CPU (issue target: >= 28 dB, <= 15 min)
    python benchmarks/splat_fit.py --size 512 --steps 3000 --device cuda

Each fit runs in its own process (clean peak-memory figures). Views are rendered once per size with
`headforge render-views` into --cache.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO.parent / "shared" / "data" / "heads" / "lee_perry_smith" / "LeePerrySmith_textured.glb"


def render_views(asset: Path, out: Path, size: int, samples: int) -> Path:
    if (out / "cameras.json").is_file():
        return out
    t = time.time()
    cmd = [sys.executable, "-m", "headforge.backend.cli", "render-views", str(asset), "-o", str(out),
           "--size", str(size), "--samples", str(samples)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"rendered 96 views at {size} px in {time.time() - t:.0f} s -> {out}", flush=True)
    return out


def _fit_worker(method: str, views_dir: str, size: int, steps: int, device: str, threads: int, extra: dict, q):
    import torch

    if threads:
        torch.set_num_threads(threads)
    from headforge.backend.splat.optimize import FitConfig, fit
    from headforge.backend.stages.splat import load_views

    views, viewmats, Ks, _ = load_views(views_dir, size)
    make = FitConfig.ours if method == "ours" else FitConfig.baseline_3dgs
    cfg = make(steps, device=device, preview_every=10**9, checkpoint_every=0, **extra)
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        torch.cuda.reset_peak_memory_stats()
    t = time.time()
    res = fit(views, viewmats, Ks, cfg)
    wall = time.time() - t
    m = dict(res.metrics)
    m["wall_seconds"] = round(wall, 1)
    if torch.cuda.is_available() and m["device"].startswith("cuda"):
        m["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    m["peak_rss_mib"] = round(ru.ru_maxrss / 1024)
    m["cpu_seconds"] = round(ru.ru_utime + ru.ru_stime, 1)  # this process's CPU time (shared machines)
    m["curve"] = res.curve
    q.put(m)


def run(method, views_dir, args, extra) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_fit_worker, args=(method, str(views_dir), args.size, args.steps if method == "ours"
                                              else args.baseline_steps or args.steps, args.device, args.threads,
                                              extra, q))
    p.start()
    m = q.get()
    p.join()
    print(f"{method}: " + json.dumps({k: v for k, v in m.items() if k != "curve"}), flush=True)
    return m


def time_to(curve, psnr: float):
    for _, seconds, value in curve:
        if value >= psnr:
            return seconds
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--baseline-steps", type=int, default=0, help="default: --steps")
    ap.add_argument("--baseline-points", type=int, default=100_000)
    ap.add_argument("--max-gaussians", type=int, default=0, help="cap for ours (0: none)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--eval-every", type=int, default=0, help="held-out PSNR curve period (default steps/10)")
    ap.add_argument("--samples", type=int, default=16, help="Cycles samples for the views")
    ap.add_argument("--asset", default=str(ASSET))
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "headforge-bench"))
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    render_size = max(args.size, 128)
    views = render_views(Path(args.asset), Path(args.cache) / f"lps_{render_size}", render_size, args.samples)
    eval_every = args.eval_every or max(args.steps // 10, 1)
    rows = {"ours": run("ours", views, args, {"eval_every": eval_every,
                                              "max_gaussians": args.max_gaussians})}
    if not args.skip_baseline:
        rows["3dgs"] = run("3dgs", views, args, {"eval_every": eval_every, "init_points": args.baseline_points})
    target = rows["3dgs"]["test_psnr"] if "3dgs" in rows else None

    print(f"\nsplat_fit: Lee Perry-Smith, {args.size} px, 96 views (84 train / 12 held out), "
          f"device {rows['ours']['device']}, torch threads {args.threads or 'default'}")
    head = (f"{'method':8} {'steps':>6} {'PSNR':>7} {'SSIM':>6} {'PSNR_m':>7} {'SSIM_m':>7} {'IoU':>6} "
            f"{'gauss':>8} {'fit_s':>7} {'wall_s':>8} {'cpu_s':>7} {'peak_MiB':>9} {'t_to_base_s':>11}")
    print(head)
    print("-" * len(head))
    for name, m in rows.items():
        peak = m.get("peak_gpu_mib", m["peak_rss_mib"])
        tt = time_to(m["curve"], target) if target is not None else None
        print(f"{name:8} {m['steps']:>6} {m['test_psnr']:>7.2f} {m['test_ssim']:>6.4f} {m['test_psnr_masked']:>7.2f} "
              f"{m['test_ssim_masked']:>7.4f} {m['test_alpha_iou']:>6.3f} {m['n_gaussians']:>8} {m['fit_seconds']:>7.1f} "
              f"{m['wall_seconds']:>8.1f} {m['cpu_seconds']:>7.1f} {peak:>9} {('%.1f' % tt) if tt is not None else '-':>11}")
    for name, m in rows.items():
        print(f"{name} held-out PSNR curve (step, s, dB): " +
              ", ".join(f"({s}, {t:.0f}, {p:.2f})" for s, t, p in m["curve"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
