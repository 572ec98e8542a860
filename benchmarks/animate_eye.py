"""Learn the video tracker's eye-openness regressor (backend/animate/eye_openness.py) from synthetic performances.

Writes backend/animate/data/eye_openness.npz. The clips are the ones benchmarks/animate_correspondence.py renders
(make_clip: our rig driven by random expressions with squints, wide eyes, gaze, blinks of 3-6 frames and head
turns, several identities, Blender's Workbench at 640×480; never the facecap capture the benchmark scores) and
any more made the same way; a clip named held* or orb_* (the 4th identity) is held out, every other trains.
For every frame with a face: each eye's patch cut along MediaPipe's corners (the landmarks cached in the clip's
pickle, the pixels decoded again from its MP4), the eye's true eyeBlink weight the target; a ridge regression
whose strength is chosen on the held-out clips (most blinks found within ±1 frame, then the least eyeBlink error).

    python benchmarks/animate_eye.py --clips DIR [DIR ...] [--held NAME ...] [--test DIR ...] [--work DIR]

The shipped model (2026-12-07): `--clips` the folders of animate_correspondence.py's clips (9 training clips of 3
identities, 5,000 eyes; held out: held, held_dense, orb_m30, orb_p30), ridge 0.01 chosen (held out 20 of 30
blinks found within a frame, 1 false, eyeBlink MAE 0.099); figures in the tracker and on the capture in
benchmarks/animate.py's docstring.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.animate.ground_truth
sys.path.insert(0, str(Path(__file__).resolve().parent))

def clip_patches(mp4: Path, marks, cut=None, shape=None) -> np.ndarray:
    """(T, *shape) uint8 patches `cut(rgb, landmarks)` of a video whose landmarks are known (zeros where there is
    no face); by default each eye's patch as eye_openness cuts it, (T, 2, h, w)."""
    from headforge.backend.animate.eye_openness import PATCH_H, PATCH_W, eye_patches
    from headforge.backend.animate.track import video_frames

    cut, shape = cut or eye_patches, shape or (2, PATCH_H, PATCH_W)
    out = np.zeros((len(marks), *shape), np.uint8)
    frames = video_frames(mp4)
    next(frames)
    for i, (_, rgb) in enumerate(frames):
        if i >= len(marks):
            break
        if marks[i] is not None:
            out[i] = cut(rgb, marks[i])
    frames.close()
    return out


def clip_data(pkl: Path, cache: Path | None = None):
    """(patches (T, 2, h, w), true eyeBlink (T, 2) in eye_openness.EYES order, found (T,), eye widths (T, 2) px,
    NaN where no face) of a make_clip clip."""
    from headforge.backend.animate.eye_openness import EYES, eye_widths
    from headforge.backend.headmodel.arkit import ARKIT_52

    if cache is not None and cache.is_file():
        z = np.load(cache)
        if "widths" in z.files:
            return z["patches"], z["truth"], z["found"], z["widths"]
    with open(pkl, "rb") as fh:
        d = pickle.load(fh)
    A = d["take"].arkit_weights()
    T = min(len(A), len(d["marks"]))
    truth = np.stack([A[:T, ARKIT_52.index(n)] for n in EYES], 1)
    found = np.array([m is not None for m in d["marks"][:T]])
    widths = np.array([eye_widths(m) if m is not None else np.full(2, np.nan) for m in d["marks"][:T]])
    patches = clip_patches(pkl.with_suffix(".mp4"), d["marks"][:T])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, patches=patches, truth=truth, found=found, widths=widths)
    return patches, truth, found, widths


def main(argv=None) -> int:
    from headforge.backend.animate.eye_openness import MODEL_FILE, evaluate, save_eye_model, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", required=True, help="folders of make_clip clips (NAME.pkl + NAME.mp4)")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "hf-anim-eye"))
    ap.add_argument("--held", nargs="*", default=[], help="more clips (by name) held out to choose the ridge on")
    ap.add_argument("--test", nargs="*", default=[], help="folders of clips only scored (not trained on nor chosen by)")
    ap.add_argument("--out", default=str(MODEL_FILE))
    args = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    pkls = sorted({p for d in args.clips for p in Path(d).glob("*.pkl") if p.with_suffix(".mp4").is_file()})
    held = [p for p in pkls if p.stem.startswith(("held", "orb_")) or p.stem in args.held]
    tr = [p for p in pkls if p not in held]
    print("training clips:", [p.stem for p in tr], "\nheld out:", [p.stem for p in held])
    work = Path(args.work)
    data = {p: clip_data(p, work / f"{p.parent.name}_{p.stem}.npz") for p in pkls}
    model, _ = train([data[p][:3] for p in tr], [data[p][:3] for p in held])
    model.info["eye_px_min"] = float(np.nanpercentile(np.concatenate([data[p][3].ravel() for p in tr]), 1))
    print(f"training eyes at least {model.info['eye_px_min']:.1f} px wide (1st percentile)")
    for p in held:
        ev = evaluate(model, [data[p][:3]])
        print(f"  {p.stem}: {ev['found']}/{ev['blinks']} found, {ev['false']} false, MAE {ev['mae']:.3f}")
    tests = sorted({p for d in args.test for p in Path(d).glob("*.pkl") if p.with_suffix(".mp4").is_file()})
    if tests:
        ev = evaluate(model, [clip_data(p, work / f"{p.parent.name}_{p.stem}.npz")[:3] for p in tests])
        print(f"test clips {[p.stem for p in tests]}: {ev['found']}/{ev['blinks']} found, {ev['false']} false, "
              f"MAE {ev['mae']:.3f}")
    print("wrote", save_eye_model(model, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
