"""Dataset build time per sequence: `headforge dataset build` of one ICT-FaceKit head (and with --scan the Lee
Perry-Smith scan) at 512 px, Cycles on this machine's CPU (or --device gpu).

    .venv/bin/python benchmarks/dataset.py [--size 512] [--samples 32] [--scan] [--workers 1] [--out DIR]

Prints the wall time per sequence, the render's own seconds (cameras.json "render"), and the rest (ICT head and
texture, identity embedding, manifest). Measured figures are listed at the end of this docstring.

Measured (2-core VM shared with ~5 other agents' jobs, load average 8–12 during the run, bpy 5.0.1, Cycles on CPU):
- one ICT-FaceKit head, 512 px, 32 samples, 1 worker: 1651 s wall per sequence; the render 1632 s (17.0 s per
  view), the rest (head mesh and 1024² texture, Blender start, identity embedding, manifest) about 20 s.
  At 128 px, 2–4 samples the same sequence renders in 11–13 s (tests/dataset). On an idle machine or with
  `--device gpu` expect far less; run this again there before quoting a figure.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _data import SHARED, SHARED_MODELS, use_shared_ict


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--scan", action="store_true", help="add the Lee Perry-Smith scan")
    p.add_argument("--out", help="dataset folder (default: a temporary one)")
    a = p.parse_args()
    use_shared_ict()
    out = Path(a.out or tempfile.mkdtemp(prefix="hf-dataset-bench-"))
    src = Path(tempfile.mkdtemp(prefix="hf-dataset-src-"))
    if a.scan:
        lps = SHARED / "data/heads/lee_perry_smith"
        (src / "LeePerrySmith_textured.glb").symlink_to(lps / "LeePerrySmith_textured.glb")
        (src / "LeePerrySmith_License.txt").symlink_to(lps / "LeePerrySmith_License.txt")
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "headforge.backend", "--json", "dataset", "build", str(src), "-o",
                           str(out), "--size", str(a.size), "--samples", str(a.samples), "--ict", "1",
                           "--workers", str(a.workers), "--device", a.device, "--models-root", str(SHARED_MODELS)],
                          capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        return 1
    man = json.loads((out / "manifest.json").read_text())
    n = len(man["sequences"])
    print(f"{n} sequence(s) at {a.size} px, {a.samples} samples, {a.workers} worker(s): {wall:.1f} s wall, "
          f"{wall / n:.1f} s per sequence")
    for s in man["sequences"]:
        render = json.loads((out / s["id"] / "views" / "cameras.json").read_text())["render"]
        meta = json.loads((out / s["id"] / "meta.json").read_text())
        print(f"  {s['id']}: render {render['total_seconds']} s on {render['device']} "
              f"({render['total_seconds'] / 96:.2f} s/view); "
              f"identity {meta['identity_model']}: {meta['identity_note']}")
    print(f"dataset: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
