"""Carry ICT-FaceKit's ARKit shapes onto another head topology (FLAME, or any face mesh in the world frame):
fit ICT to the target's neutral surface, then give every target vertex the shape offsets of its closest point
on the fitted ICT surface (rotated and scaled into the target)."""
from __future__ import annotations

import numpy as np

from ..fitting.correspondence import load_mediapipe_correspondence
from ..fitting.fit3d import fit_3d, sample_surface
from ..fitting.geometry import SurfaceQuery, barycentric
from ..fitting.landmarks import MP_FACE_OVAL
from ..headmodel import arkit_deltas, load_ict
from ..headmodel.parts import visible_faces


def transfer_arkit(target_verts: np.ndarray, target_faces: np.ndarray, target_landmarks: np.ndarray | None = None,
                   ict=None) -> tuple[np.ndarray, dict]:
    """target (V, 3) world metres, faces (F, 3); `target_landmarks` (478, 3) MediaPipe points on it when known.
    → (deltas (52, V, 3), info)."""
    ict = ict or load_ict()
    rng = np.random.default_rng(0)
    pts, nrm = sample_surface(target_verts, target_faces, 6000, rng)
    tri, bary = load_mediapipe_correspondence(ict)
    if target_landmarks is not None:
        use = np.isfinite(target_landmarks).all(axis=1)
        use[list(MP_FACE_OVAL)] = False
        fit = fit_3d(ict, landmarks=target_landmarks[use], landmark_tri=tri[use], landmark_bary=bary[use],
                     surface=pts, surface_normals=nrm, iterations=10)
    else:
        fit = fit_3d(ict, surface=pts, surface_normals=nrm, iterations=10, init=(1.0, np.eye(3), np.zeros(3)))
    shaped = fit.transform(ict.vertices(fit.identity, fit.expression))
    F = ict.faces[visible_faces(ict)]
    cp, dist, ti = SurfaceQuery(shaped, F).closest(target_verts)
    f = F[ti]
    b = barycentric(cp, shaped[f])
    D = arkit_deltas(ict)  # (52, V_ict, 3) in ICT's model frame
    deltas = np.einsum("vk,nvkc->nvc", b, D[:, f]) * fit.scale @ fit.R.T  # into the target frame
    return deltas.astype(np.float32), {"ict_scale": fit.scale, "mean_distance_m": float(dist.mean())}
