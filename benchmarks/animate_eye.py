"""Learn the video tracker's eye-openness regressor (backend/animate/eye_openness.py) from synthetic performances.

Writes backend/animate/data/eye_openness.npz. The clips are the ones benchmarks/animate_correspondence.py renders
(make_clip: our rig driven by random expressions with squints, wide eyes, gaze, blinks of 3-6 frames and head
turns, several identities, Blender's Workbench at 640×480; never the facecap capture the benchmark scores) and
any more made the same way; a clip named held* or orb_* (the 4th identity) is held out, every other trains.
For every frame with a face: each eye's patch cut along MediaPipe's corners (the landmarks cached in the clip's
pickle, the pixels decoded again from its MP4), the eye's true eyeBlink weight the target; a ridge regression
whose strength is chosen on the held-out clips (most blinks found within ±1 frame, then the least eyeBlink error).

    python benchmarks/animate_eye.py --clips DIR [DIR ...] [--work DIR]

The shipped model (2026-12-07): see benchmarks/animate.py's docstring for the figures.
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

RIDGES = (0.01, 0.03, 0.1, 0.3)


def clip_patches(mp4: Path, marks) -> np.ndarray:
    """(T, 2, h, w) uint8 eye patches of a video whose landmarks are known (zeros where there is no face)."""
    from headforge.backend.animate.eye_openness import PATCH_H, PATCH_W, eye_patches
    from headforge.backend.animate.track import video_frames

    out = np.zeros((len(marks), 2, PATCH_H, PATCH_W), np.uint8)
    frames = video_frames(mp4)
    next(frames)
    for i, (_, rgb) in enumerate(frames):
        if i >= len(marks):
            break
        if marks[i] is not None:
            out[i] = eye_patches(rgb, marks[i])
    frames.close()
    return out


def clip_data(pkl: Path, cache: Path | None = None):
    """(patches (T, 2, h, w), true eyeBlink (T, 2) in eye_openness.EYES order, found (T,)) of a make_clip clip."""
    from headforge.backend.animate.eye_openness import EYES
    from headforge.backend.headmodel.arkit import ARKIT_52

    if cache is not None and cache.is_file():
        z = np.load(cache)
        return z["patches"], z["truth"], z["found"]
    with open(pkl, "rb") as fh:
        d = pickle.load(fh)
    A = d["take"].arkit_weights()
    T = min(len(A), len(d["marks"]))
    truth = np.stack([A[:T, ARKIT_52.index(n)] for n in EYES], 1)
    found = np.array([m is not None for m in d["marks"][:T]])
    patches = clip_patches(pkl.with_suffix(".mp4"), d["marks"][:T])
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, patches=patches, truth=truth, found=found)
    return patches, truth, found


def blink_hits(truth: np.ndarray, est: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int]:
    """(blinks found within ±1 frame, blinks in the truth, false blinks) of one eye's (T,) weights: a blink is
    where the weight rises through `threshold` (as the benchmark scores them)."""
    def onsets(w):
        above = w >= threshold
        return np.flatnonzero(above[1:] & ~above[:-1]) + 1

    on_g, on_t = onsets(truth), onsets(est)
    hit = sum(1 for o in on_g if len(on_t) and np.abs(on_t - o).min() <= 1)
    false = sum(1 for o in on_t if not len(on_g) or np.abs(on_g - o).min() > 1)
    return hit, len(on_g), false


def evaluate(model, clips) -> dict:
    """Blink hits / truth blinks / false blinks and the eyeBlink MAE over clips [(patches, truth, found)]."""
    hits = np.zeros(3, int)
    err = []
    for patches, truth, found in clips:
        est = np.zeros_like(truth)
        est[found] = model.predict(patches[found].reshape(-1, *patches.shape[2:])).reshape(-1, 2)
        for k in range(2):
            hits += blink_hits(truth[:, k], est[:, k])
            err.append(np.abs(truth[:, k] - est[:, k]).mean())
    return {"found": int(hits[0]), "blinks": int(hits[1]), "false": int(hits[2]), "mae": float(np.mean(err))}


def train(train_clips, held_clips, ridges=RIDGES, log=print):
    """The ridge model over every eye of the training clips, its strength chosen on the held-out ones (most
    blinks found, then fewest false, then the least MAE); → (model, [(ridge, held-out figures)])."""
    from headforge.backend.animate.eye_openness import features, fit_ridge

    X = np.vstack([features(p[f].reshape(-1, *p.shape[2:])) for p, _, f in train_clips])
    y = np.concatenate([t[f].reshape(-1) for _, t, f in train_clips])
    results = []
    for ridge in ridges:
        model = fit_ridge(X, y, ridge)
        ev = evaluate(model, held_clips)
        results.append((ridge, ev, model))
        log(f"ridge {ridge:g}: held out {ev['found']}/{ev['blinks']} blinks found (±1 frame), {ev['false']} false, "
            f"eyeBlink MAE {ev['mae']:.3f}")
    ridge, ev, model = max(results, key=lambda r: (r[1]["found"], -r[1]["false"], -r[1]["mae"]))
    model.info.update(ridge=float(ridge), train_patches=int(len(y)), heldout_mae=ev["mae"],
                      heldout_found=ev["found"], heldout_blinks=ev["blinks"], heldout_false=ev["false"])
    log(f"chosen: ridge {ridge:g} ({len(y)} training patches)")
    return model, [(r, e) for r, e, _ in results]


def main(argv=None) -> int:
    from headforge.backend.animate.eye_openness import MODEL_FILE, save_eye_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", required=True, help="folders of make_clip clips (NAME.pkl + NAME.mp4)")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "hf-anim-eye"))
    ap.add_argument("--out", default=str(MODEL_FILE))
    args = ap.parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    pkls = sorted({p for d in args.clips for p in Path(d).glob("*.pkl") if p.with_suffix(".mp4").is_file()})
    held = [p for p in pkls if p.stem.startswith(("held", "orb_"))]
    tr = [p for p in pkls if p not in held]
    print("training clips:", [p.stem for p in tr], "\nheld out:", [p.stem for p in held])
    work = Path(args.work)
    data = {p: clip_data(p, work / f"{p.parent.name}_{p.stem}.npz") for p in pkls}
    model, _ = train([data[p] for p in tr], [data[p] for p in held])
    for p in held:
        ev = evaluate(model, [data[p]])
        print(f"  {p.stem}: {ev['found']}/{ev['blinks']} found, {ev['false']} false, MAE {ev['mae']:.3f}")
    print("wrote", save_eye_model(model, Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
