"""Instant mode on scikit-image's astronaut: `headforge run PHOTO --mode instant` in a fresh process, timed.

    .venv/bin/python benchmarks/instant_mode.py [--runs 3] [--photo PATH] [--several [--size 512]]

Prints the wall time of the whole command (process start, imports, input → face → rig), each stage's time,
the landmark reprojection error (RMS, % of the inter-ocular distance) and the masked PSNR of the rig rendered
from the fitted camera against the photo (face skin only); saves the side-by-side as instant_front.png.

--several: three photos of one person instead (`headforge run a.png b.png c.png`): the Lee Perry-Smith scan
photographed at yaw 0 and ±60° by benchmarks/complete_head.py (--size px), timed beside the yaw-0 photo alone.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_data.py, also when loaded by path
from _data import use_shared_ict  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--photo")
    p.add_argument("--several", action="store_true")
    p.add_argument("--size", type=int, default=512)
    args = p.parse_args(argv)
    use_shared_ict()  # the `headforge run` subprocesses inherit it
    tmp = Path(tempfile.mkdtemp(prefix="hf-instant-"))
    if args.several:
        return several(tmp, args.runs, args.size)
    photo = args.photo
    if photo is None:
        from PIL import Image
        from skimage import data

        photo = tmp / "astronaut.jpg"
        Image.fromarray(data.astronaut()).save(photo, quality=95)
    exe = Path(sys.executable).with_name("headforge")
    walls = []
    for r in range(args.runs):
        job = tmp / f"job{r}"
        t = time.time()
        subprocess.run([str(exe), "--json", "run", str(photo), "-o", str(job), "--mode", "instant"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.time() - t)
        rec = json.loads((job / "job.json").read_text())
        stages = {k: v["seconds"] for k, v in rec["stages"].items()}
        print(f"run {r}: {walls[-1]:.1f} s wall; stages {stages}")
    from headforge.backend.rig.evaluate import photo_consistency

    rig = json.loads((job / "rig" / "rig.json").read_text())
    pc = photo_consistency(job)
    from PIL import Image

    Image.fromarray((np.concatenate([pc["photo"], pc["render"]], 1) * 255).astype(np.uint8)).save(
        tmp / "instant_front.png")
    print(f"instant mode: wall median {np.median(walls):.1f} s (min {min(walls):.1f}); landmark reprojection "
          f"error {100 * rig['fit']['reprojection_error_iod']:.2f}% of the inter-ocular distance "
          f"({rig['fit']['landmarks']}); masked PSNR of the front render {pc['psnr_db']:.2f} dB over "
          f"{pc['pixels']} px; picture: {tmp / 'instant_front.png'}")


def several(tmp: Path, runs: int, size: int) -> None:
    """Three photos (LPS at yaw 0, +60°, −60°) against the first alone, `runs` times each, interleaved."""
    from PIL import Image

    from complete_head import load_lps, make_photo

    lps = load_lps()
    photos = []
    for yaw in (0, 60, -60):
        photos.append(tmp / f"lps_{yaw:+d}.png")
        Image.fromarray((make_photo(lps, size, yaw)[0] * 255).round().astype(np.uint8)).save(photos[-1])
    exe = Path(sys.executable).with_name("headforge")
    walls = {1: [], 3: []}
    for r in range(runs):
        for n in (3, 1):
            job = tmp / f"job{n}_{r}"
            t = time.time()
            subprocess.run([str(exe), "--json", "run", *map(str, photos[:n]), "-o", str(job), "--mode", "instant"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            walls[n].append(time.time() - t)
            rec = json.loads((job / "job.json").read_text())
            print(f"run {r}, {n} photo(s): {walls[n][-1]:.1f} s wall; stages "
                  f"{ {k: v['seconds'] for k, v in rec['stages'].items()} }")
    print(f"Lee Perry-Smith at {size} px: three photos wall median {np.median(walls[3]):.1f} s (min "
          f"{min(walls[3]):.1f}), the first photo alone {np.median(walls[1]):.1f} s (min {min(walls[1]):.1f})")


if __name__ == "__main__":
    main()
