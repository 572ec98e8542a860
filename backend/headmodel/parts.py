"""Facts about a head model's parts (its vertex groups) that rendering, texturing and fitting share: which groups
are helper shells never drawn, where the eyeballs' centres are, and the default colours of the parts."""
from __future__ import annotations

import numpy as np

SKIN_RGB = (0.85, 0.66, 0.55)
HIDDEN_GROUPS = ("lacrimal_fluid_left", "lacrimal_fluid_right", "eye_blend_left", "eye_blend_right",
                 "eye_occlusion_left", "eye_occlusion_right", "eyelashes_left", "eyelashes_right")
# (ICT's eyelashes are alpha-textured cards: drawn opaque they read as black bands; the skin texture carries
# the lash line instead.)


def eye_colours(model, verts: np.ndarray, iris_rgb=(0.3, 0.2, 0.12),
                sclera_rgb=(0.92, 0.9, 0.88), iris_deg: float = 33.0) -> dict[str, np.ndarray]:
    """Per-vertex colours of each eyeball (sclera, iris, pupil by angle from the eye's forward axis −Y); the
    iris is a cap of half-angle `iris_deg`, the pupil 0.4 of it."""
    out = {}
    for side in ("left", "right"):
        g = f"eyeball_{side}"
        if g not in model.groups:
            continue
        idx = model.groups[g]
        p = verts[idx]
        c = eye_centre(p)
        d = (p - c) / np.maximum(np.linalg.norm(p - c, axis=1, keepdims=True), 1e-12)
        cosang = -d[:, 1]  # forward is −Y
        col = np.tile(np.asarray(sclera_rgb, np.float64), (len(idx), 1))
        col[cosang > np.cos(np.radians(iris_deg))] = iris_rgb
        col[cosang > np.cos(np.radians(0.4 * iris_deg))] = (0.03, 0.03, 0.03)
        out[g] = col
    return out


def eye_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere centre (3,) of eyeball points (N, 3): |p|² = 2 p·c + (r² − |c|²)."""
    A = np.concatenate([2 * points, np.ones((len(points), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(A, (points**2).sum(axis=1), rcond=None)
    return sol[:3]


def eye_height(model, vertices: np.ndarray | None = None) -> float:
    """Height z (m) of the two eyeballs' centres, averaged, on `vertices` (default the mean neutral head): the
    hairline's and the scalp's reference."""
    v = model.neutral if vertices is None else vertices
    return float((eye_centre(v[model.groups["eyeball_left"]])[2] + eye_centre(v[model.groups["eyeball_right"]])[2]) / 2)


def visible_faces(model) -> np.ndarray:
    """Triangles worth rendering (the transparent helper shells ICT carries are left out): (F',) indices."""
    keep = np.ones(model.n_vertices, bool)
    for g in HIDDEN_GROUPS:
        if g in model.groups:
            keep[model.groups[g]] = False
    return np.nonzero(np.all(keep[model.faces], axis=1))[0]


def vertex_albedo(model, verts: np.ndarray, skin=SKIN_RGB) -> np.ndarray:
    alb = np.tile(np.asarray(skin, np.float64), (model.n_vertices, 1))
    for g, col in eye_colours(model, verts).items():
        alb[model.groups[g]] = col
    for g in ("eyelashes_left", "eyelashes_right"):
        if g in model.groups:
            alb[model.groups[g]] = 0.08
    for g, col in (("mouth_socket", (0.35, 0.12, 0.12)), ("gums_and_tongue", (0.7, 0.35, 0.35)),
                   ("teeth", (0.9, 0.88, 0.8))):
        if g in model.groups:
            alb[model.groups[g]] = col
    return alb
