"""How closed each eye is, read from the eye's pixels: a small learned regressor for the video tracker's blinks.

The landmark fit cannot close the lids (benchmarks/animate.py: MediaPipe's upper-lid contour stays on the eyeball
and its crease points stay put, so a blink reads ~0.3 where the eye is shut). The pixels show it plainly, so:
1. each eye's patch is cut out of the frame in a frame of its own, set by MediaPipe's two eye corners (the
   corner-to-corner line is the x axis, outer corner on the left, so the right eye is mirrored onto the left
   eye's layout and both share one model), at a fixed size, brightness and contrast normalised. Across, the patch
   spans 1.6 of the eye's own width; down, 1.2 of the wider eye's width, so that the far eye of a turned face,
   narrowed by the turn but not shortened, is not stretched tall (held out: 18 → 20 of 30 blinks found, false
   ones 2 → 1, at 30-45° turns 3 → 5 of 11);
2. features: HOG of the patch (OpenCV) and the normalised patch itself at half size;
3. a ridge regression (numpy) from the features to the eye's ARKit eyeBlink weight, learned on synthetic
   renders of our rig (benchmarks/animate_eye.py: random expressions with squints, wide eyes, gaze, blinks and
   head turns, several identities; never the facecap capture the benchmark scores). Renders of eyes at least
   `info["eye_px_min"]` wide (the smallest 1 % of the training eyes) taught it; the tracker uses it on faces whose
   median eye is at least 0.8× that, and keeps the fit's eyeBlink on smaller ones.
The model ships as data/eye_openness.npz (9 kB), checked on load (coded errors for a missing or altered file).
Measured only on renders of the same renderer and painted texture (benchmarks/animate.py's docstring: held-out
identities and the facecap capture); how it reads a real person's lids, lashes and lighting is not measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .model_file import load_model_file, save_model_file

MODEL_FILE = Path(__file__).resolve().parent / "data" / "eye_openness.npz"
PATCH_W, PATCH_H = 32, 24  # pixels of an eye patch
SPAN_X, SPAN_Y = 1.6, 1.2  # the patch's width and height in eye widths (corner to corner)
# MediaPipe's (outer, inner) eye corners of the subject's left and right eye (the left eye is on the image's
# right in a camera's unmirrored picture)
CORNERS = {"eyeBlinkLeft": (263, 362), "eyeBlinkRight": (33, 133)}
EYES = tuple(CORNERS)
_HOG = cv2.HOGDescriptor((PATCH_W, PATCH_H), (16, 12), (8, 6), (8, 6), 9)
FEATURES_VERSION = 2  # 2: the patch's height from the wider eye
RIDGES = (0.01, 0.03, 0.1, 0.3)  # the strengths benchmarks/animate_eye.py chooses from


def eye_patch(grey: np.ndarray, outer: np.ndarray, inner: np.ndarray, height_ref: float | None = None) -> np.ndarray:
    """(PATCH_H, PATCH_W) uint8: the eye between these two corners (x, y pixels) of a grey image, outer corner on
    the patch's left, the image's down its down; its height SPAN_Y × `height_ref` pixels (default: the eye's
    width)."""
    ex = np.asarray(inner, np.float64) - np.asarray(outer, np.float64)
    w = float(np.linalg.norm(ex))
    if not np.isfinite(w) or w < 1.0:
        return np.zeros((PATCH_H, PATCH_W), np.uint8)
    ex /= w
    ey = np.array([-ex[1], ex[0]])
    if ey[1] < 0:
        ey = -ey
    s = SPAN_X * w / PATCH_W  # image pixels per patch pixel across
    sy = SPAN_Y * (height_ref or w) / PATCH_H  # and down
    mid = (np.asarray(outer, np.float64) + np.asarray(inner, np.float64)) / 2
    cu, cv = (PATCH_W - 1) / 2, (PATCH_H - 1) / 2
    M = np.array([[s * ex[0], sy * ey[0], 0.0], [s * ex[1], sy * ey[1], 0.0]])
    M[:, 2] = mid - cu * M[:, 0] - cv * M[:, 1]
    return cv2.warpAffine(grey, M, (PATCH_W, PATCH_H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def eye_patches(rgb: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """(2, PATCH_H, PATCH_W) uint8 patches of the two eyes (EYES order) of one RGB frame and its 478 landmarks."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
    ref = float(eye_widths(marks).max())
    return np.stack([eye_patch(grey, marks[o, :2], marks[i, :2], ref) for o, i in CORNERS.values()])


def eye_widths(marks: np.ndarray) -> np.ndarray:
    """(2,) corner-to-corner widths (pixels) of the two eyes (EYES order) in 478 landmarks."""
    return np.array([np.linalg.norm(marks[i, :2] - marks[o, :2]) for o, i in CORNERS.values()])


def features(patches: np.ndarray) -> np.ndarray:
    """(n, F) float64 features of (n, PATCH_H, PATCH_W) uint8 patches: HOG of the contrast-normalised patch and
    the normalised patch at half size."""
    out = []
    for p in np.asarray(patches):
        x = p.astype(np.float64)
        z = (x - x.mean()) / max(x.std(), 2.0)
        u8 = np.clip(128.0 + 40.0 * z, 0, 255).astype(np.uint8)
        hog = _HOG.compute(u8).astype(np.float64).ravel()
        small = cv2.resize(z, (PATCH_W // 2, PATCH_H // 2), interpolation=cv2.INTER_AREA).ravel()
        out.append(np.concatenate([hog, small]))
    return np.asarray(out, np.float64).reshape(len(out), -1)


@dataclass
class EyeModel:
    """Ridge regression from `features` to the eyeBlink weight: (x − mean) / scale · coef + bias."""
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (F,)
    bias: float
    info: dict

    def predict(self, patches: np.ndarray) -> np.ndarray:
        """(n,) eyeBlink estimates, clipped to [0, 1], of (n, PATCH_H, PATCH_W) patches."""
        if len(patches) == 0:
            return np.zeros(0)
        X = (features(patches) - self.mean) / self.scale
        # one row at a time (a fixed summation order: the same figures under any BLAS thread count)
        y = np.array([float(np.dot(x, self.coef)) for x in X]) + self.bias
        return np.clip(y, 0.0, 1.0)


def ridge_fit(X: np.ndarray, Y: np.ndarray, ridge: float):
    """(mean, scale, coef, bias) of a ridge regression of Y (N,) or (N, K) on standardised features (the intercept
    not penalised), `ridge` per sample, in X's precision; the tracker's pixel models (this one, eye_keys,
    brow_keys) all learn so."""
    mean = X.mean(0)
    scale = X.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    Z = (X - mean) / scale
    ym = Y.mean(0)
    coef = np.linalg.solve(Z.T @ Z + ridge * len(Z) * np.eye(Z.shape[1]), Z.T @ (Y - ym))
    return mean, scale, coef, ym


def fit_ridge(X: np.ndarray, y: np.ndarray, ridge: float) -> EyeModel:
    """The eyeBlink regressor by ridge_fit."""
    mean, scale, coef, bias = ridge_fit(np.asarray(X, np.float64), np.asarray(y, np.float64), ridge)
    return EyeModel(mean=mean, scale=scale, coef=coef, bias=float(bias), info={"ridge": float(ridge)})


# ---------------------------------------------------------------- learning (benchmarks/animate_eye.py)

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


def save_eye_model(model: EyeModel, path: Path = MODEL_FILE) -> Path:
    """Write the model (float32) with a digest of its arrays, so an altered file is refused on load."""
    return save_model_file(path, {k: getattr(model, k) for k in _ARRAYS},
                           {"features_version": np.int32(FEATURES_VERSION),
                            "patch": np.array([PATCH_W, PATCH_H], np.int32)}, model.info)


_ARRAYS = ("mean", "scale", "coef", "bias")


def load_eye_model(path: Path = MODEL_FILE) -> EyeModel:
    """The shipped eye-openness model; AnimationError animate.eye_model_missing / animate.eye_model_invalid."""
    F = features(np.zeros((1, PATCH_H, PATCH_W), np.uint8)).shape[1]
    a, _, info = load_model_file(
        path, _ARRAYS, what="eye-openness model", code="animate.eye_model",
        hint="Reinstall HeadForge, or re-make the file with benchmarks/animate_eye.py.",
        check=lambda a, d: (int(d["features_version"]) == FEATURES_VERSION and tuple(d["patch"]) == (PATCH_W, PATCH_H)
                            and a["mean"].shape == a["scale"].shape == a["coef"].shape == (F,)
                            and a["bias"].shape == () and (a["scale"] > 0).all()))
    return EyeModel(mean=a["mean"], scale=a["scale"], coef=a["coef"], bias=float(a["bias"]), info=info)
