"""Apple's 52 ARKit blendshape names and their construction from a head model's expression shapes.

`Left` is the subject's own left, +X in the world frame (ICT's `_L` shapes lie at +X as well, so
`eyeBlink_L` → `eyeBlinkLeft`). ICT splits `browInnerUp` and `cheekPuff` into halves: they are summed.
ICT has no tongue shape: `tongueOut` is built from the tongue region (see `tongue_out_delta`).
"""
from __future__ import annotations

import numpy as np

# Apple's ARFaceAnchor.BlendShapeLocation, in Apple's documentation order, spelled exactly as Apple does.
ARKIT_52: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)
assert len(ARKIT_52) == 52 and len(set(ARKIT_52)) == 52


def ict_to_arkit_name(ict_name: str) -> str:
    """`eyeBlink_L` → `eyeBlinkLeft`, `browInnerUp_R` → `browInnerUp` (a half), `jawOpen` → `jawOpen`."""
    if ict_name.endswith("_L") or ict_name.endswith("_R"):
        base, side = ict_name[:-2], ict_name[-1]
        if base in ARKIT_52:  # a split shape whose ARKit key is unsided
            return base
        return base + ("Left" if side == "L" else "Right")
    return ict_name


def arkit_sources(expression_names: list[str]) -> dict[str, list[int]]:
    """ARKit name → indices of the model expressions that sum to it (tongueOut is absent: it is built)."""
    out: dict[str, list[int]] = {}
    for i, n in enumerate(expression_names):
        a = ict_to_arkit_name(n)
        if a in ARKIT_52:
            out.setdefault(a, []).append(i)
    return out


def ict_weights_to_arkit(expression: np.ndarray, expression_names: list[str]) -> dict[str, float]:
    """Model expression coefficients (E,) → ARKit weights (split halves averaged), for reports."""
    src = arkit_sources(expression_names)
    return {n: float(np.mean([expression[i] for i in src[n]])) if n in src else 0.0 for n in ARKIT_52}


def arkit_to_ict_weights(arkit: np.ndarray, expression_names: list[str]) -> np.ndarray:
    """ARKit weights (..., 52) in ARKIT_52's order → model expression coefficients (..., E): each model shape takes
    its ARKit key's weight (both halves of a split shape the whole weight); tongueOut has no model shape."""
    arkit = np.asarray(arkit, np.float64)
    out = np.zeros(arkit.shape[:-1] + (len(expression_names),))
    for e, n in enumerate(expression_names):
        a = ict_to_arkit_name(n)
        if a in ARKIT_52:
            out[..., e] = arkit[..., ARKIT_52.index(a)]
    return out


def tongue_vertices(model, neutral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights) of the tongue within the gums/tongue region: the part that follows the jaw and lies
    away from the teeth. Weights ramp from 0 at the root to 1 at the tip (front, −Y)."""
    from scipy.spatial import cKDTree

    if "gums_and_tongue" not in model.groups or "teeth" not in model.groups:
        return np.zeros(0, np.int64), np.zeros(0)
    gt, teeth = model.groups["gums_and_tongue"], model.groups["teeth"]
    jaw = model.expression_basis[model.expression_names.index("jawOpen")][gt]
    moves = np.linalg.norm(jaw, axis=1)
    d, _ = cKDTree(neutral[teeth]).query(neutral[gt])
    sel = (moves > 0.5 * moves.max()) & (d > 0.004)  # metres: 4 mm clear of any tooth
    idx = gt[sel]
    y = neutral[idx, 1]
    tip = (y.max() - y) / max(y.max() - y.min(), 1e-9)  # 0 root (back, +Y) … 1 tip (front, −Y)
    return idx.astype(np.int64), np.clip(tip, 0.0, 1.0) ** 1.5


def tongue_out_delta(model, neutral: np.ndarray, jaw_open_delta: np.ndarray, reach_m: float = 0.03) -> np.ndarray:
    """`tongueOut` (V, 3): the jaw a third open and the tongue pushed forward (−Y) up to `reach_m` at its tip,
    lifted slightly so it clears the lower lip."""
    delta = 0.35 * jaw_open_delta.astype(np.float64)
    idx, w = tongue_vertices(model, neutral)
    if len(idx):
        delta[idx] += np.outer(w, [0.0, -reach_m, 0.15 * reach_m])
    return delta


def arkit_deltas(model, neutral: np.ndarray | None = None) -> np.ndarray:
    """The 52 ARKit shapes (52, V, 3) of `model`, in ARKIT_52 order, as offsets from its Basis."""
    neutral = model.neutral if neutral is None else neutral
    src = arkit_sources(model.expression_names)
    V = model.n_vertices
    out = np.zeros((52, V, 3), np.float32)
    for k, name in enumerate(ARKIT_52):
        if name == "tongueOut":
            out[k] = tongue_out_delta(model, neutral, out[ARKIT_52.index("jawOpen")])
        elif name in src:
            out[k] = model.expression_basis[src[name]].sum(axis=0)
        else:
            raise KeyError(f"{model.name} has no expression shape for ARKit {name!r}")
    return out
