"""Training's data time per step: how long `ClipSource.draw` (backend/train/data.py) takes to give one clip from a
dataset with more sequences than its cache holds, at the dataset's full 512 px (stage 2 trains at 512 px, 16 frames),
so most draws meet a sequence not read yet, as in a real run over hundreds of heads.

    .venv/bin/python benchmarks/train_data.py [--sequences 12] [--draws 24] [--size 512] [--frames 16] [--data DIR]

The dataset is synthetic (backend/train/synthetic.py sphere heads, 96 RGBA views each), made once in --data (or a
temporary folder). Prints the mean and median seconds per draw and how many view images were decoded.

Measured (2-core VM shared with ~5 other agents' jobs; 12 synthetic sequences at 512 px, cache of 8 sequences,
24 draws of 16 frames, starts 0-4 and 12-15; stage 2 reads ring 1 at 512 px as `stage: high` trains, stage 1 all
rings at 256 px):
- before (a newly met sequence read whole, 96 views):  stage 2 0.916 s mean / 0.829 s median per draw, 48.0 images
  decoded per draw; stage 1 0.764 s / 0.544 s, 48.0 per draw.
- after (only the clip's views, read_views(indices=...)): stage 2 0.210 s / 0.024 s, 7.3 per draw; stage 1
  0.270 s / 0.269 s, 15.3 per draw.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from PIL import Image

from headforge.backend.train.data import ClipSource
from headforge.backend.train.synthetic import make_dataset


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sequences", type=int, default=12)
    ap.add_argument("--draws", type=int, default=24)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--data", help="dataset folder (made there when it has no manifest.json)")
    a = ap.parse_args(argv)
    root = Path(a.data or tempfile.mkdtemp(prefix="hf-train-data-"))
    if not (root / "manifest.json").is_file():
        t0 = time.perf_counter()
        ids = {f"s{i:02d}": ((0.3 + 0.05 * i % 0.6, 0.5, 0.4), 0.2 + 0.05 * i, "train") for i in range(a.sequences)}
        make_dataset(root, ids, size=a.size)
        print(f"made {a.sequences} sequences at {a.size} px in {time.perf_counter() - t0:.1f} s: {root}")
    decoded = [0]
    real_open = Image.open

    def counting_open(*args, **kw):
        decoded[0] += 1
        return real_open(*args, **kw)

    for label, res, rings, s1 in (("stage 2 (512 px, ring 1)", a.size, [1], a.size // 2),
                                  ("stage 1 (256 px, all rings)", a.size // 2, None, None)):
        src = ClipSource(root, "train", res, a.frames, [0, 1, 2, 3, 4, 12, 13, 14, 15], rings, s1)
        gen = torch.Generator().manual_seed(0)
        times = []
        decoded[0] = 0
        with mock.patch.object(Image, "open", counting_open):
            for _ in range(a.draws):
                t0 = time.perf_counter()
                src.draw(gen)
                times.append(time.perf_counter() - t0)
        print(f"{label}: {statistics.mean(times):.3f} s mean, {statistics.median(times):.3f} s median per draw, "
              f"{decoded[0]} images decoded in {a.draws} draws ({decoded[0] / a.draws:.1f} per draw)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
