"""Gaze and lid keys read from the eyes' pixels: a small learned regressor for the keys the landmark fit confounds.

The landmark fit cannot separate eyeWide from eyeLookDown (both move MediaPipe's upper-lid points, in opposite
directions) and reads the look keys at a fraction of their amplitude (benchmarks/animate.py). The iris's place
in the eye and the sclera above it show in the pixels, so, as for the blinks (eye_openness.py):
1. each eye's patch as eye_openness cuts it (the corner-to-corner frame, the right eye mirrored onto the left's
   layout) and its features (HOG + the normalised patch at half size), plus the eye's MediaPipe contour and
   iris centre in the same frame (17 points: x in eye widths, y in the wider eye's widths);
2. one eye's row is its own features followed by the other eye's (the two eyes look and widen together);
3. a ridge regression (numpy) from those to the eye's eyeWide, eyeLookDown/Up/In/Out and eyeSquint, learned on
   synthetic renders of our rig (benchmarks/animate_eye_keys.py: the clips eye_openness learned from, never the
   facecap capture the benchmark scores);
4. the exclusive pairs (eyeLookDown/Up, eyeLookIn/Out: an eye turns one way or the other) netted: the larger
   keeps the difference, the other 0 (held out the look keys 0.0996 → 0.0988; the facecap capture's eyes, which
   barely turn sideways, read In/Out 0.1-0.2 without it), where the held-out clips choose it;
5. per key, the tracker's value becomes blend × pixels + (1 − blend) × the fit's, the blend (0, ½ or 1) and the
   ridge chosen on held-out clips of another identity (the least held-out error after the tracker's smoothing;
   a key the pixels do not help keeps blend 0, so held out no key is worse than the fit's).
The model ships as data/eye_keys.npz, checked on load (coded errors for a missing or altered file). Like the
blink model it is measured only on renders of one renderer and painted texture (held-out identities, fresh
identities and the facecap capture rendered the same way, benchmarks/animate.py's docstring); how it reads a real
person's eyes is not measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .eye_openness import CORNERS, EYES, PATCH_H, PATCH_W, eye_widths, ridge_fit
from .eye_openness import features as patch_features
from .model_file import load_model_file, save_model_file

MODEL_FILE = Path(__file__).resolve().parent / "data" / "eye_keys.npz"
KEYS = ("eyeWide", "eyeLookDown", "eyeLookUp", "eyeLookIn", "eyeLookOut", "eyeSquint")  # per eye: + Left / Right
SIDES = tuple(n[len("eyeBlink"):] for n in EYES)  # ("Left", "Right"), eye_openness.EYES order
# each eye's MediaPipe contour (16 points, the two eyes in mirrored order) and its iris centre
CONTOUR = {"Left": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466, 473),
           "Right": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246, 468)}
PAIRS = ((1, 2), (3, 4))  # exclusive pairs in KEYS: eyeLookDown/Up, eyeLookIn/Out
BLENDS = (0.0, 0.5, 1.0)
RIDGES = (0.1, 0.3, 1.0)
FEATURES_VERSION = 1


def contour_features(marks: np.ndarray) -> np.ndarray:
    """(n, 2, 34) each eye's contour and iris centre (EYES order) in its patch's frame: origin between the
    corners, x along outer → inner corner in that eye's widths, y down in the wider eye's widths, of (n, 478, ≥2)
    landmarks."""
    M = np.asarray(marks, np.float64)[..., :2]
    ref = np.maximum(np.stack([eye_widths(m) for m in M]).max(1), 1.0)
    out = []
    for side, (o, i) in zip(SIDES, CORNERS.values()):
        ex = M[:, i] - M[:, o]
        w = np.maximum(np.linalg.norm(ex, axis=1, keepdims=True), 1.0)
        ex = ex / w
        ey = np.stack([-ex[:, 1], ex[:, 0]], 1)
        ey *= np.where(ey[:, 1:2] < 0, -1.0, 1.0)
        P = M[:, list(CONTOUR[side])] - (M[:, o] + M[:, i])[:, None] / 2
        out.append(np.hstack([np.einsum("tpk,tk->tp", P, ex) / w, np.einsum("tpk,tk->tp", P, ey) / ref[:, None]]))
    return np.stack(out, 1)


def eye_features(patches: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """(n, 2, F) rows of features, one per eye (EYES order), of (n, 2, PATCH_H, PATCH_W) patches and their frames'
    (n, 478, ≥2) landmarks: the eye's patch features and contour, then the other eye's."""
    patches = np.asarray(patches)
    n = len(patches)
    if n == 0:
        return np.zeros((0, 2, 2 * (patch_features(np.zeros((1, PATCH_H, PATCH_W), np.uint8)).shape[1] + 34)))
    own = np.concatenate([patch_features(patches.reshape(-1, PATCH_H, PATCH_W)).reshape(n, 2, -1),
                          contour_features(marks)], 2)
    return np.stack([np.concatenate([own[:, 0], own[:, 1]], 1), np.concatenate([own[:, 1], own[:, 0]], 1)], 1)


def key_columns(names) -> np.ndarray:
    """(2, len(KEYS)) columns of each eye's keys (EYES order) in a list of ARKit names."""
    names = list(names)
    return np.array([[names.index(k + s) for k in KEYS] for s in SIDES])


@dataclass
class EyeKeysModel:
    """Ridge regression from `eye_features` rows to KEYS: (x − mean) / scale · coef + bias, clipped to [0, 1];
    `blend` (len(KEYS),) the pixels' share of each key in the tracker; `paired` 1: PAIRS netted."""
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (F, K)
    bias: np.ndarray  # (K,)
    blend: np.ndarray  # (K,)
    paired: np.ndarray = field(default_factory=lambda: np.zeros(1))  # (1,): 1 nets PAIRS
    info: dict = field(default_factory=dict)

    def predict_features(self, X: np.ndarray) -> np.ndarray:
        """(n, K) key estimates of (n, F) feature rows."""
        Z = (np.asarray(X, np.float64) - self.mean) / self.scale
        # one row at a time (a fixed summation order: the same figures under any BLAS thread count)
        y = np.array([[float(np.dot(z, c)) for c in self.coef.T] for z in Z]).reshape(len(Z), -1) + self.bias
        if self.paired[0] > 0:
            for a, b in PAIRS:
                d = y[:, a] - y[:, b]
                y[:, a], y[:, b] = np.maximum(d, 0.0), np.maximum(-d, 0.0)
        return np.clip(y, 0.0, 1.0)

    def predict(self, patches: np.ndarray, marks: np.ndarray) -> np.ndarray:
        """(n, 2, K) estimates of each eye's KEYS (EYES order) from (n, 2, h, w) patches and (n, 478, ≥2) marks."""
        X = eye_features(patches, marks)
        return self.predict_features(X.reshape(-1, X.shape[-1])).reshape(len(X), 2, -1)

    def apply(self, weights: np.ndarray, names, rows: np.ndarray, patches: np.ndarray, marks: np.ndarray) -> None:
        """Blend the pixels' estimates into `weights` (T, len(names)) in place at `rows` (those patches' frames)."""
        if not len(rows) or not self.blend.any():
            return
        est = self.predict(patches, marks)
        cols = key_columns(names)
        for e in range(2):
            for j, c in enumerate(cols[e]):
                b = float(self.blend[j])
                if b > 0:
                    weights[rows, c] = b * est[:, e, j] + (1.0 - b) * weights[rows, c]


def train(train_clips, held_clips, ridges=RIDGES, blends=BLENDS, smooth=None, log=print):
    """The model from clips [(features (T, 2, F), truth (T, 2, K), the fit's values (T, 2, K), found (T,))]:
    per ridge and pairing (PAIRS netted or not), each key's blend chosen by its held-out error (mean over clips
    and eyes, after `smooth`, a callable (T, 2, K) → (T, 2, K) such as the tracker's smoothing, applied to every
    frame, with the fit's values where no face was found); then the ridge and pairing with the least held-out
    error over the keys. → (model, {(ridge, paired): per-key table})."""
    X = np.vstack([c[0][c[3]].reshape(-1, c[0].shape[-1]) for c in train_clips])
    Y = np.vstack([c[1][c[3]].reshape(-1, len(KEYS)) for c in train_clips])
    smooth = smooth or (lambda a: a)
    best, tables = None, {}
    for ridge, paired in ((r, p) for r in ridges for p in (0.0, 1.0)):
        mean, scale, coef, bias = ridge_fit(X, Y, ridge)
        model = EyeKeysModel(mean=mean, scale=scale, coef=coef, bias=bias, blend=np.zeros(len(KEYS)),
                             paired=np.array([paired]))
        err = np.zeros((len(blends), len(KEYS)))  # mean |error| per blend and key over held-out clips and eyes
        for feats, truth, fit, found in held_clips:
            rows = np.flatnonzero(found)
            est = model.predict_features(feats[rows].reshape(-1, feats.shape[-1])).reshape(len(rows), 2, -1)
            for a, b in enumerate(blends):
                w = fit.copy()
                w[rows] = b * est + (1 - b) * fit[rows]
                s = smooth(w.reshape(len(w), -1)).reshape(w.shape)
                err[a] += np.abs(s - truth).mean(axis=(0, 1)) / len(held_clips)
        pick = err.argmin(0)
        model.blend = np.array([blends[a] for a in pick], np.float64)
        total = float(err[pick, np.arange(len(KEYS))].mean())
        tables[(ridge, paired)] = {"fit": err[0].round(4).tolist(), "blend": model.blend.tolist(), "mean": total,
                                   "chosen": err[pick, np.arange(len(KEYS))].round(4).tolist()}
        log(f"ridge {ridge:g}, paired {paired:g}: held out per key (fit → chosen blend): " + ", ".join(
            f"{k} {err[0, j]:.3f} → {err[pick[j], j]:.3f} (×{blends[pick[j]]:g})" for j, k in enumerate(KEYS)))
        if best is None or total < best[0]:
            best = (total, ridge, paired, model)
    total, ridge, paired, model = best
    model.info.update(ridge=float(ridge), train_rows=int(len(X)), heldout_mae_keys=total,
                      heldout_mae_fit=float(np.mean(tables[(ridge, paired)]["fit"])))
    log(f"chosen: ridge {ridge:g}, paired {paired:g}, blends {dict(zip(KEYS, model.blend.tolist()))} "
        f"({len(X)} training eyes)")
    return model, tables


_ARRAYS = ("mean", "scale", "coef", "bias", "blend", "paired")


def save_eye_keys_model(model: EyeKeysModel, path: Path = MODEL_FILE) -> Path:
    """Write the model (float32) with a digest of its arrays, so an altered file is refused on load."""
    return save_model_file(path, {k: getattr(model, k) for k in _ARRAYS},
                           {"features_version": np.int32(FEATURES_VERSION), "keys": np.array(KEYS)}, model.info)


def load_eye_keys_model(path: Path = MODEL_FILE) -> EyeKeysModel:
    """The shipped gaze/lid model; AnimationError animate.eye_keys_model_missing / animate.eye_keys_model_invalid."""
    F = eye_features(np.zeros((1, 2, PATCH_H, PATCH_W), np.uint8), np.zeros((1, 478, 2))).shape[-1]
    a, _, info = load_model_file(
        path, _ARRAYS, what="eye-keys model", code="animate.eye_keys_model",
        hint="Reinstall HeadForge, or re-make the file with benchmarks/animate_eye_keys.py.",
        check=lambda a, d: (int(d["features_version"]) == FEATURES_VERSION and tuple(d["keys"].tolist()) == KEYS
                            and a["mean"].shape == a["scale"].shape == (F,) and a["coef"].shape == (F, len(KEYS))
                            and a["bias"].shape == a["blend"].shape == (len(KEYS),) and a["paired"].shape == (1,)
                            and (a["scale"] > 0).all() and ((a["blend"] >= 0) & (a["blend"] <= 1)).all()))
    return EyeKeysModel(**a, info=info)
