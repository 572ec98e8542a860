"""3D fitting: a synthetic ICT head (random identity, sparse expression, similarity) from 3D landmarks and
surface samples, with outliers standing in for hair; similarity maths."""
import numpy as np
import pytest

from headforge.backend.fitting.fit3d import fit_3d, sample_surface, umeyama
from headforge.backend.fitting.photo import vertex_landmarks


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 3))
    from scipy.spatial.transform import Rotation

    R = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    dst = 1.7 * src @ R.T + [1, 2, 3]
    s, R2, t = umeyama(src, dst)
    assert s == pytest.approx(1.7) and np.allclose(R2, R) and np.allclose(t, [1, 2, 3])


def test_synthetic_head_from_landmarks_and_surface(ict):
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(11)
    a = rng.standard_normal(100)
    b = np.zeros(ict.n_expression)
    b[rng.choice(ict.n_expression, 3, replace=False)] = rng.uniform(0.3, 1.0, 3)
    s, R, t = 1.1, Rotation.from_rotvec([0.1, 0.4, -0.2]).as_matrix(), np.array([0.05, -0.2, 1.0])
    T = s * ict.vertices(a, b) @ R.T + t
    face = ict.face_region()
    inside = np.zeros(ict.n_vertices, bool)
    inside[face] = True
    ff = np.nonzero(np.all(inside[ict.faces], axis=1))[0]
    pts, nrm = sample_surface(T, ict.faces[ff], 3000, rng)
    # "hair": a cap of points 1–3 cm off the forehead that the model must not follow
    top = T[face][T[face] @ (R @ [0, 0, 1]) > np.percentile(T[face] @ (R @ [0, 0, 1]), 90)]
    hair = top[rng.choice(len(top), 400)] + (R @ [0, 0, 1]) * rng.uniform(0.01, 0.03, (400, 1)) * s
    tri, bary = vertex_landmarks(ict.landmarks_68, ict)
    fit = fit_3d(ict, landmarks=T[ict.landmarks_68], landmark_tri=tri, landmark_bary=bary,
                 surface=np.concatenate([pts, hair]), iterations=14)
    Vf = fit.transform(ict.vertices(fit.identity, fit.expression))
    rms = np.sqrt(((Vf[face] - T[face]) ** 2).sum(1).mean()) / s
    err = np.abs(fit.expression - b).mean()
    print(f"synthetic 3D fit: face RMS {1000 * rms:.3f} mm, expression error {err:.4f}")
    assert rms < 0.002
    assert err < 0.1
