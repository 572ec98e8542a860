"""Learn the video tracker's brow regressor (backend/animate/brow_keys.py) from synthetic performances.

Writes backend/animate/data/brow_keys.npz. The clips are those benchmarks/animate_eye.py and animate_eye_keys.py
learn from (benchmarks/animate_correspondence.py's make_clip: our rig driven by random expressions, several
identities, Blender's Workbench at 640×480; never the facecap capture the benchmark scores); a clip named held* or
orb_* (the 4th identity) is held out, every other trains. For every frame with a face: the brow patch cut along
MediaPipe's outer eye corners (the landmarks cached in the clip's pickle, the pixels decoded again from its MP4)
and its mirror, the true brow keys the target, and the landmark fit's own values (track.fit_landmarks without the
model, no smoothing) that the pixels' estimate is blended with; the ridge and each key's blend are chosen on the
held-out clips after the tracker's smoothing (0.5). `--test` folders are only scored, after the choice.

    python benchmarks/animate_brow_keys.py --clips DIR [DIR ...] [--test DIR ...] [--work DIR]

The shipped model (2026-12-07): see brow_keys.py and benchmarks/animate.py's docstring for the figures.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import use_shared_ict  # noqa: E402
from animate_eye import clip_data  # noqa: E402


def brow_patches(mp4: Path, marks) -> np.ndarray:
    """(T, BROW_H, BROW_W) uint8 brow patches of a video whose landmarks are known (zeros where there is no face)."""
    from headforge.backend.animate.brow_keys import BROW_H, BROW_W, brow_patch
    from headforge.backend.animate.track import video_frames

    out = np.zeros((len(marks), BROW_H, BROW_W), np.uint8)
    frames = video_frames(mp4)
    next(frames)
    for i, (_, rgb) in enumerate(frames):
        if i >= len(marks):
            break
        if marks[i] is not None:
            out[i] = brow_patch(rgb, marks[i])
    frames.close()
    return out


def clip_brows(pkl: Path, work: Path):
    """(features (T, F), mirrored features (T, F), truth (T, K), the fit's values (T, K), found (T,)) of a
    make_clip clip, cached in `work`."""
    from headforge.backend.animate.brow_keys import KEYS, features
    from headforge.backend.animate.track import fit_landmarks
    from headforge.backend.headmodel.arkit import ARKIT_52

    cache = work / f"brows_{pkl.parent.name}_{pkl.stem}.npz"
    if cache.is_file():
        z = np.load(cache)
        return z["feats"], z["feats_m"], z["truth"], z["fit"], z["found"]
    eyes, _, found, _ = clip_data(pkl, work / f"{pkl.parent.name}_{pkl.stem}.npz")
    with open(pkl, "rb") as fh:
        d = pickle.load(fh)
    T = len(found)
    cols = [ARKIT_52.index(k) for k in KEYS]
    patches = brow_patches(pkl.with_suffix(".mp4"), d["marks"][:T])
    info = dict(d["info"], eye_patches=eyes)
    fit = fit_landmarks(d["times"][:T], d["marks"][:T], info, smoothing=0.0, brow_model=None).arkit_weights()
    feats, feats_m = np.zeros((2, T, features(patches[:1]).shape[1]), np.float32)
    feats[found], feats_m[found] = features(patches[found]), features(patches[found], mirror=True)
    truth = d["take"].arkit_weights()[:T][:, cols]
    np.savez_compressed(cache, feats=feats, feats_m=feats_m, truth=truth, fit=fit[:, cols], found=found,
                        patches=patches)
    return feats, feats_m, truth, fit[:, cols], found


def smoother(strength: float = 0.5, fps: float = 30.0):
    """The tracker's One-Euro smoothing of the brow keys' channels, as a (T, K) → (T, K) callable."""
    from headforge.backend.animate.brow_keys import KEYS
    from headforge.backend.animate.take import Take
    from headforge.backend.animate.track import smooth_take

    return lambda w: smooth_take(Take(times=np.arange(len(w)) / fps, names=KEYS, weights=w, fps=fps),
                                 strength).weights


def score(model, clips, smooth) -> dict:
    """Per-key mean |error| (over clips) of the fit and of the model's blend, after `smooth`."""
    from headforge.backend.animate.brow_keys import KEYS

    fit_err, new_err = np.zeros(len(KEYS)), np.zeros(len(KEYS))
    for feats, feats_m, truth, fit, found in clips:
        rows = np.flatnonzero(found)
        w = fit.copy()
        w[rows] = model.blend * model.predict_features(feats[rows], feats_m[rows]) + (1 - model.blend) * fit[rows]
        fit_err += np.abs(smooth(fit) - truth).mean(axis=0) / len(clips)
        new_err += np.abs(smooth(w) - truth).mean(axis=0) / len(clips)
    return {k: (round(float(a), 3), round(float(b), 3)) for k, a, b in zip(KEYS, fit_err, new_err)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", required=True, help="folders of make_clip clips (NAME.pkl + NAME.mp4)")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "hf-anim-eye"))
    ap.add_argument("--test", nargs="*", default=[], help="folders of clips only scored (not trained on nor chosen by)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    use_shared_ict()
    os.environ.setdefault("GLOG_minloglevel", "2")
    from headforge.backend.animate.brow_keys import MODEL_FILE, save_brow_keys_model, train

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pkls = sorted({p for d in args.clips for p in Path(d).glob("*.pkl") if p.with_suffix(".mp4").is_file()})
    held = [p for p in pkls if p.stem.startswith(("held", "orb_"))]
    tr = [p for p in pkls if p not in held]
    print("training clips:", [p.stem for p in tr], "\nheld out:", [p.stem for p in held], flush=True)
    data = {p: clip_brows(p, work) for p in pkls}
    smooth = smoother()
    model, _ = train([data[p] for p in tr], [data[p] for p in held], smooth=smooth)
    print("held out, per key (fit → model):", score(model, [data[p] for p in held], smooth))
    tests = sorted({p for d in args.test for p in Path(d).glob("*.pkl") if p.with_suffix(".mp4").is_file()})
    if tests:
        print(f"test clips {[p.stem for p in tests]}, per key (fit → model):",
              score(model, [clip_brows(p, work) for p in tests], smooth))
    print("wrote", save_brow_keys_model(model, Path(args.out or MODEL_FILE)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
