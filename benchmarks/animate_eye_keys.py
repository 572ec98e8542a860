"""Learn the video tracker's gaze/lid regressor (backend/animate/eye_keys.py) from synthetic performances.

Writes backend/animate/data/eye_keys.npz. The clips are those benchmarks/animate_eye.py learns the blinks from
(benchmarks/animate_correspondence.py's make_clip: our rig driven by random expressions with squints, wide eyes,
gaze, blinks and head turns, several identities, Blender's Workbench at 640×480; never the facecap capture the
benchmark scores); a clip named held* or orb_* (the 4th identity) is held out, every other trains. For every
frame with a face: each eye's patch and contour (eye_keys.eye_features), the eye's true eyeWide, eyeLook* and
eyeSquint the target, and the landmark fit's own values (track.fit_landmarks without the model, no smoothing)
that the pixels' estimate is blended with; the ridge and each key's blend are chosen on the held-out clips after
the tracker's smoothing (0.5). `--test` folders are only scored, after the choice.

    python benchmarks/animate_eye_keys.py --clips DIR [DIR ...] [--test DIR ...] [--work DIR]

The shipped model (2026-12-07): see eye_keys.py and benchmarks/animate.py's docstring for the figures.
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


def smoother(strength: float = 0.5, fps: float = 30.0):
    """The tracker's One-Euro smoothing of the eye keys' channels, as a (T, 2, K) → (T, 2, K) callable."""
    from headforge.backend.animate.eye_keys import KEYS, SIDES
    from headforge.backend.animate.take import Take
    from headforge.backend.animate.track import smooth_take

    names = tuple(k + s for s in SIDES for k in KEYS)

    def smooth(w):
        take = Take(times=np.arange(len(w)) / fps, names=names, weights=w.reshape(len(w), -1), fps=fps)
        return smooth_take(take, strength).weights.reshape(w.shape)
    return smooth


def clip_keys(pkl: Path, work: Path):
    """(features (T, 2, F), truth (T, 2, K), the fit's values (T, 2, K), found (T,)) of a make_clip clip, cached
    in `work`."""
    from headforge.backend.animate.eye_keys import eye_features, key_columns
    from headforge.backend.animate.track import fit_landmarks
    from headforge.backend.headmodel.arkit import ARKIT_52

    cache = work / f"keys_{pkl.parent.name}_{pkl.stem}.npz"
    if cache.is_file():
        z = np.load(cache)
        return z["feats"], z["truth"], z["fit"], z["found"]
    patches, _, found, _ = clip_data(pkl, work / f"{pkl.parent.name}_{pkl.stem}.npz")
    with open(pkl, "rb") as fh:
        d = pickle.load(fh)
    T = len(found)
    cols = key_columns(ARKIT_52)
    truth = d["take"].arkit_weights()[:T][:, cols]
    info = dict(d["info"], eye_patches=patches)
    fit = fit_landmarks(d["times"][:T], d["marks"][:T], info, smoothing=0.0, eye_keys_model=None).arkit_weights()
    rows = np.flatnonzero(found)
    X = eye_features(patches[rows], np.stack([d["marks"][i][:, :2] for i in rows]))
    feats = np.zeros((T, 2, X.shape[-1]), np.float32)
    feats[rows] = X
    np.savez_compressed(cache, feats=feats, truth=truth, fit=fit[:, cols], found=found)
    return feats, truth, fit[:, cols], found


def score(model, clips, smooth) -> dict:
    """Per-key mean |error| (over clips and eyes) of the fit and of the model's blend, after `smooth`."""
    from headforge.backend.animate.eye_keys import KEYS

    fit_err, new_err = np.zeros(len(KEYS)), np.zeros(len(KEYS))
    for feats, truth, fit, found in clips:
        rows = np.flatnonzero(found)
        est = model.predict_features(feats[rows].reshape(-1, feats.shape[-1])).reshape(len(rows), 2, -1)
        w = fit.copy()
        w[rows] = model.blend * est + (1 - model.blend) * fit[rows]
        fit_err += np.abs(smooth(fit) - truth).mean(axis=(0, 1)) / len(clips)
        new_err += np.abs(smooth(w) - truth).mean(axis=(0, 1)) / len(clips)
    return {k: (round(float(a), 3), round(float(b), 3)) for k, a, b in zip(KEYS, fit_err, new_err)}


def train_and_save(argv, doc: str, load, module, save, score, smoother) -> int:
    """The command line of the pixel-key learners (this file, animate_brow_keys.py): `load(pkl, work)` a clip's
    data, `module.train` on the training clips choosing on the held-out ones (held*, orb_*) after `smoother()`'s
    smoothing, `score` printed for the held-out and --test clips, `save(model, path)` to --out or
    module.MODEL_FILE."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--clips", nargs="+", required=True, help="folders of make_clip clips (NAME.pkl + NAME.mp4)")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "hf-anim-eye"))
    ap.add_argument("--test", nargs="*", default=[], help="folders of clips only scored (not trained on nor chosen by)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    use_shared_ict()
    os.environ.setdefault("GLOG_minloglevel", "2")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    clips = lambda dirs: sorted({p for d in dirs for p in Path(d).glob("*.pkl") if p.with_suffix(".mp4").is_file()})  # noqa: E731
    pkls = clips(args.clips)
    held = [p for p in pkls if p.stem.startswith(("held", "orb_"))]
    tr = [p for p in pkls if p not in held]
    print("training clips:", [p.stem for p in tr], "\nheld out:", [p.stem for p in held], flush=True)
    data = {p: load(p, work) for p in pkls}
    smooth = smoother()
    model, _ = module.train([data[p] for p in tr], [data[p] for p in held], smooth=smooth)
    print("held out, per key (fit → model):", score(model, [data[p] for p in held], smooth))
    tests = clips(args.test)
    if tests:
        print(f"test clips {[p.stem for p in tests]}, per key (fit → model):",
              score(model, [load(p, work) for p in tests], smooth))
    print("wrote", save(model, Path(args.out or module.MODEL_FILE)))
    return 0


def main(argv=None) -> int:
    from headforge.backend.animate import eye_keys

    return train_and_save(argv, __doc__, clip_keys, eye_keys, eye_keys.save_eye_keys_model, score, smoother)


if __name__ == "__main__":
    sys.exit(main())
