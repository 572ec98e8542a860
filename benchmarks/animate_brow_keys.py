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

import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from animate_eye import clip_data, clip_patches  # noqa: E402
from animate_eye_keys import train_and_save  # noqa: E402


def clip_brows(pkl: Path, work: Path):
    """(features (T, F), mirrored features (T, F), truth (T, K), the fit's values (T, K), found (T,)) of a
    make_clip clip, cached in `work`."""
    from headforge.backend.animate.brow_keys import BROW_H, BROW_W, KEYS, brow_patch, features
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
    patches = clip_patches(pkl.with_suffix(".mp4"), d["marks"][:T], brow_patch, (BROW_H, BROW_W))
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
    from headforge.backend.animate import brow_keys

    return train_and_save(argv, __doc__, clip_brows, brow_keys, brow_keys.save_brow_keys_model, score,
                          smoother)


if __name__ == "__main__":
    sys.exit(main())
