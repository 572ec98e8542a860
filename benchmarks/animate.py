"""Video → ARKit benchmark: the facecap capture (52 weights, head and eye motion) drives HeadForge's ICT rig,
Blender renders it (Workbench, the rig's vertex colours) from the front and ±30° yaw, `track_video` recovers
the take. Prints per-key and mean absolute error over the active keys, jawOpen and blink errors, head rotation
error (relative to each camera), blink timing and processing speed; `--json` writes them too.

    python benchmarks/animate.py [--size 640x480] [--smoothing 0.5] [--json out.json]
Issue 17's goals: mean ≤ 0.08, jawOpen and blinks ≤ 0.10, head ≤ 2°, every blink ± 1 frame, 30 fps at 640×480.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.animate.ground_truth
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import SHARED, use_shared_ict  # noqa: E402

# (start frame at 30 fps, frames, camera yaw degrees): jaw opening and closing, the left-eye blink at ~195
VIEWS = ((80, 150, 0.0), (150, 80, 30.0), (150, 80, -30.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--smoothing", type=float, default=0.5)
    ap.add_argument("--work", help="folder for the renders (default: a temporary one)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--views", default="all", help="'all' or 'front'")
    args = ap.parse_args(argv)
    use_shared_ict()
    os.environ.setdefault("GLOG_minloglevel", "2")
    from headforge.backend.animate.track import track_video
    from tests.animate.ground_truth import render_clip, score

    W, H = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.work or tempfile.mkdtemp(prefix="hf-animate-bench-"))
    results = {"size": [W, H], "smoothing": args.smoothing, "cpu_count": os.cpu_count(), "views": []}
    views = VIEWS if args.views == "all" else VIEWS[:1]
    for start, n, yaw in views:
        t0 = time.perf_counter()
        mp4, gt, facts = render_clip(SHARED, work, start, n, (W, H), yaw)
        render_s = time.perf_counter() - t0
        take = track_video(mp4, smoothing=args.smoothing)
        s = score(gt, take, np.array(facts["w2c"]))
        timing = take.info["timing"]
        s.update(view=f"yaw {yaw:+.0f}°", start=start, render_s=round(render_s, 1),
                 fps_processed=round(timing["fps_processed"], 2), landmarks_s=round(timing["landmarks_s"], 2),
                 fit_s=round(timing["fit_s"], 2), lost_frames=len(take.info["lost_frames"]))
        results["views"].append(s)
        print(f"\n== {s['view']}: frames {start}–{start + n - 1} of the capture, {W}×{H}, "
              f"smoothing {args.smoothing}")
        print(f"mean |error| over {len(s['active_keys'])} active keys: {s['mean_mae_active']:.3f}   "
              f"jawOpen {s['jawOpen_mae']:.3f}   eyeBlinkLeft {s['eyeBlinkLeft_mae']:.3f}   "
              f"eyeBlinkRight {s['eyeBlinkRight_mae']:.3f}")
        print(f"head rotation error: mean {s['head_rot_err_deg_mean']:.2f}°, max {s['head_rot_err_deg_max']:.2f}° "
              f"(a constant {s['head_rot_offset_deg']:.2f}°; "
              f"without it {s['head_rot_err_deg_mean_offset_removed']:.2f}°)"
              f"; gaze yaw/pitch error left {s.get('eye_left_err_deg_mean', float('nan')):.1f}°, "
              f"right {s.get('eye_right_err_deg_mean', float('nan')):.1f}°")
        for k, b in s["blinks"].items():
            print(f"blink onsets {k}: truth {b['truth']} found {b['found']} (worst offset {b['max_offset']})")
        print(f"speed: {s['fps_processed']:.1f} frames/s (landmarks {s['landmarks_s']} s, fit {s['fit_s']} s, "
              f"{n} frames); lost frames {s['lost_frames']}")
        worst = sorted(s["per_key_mae"].items(), key=lambda kv: -kv[1])[:8]
        print("worst keys: " + ", ".join(f"{k} {v:.2f}" for k, v in worst))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
