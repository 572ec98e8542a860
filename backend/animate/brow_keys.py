"""The brows read from the pixels: a small learned regressor for browInnerUp and the brows' other keys.

The landmark fit tracks the brows at a fraction of their amplitude (benchmarks/animate.py: front browInnerUp
r = 0.97 with std 0.11 against the capture's 0.41; the fit's prior shrinks the weak keys and MediaPipe's brow
points carry 3-6 px of systematic offset). The brow region's pixels show the raised inner brows and the forehead's
folds directly, so, as for the eyes (eye_openness.py, eye_keys.py):
1. one patch over both brows (BROW_W × BROW_H) cut in the frame of the two outer eye corners (MediaPipe 33 and
   263: the x axis along them, scale their distance, so the brows' own motion is not normalised away), centred
   BROW_CENTRE eye-spans from the corners' midpoint, brightness and contrast normalised;
2. features: HOG of the patch (OpenCV) and the normalised patch at half size;
3. a ridge regression (numpy) from the features to KEYS, learned on synthetic renders of our rig (the clips the
   eye models learn from, benchmarks/animate_brow_keys.py; never the facecap capture the benchmark scores), with
   each patch also mirrored (its left and right keys swapped) — in training as more samples, in use as the mean of
   the patch's and its mirror's estimates;
4. per key, the tracker's value becomes blend × pixels + (1 − blend) × the fit's, the blend (0, ½ or 1) and the
   ridge chosen on held-out clips of another identity (a key the pixels do not help keeps blend 0).
The model ships as data/brow_keys.npz, checked on load (coded errors for a missing or altered file). Measured only
on renders of one renderer and painted texture (held-out and fresh identities, and the facecap capture rendered the
same way: benchmarks/animate.py's docstring); how it reads a real person's brows, hair and lighting is not measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .eye_openness import ridge_fit
from .model_file import load_model_file, save_model_file

MODEL_FILE = Path(__file__).resolve().parent / "data" / "brow_keys.npz"
KEYS = ("browInnerUp", "browOuterUpLeft", "browOuterUpRight", "browDownLeft", "browDownRight")
MIRROR = (0, 2, 1, 4, 3)  # KEYS' order in a mirrored patch
EYE_CORNERS = (33, 263)  # MediaPipe's outer eye corners, image left to right in a frontal face
BROW_W, BROW_H = 64, 24  # pixels of the patch
BROW_CENTRE = (0.0, -0.33)  # the patch's centre from the corners' midpoint, in eye spans (x along, y down)
BROW_SPAN = (1.30, 0.49)  # its width and height in eye spans
_HOG = cv2.HOGDescriptor((BROW_W, BROW_H), (16, 12), (8, 6), (8, 6), 9)
BLENDS = (0.0, 0.5, 1.0)
RIDGES = (0.1, 0.3, 1.0)
FEATURES_VERSION = 1


def brow_patch(rgb: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """(BROW_H, BROW_W) uint8: the brows of one RGB (or grey) frame with its 478 landmarks."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    a, b = (np.asarray(marks[k, :2], np.float64) for k in EYE_CORNERS)
    ex = b - a
    w = float(np.linalg.norm(ex))
    if not np.isfinite(w) or w < 1.0:
        return np.zeros((BROW_H, BROW_W), np.uint8)
    ex /= w
    ey = np.array([-ex[1], ex[0]])
    if ey[1] < 0:
        ey = -ey
    centre = (a + b) / 2 + BROW_CENTRE[0] * w * ex + BROW_CENTRE[1] * w * ey
    M = np.array([[BROW_SPAN[0] * w / BROW_W * ex[0], BROW_SPAN[1] * w / BROW_H * ey[0], 0.0],
                  [BROW_SPAN[0] * w / BROW_W * ex[1], BROW_SPAN[1] * w / BROW_H * ey[1], 0.0]])
    M[:, 2] = centre - (BROW_W - 1) / 2 * M[:, 0] - (BROW_H - 1) / 2 * M[:, 1]
    return cv2.warpAffine(grey, M, (BROW_W, BROW_H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def features(patches: np.ndarray, mirror: bool = False) -> np.ndarray:
    """(n, F) float64 features of (n, BROW_H, BROW_W) uint8 patches (mirrored left-right first if `mirror`)."""
    out = []
    for p in np.asarray(patches):
        x = (p[:, ::-1] if mirror else p).astype(np.float64)
        z = (x - x.mean()) / max(x.std(), 2.0)
        u8 = np.clip(128.0 + 40.0 * z, 0, 255).astype(np.uint8)
        small = cv2.resize(z, (BROW_W // 2, BROW_H // 2), interpolation=cv2.INTER_AREA).ravel()
        out.append(np.concatenate([_HOG.compute(u8).astype(np.float64).ravel(), small]))
    return np.asarray(out, np.float64).reshape(len(out), -1)


@dataclass
class BrowKeysModel:
    """Ridge regression from `features` to KEYS, the mean of a patch's and its mirror's estimates, clipped to
    [0, 1]; `blend` (len(KEYS),) the pixels' share of each key in the tracker."""
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (F, K)
    bias: np.ndarray  # (K,)
    blend: np.ndarray  # (K,)
    info: dict = field(default_factory=dict)

    def _linear(self, X: np.ndarray) -> np.ndarray:
        Z = (X - self.mean) / self.scale
        # one row at a time (a fixed summation order: the same figures under any BLAS thread count)
        return np.array([[float(np.dot(z, c)) for c in self.coef.T] for z in Z]).reshape(len(Z), -1) + self.bias

    def predict_features(self, X: np.ndarray, Xm: np.ndarray) -> np.ndarray:
        """(n, K) estimates from the features of (n) patches and of their mirrors."""
        return np.clip((self._linear(X) + self._linear(Xm)[:, list(MIRROR)]) / 2, 0.0, 1.0)

    def predict(self, patches: np.ndarray) -> np.ndarray:
        """(n, K) estimates of KEYS from (n, BROW_H, BROW_W) patches."""
        if len(patches) == 0:
            return np.zeros((0, len(KEYS)))
        return self.predict_features(features(patches), features(patches, mirror=True))

    def apply(self, weights: np.ndarray, names, rows: np.ndarray, patches: np.ndarray) -> None:
        """Blend the pixels' estimates into `weights` (T, len(names)) in place at `rows` (those patches' frames)."""
        if not len(rows) or not self.blend.any():
            return
        est = self.predict(patches)
        names = list(names)
        for j, k in enumerate(KEYS):
            b = float(self.blend[j])
            if b > 0:
                c = names.index(k)
                weights[rows, c] = b * est[:, j] + (1.0 - b) * weights[rows, c]


def train(train_clips, held_clips, ridges=RIDGES, blends=BLENDS, smooth=None, log=print):
    """The model from clips [(features (T, F), mirrored features (T, F), truth (T, K), the fit's values (T, K),
    found (T,))]: per ridge, each key's blend chosen by its held-out error (mean over clips, after `smooth`, a
    callable (T, K) → (T, K) such as the tracker's smoothing); then the ridge with the least held-out error over
    the keys. → (model, {ridge: per-key table})."""
    X = np.vstack([np.vstack([c[0][c[4]], c[1][c[4]]]) for c in train_clips])
    Y = np.vstack([np.vstack([c[2][c[4]], c[2][c[4]][:, list(MIRROR)]]) for c in train_clips])
    smooth = smooth or (lambda a: a)
    best, tables = None, {}
    for ridge in ridges:
        mean, scale, coef, bias = ridge_fit(X, Y, ridge)
        model = BrowKeysModel(mean=mean, scale=scale, coef=coef, bias=bias, blend=np.zeros(len(KEYS)))
        err = np.zeros((len(blends), len(KEYS)))
        for feats, feats_m, truth, fit, found in held_clips:
            rows = np.flatnonzero(found)
            est = model.predict_features(feats[rows], feats_m[rows])
            for a, b in enumerate(blends):
                w = fit.copy()
                w[rows] = b * est + (1 - b) * fit[rows]
                err[a] += np.abs(smooth(w) - truth).mean(axis=0) / len(held_clips)
        pick = err.argmin(0)
        model.blend = np.array([blends[a] for a in pick], np.float64)
        total = float(err[pick, np.arange(len(KEYS))].mean())
        tables[ridge] = {"fit": err[0].round(4).tolist(), "blend": model.blend.tolist(), "mean": total,
                         "chosen": err[pick, np.arange(len(KEYS))].round(4).tolist()}
        log(f"ridge {ridge:g}: held out per key (fit → chosen blend): " + ", ".join(
            f"{k} {err[0, j]:.3f} → {err[pick[j], j]:.3f} (×{blends[pick[j]]:g})" for j, k in enumerate(KEYS)))
        if best is None or total < best[0]:
            best = (total, ridge, model)
    total, ridge, model = best
    model.info.update(ridge=float(ridge), train_rows=int(len(X)), heldout_mae_keys=total,
                      heldout_mae_fit=float(np.mean(tables[ridge]["fit"])))
    log(f"chosen: ridge {ridge:g}, blends {dict(zip(KEYS, model.blend.tolist()))} ({len(X)} training patches "
        f"with their mirrors)")
    return model, tables


_ARRAYS = ("mean", "scale", "coef", "bias", "blend")


def save_brow_keys_model(model: BrowKeysModel, path: Path = MODEL_FILE) -> Path:
    """Write the model (float32) with a digest of its arrays, so an altered file is refused on load."""
    return save_model_file(path, {k: getattr(model, k) for k in _ARRAYS},
                           {"features_version": np.int32(FEATURES_VERSION), "keys": np.array(KEYS),
                            "patch": np.array([BROW_W, BROW_H], np.int32)}, model.info)


def load_brow_keys_model(path: Path = MODEL_FILE) -> BrowKeysModel:
    """The shipped brow model; AnimationError animate.brow_keys_model_missing / animate.brow_keys_model_invalid."""
    F = features(np.zeros((1, BROW_H, BROW_W), np.uint8)).shape[1]
    a, _, info = load_model_file(
        path, _ARRAYS, what="brow model", code="animate.brow_keys_model",
        hint="Reinstall HeadForge, or re-make the file with benchmarks/animate_brow_keys.py.",
        check=lambda a, d: (int(d["features_version"]) == FEATURES_VERSION and tuple(d["keys"].tolist()) == KEYS
                            and tuple(d["patch"]) == (BROW_W, BROW_H)
                            and a["mean"].shape == a["scale"].shape == (F,) and a["coef"].shape == (F, len(KEYS))
                            and a["bias"].shape == a["blend"].shape == (len(KEYS),)
                            and (a["scale"] > 0).all() and ((a["blend"] >= 0) & (a["blend"] <= 1)).all()))
    return BrowKeysModel(**a, info=info)
