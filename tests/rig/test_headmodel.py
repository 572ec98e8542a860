"""ICT-FaceKit in the world frame, the ARKit-52 table, the MediaPipe correspondence, mesh helpers."""
import numpy as np
import pytest

from headforge.backend.headmodel import ARKIT_52, arkit_deltas, ict_to_arkit_name
from headforge.backend.headmodel.arkit import arkit_sources, arkit_to_ict_weights, ict_weights_to_arkit


def test_ict_world_frame_and_units(ict):
    v = ict.neutral
    lm = ict.landmarks_68
    # metres: outer eye corners 8.92 cm apart (README), nose tip frontmost (−Y), crown on top (+Z)
    assert np.linalg.norm(v[lm[36]] - v[lm[45]]) == pytest.approx(0.0892, abs=2e-4)
    assert v[lm[30], 1] == pytest.approx(v[:, 1].min(), abs=2e-4)
    assert v[:, 2].max() == pytest.approx(0.145, abs=1e-3)
    # +X is the subject's left: landmark 45 (subject's left outer eye corner) lies at +X
    assert v[lm[45], 0] > 0.03 and v[lm[36], 0] < -0.03
    assert v[ict.groups["eyeball_left"]][:, 0].mean() > 0.02


def test_arkit_names_exact_and_sided(ict):
    assert len(ARKIT_52) == 52 and len(set(ARKIT_52)) == 52
    for n in ("eyeBlinkLeft", "jawOpen", "mouthSmileLeft", "browInnerUp", "cheekPuff", "tongueOut",
              "mouthRollUpper", "noseSneerRight", "eyeLookInLeft", "mouthLowerDownRight"):
        assert n in ARKIT_52
    assert ict_to_arkit_name("eyeBlink_L") == "eyeBlinkLeft"
    assert ict_to_arkit_name("browInnerUp_R") == "browInnerUp"
    src = arkit_sources(ict.expression_names)
    assert set(src) == set(ARKIT_52) - {"tongueOut"}
    assert len(src["browInnerUp"]) == 2 and len(src["cheekPuff"]) == 2
    # ARKit weights → model coefficients → ARKit weights: the same values (tongueOut has no model shape)
    w = np.random.default_rng(0).uniform(0, 1, (3, 52))
    w[:, ARKIT_52.index("tongueOut")] = 0
    E = arkit_to_ict_weights(w, ict.expression_names)
    assert E.shape == (3, ict.n_expression)
    back = [ict_weights_to_arkit(e, ict.expression_names) for e in E]
    assert np.allclose([[b[n] for n in ARKIT_52] for b in back], w, atol=1e-12)
    D = arkit_deltas(ict)
    assert D.shape == (52, ict.n_vertices, 3)
    # Left = subject's left = +X
    for name in ("eyeBlinkLeft", "mouthSmileLeft", "browDownLeft", "cheekSquintLeft", "noseSneerLeft"):
        d = np.linalg.norm(D[ARKIT_52.index(name)], axis=1)
        assert (ict.neutral[:, 0] * d).sum() / d.sum() > 0.005, name
        d = np.linalg.norm(D[ARKIT_52.index(name.replace("Left", "Right"))], axis=1)
        assert (ict.neutral[:, 0] * d).sum() / d.sum() < -0.005, name
    # tongueOut pushes the tongue out in front of the lips (−Y)
    t = D[ARKIT_52.index("tongueOut")]
    lips_y = ict.neutral[ict.landmarks_68[62], 1]
    tip = (ict.neutral + t)[ict.groups["gums_and_tongue"]][:, 1].min()
    assert tip < lips_y - 0.003


def test_mediapipe_correspondence_lands_on_the_right_features(ict):
    from headforge.backend.fitting.correspondence import landmark_points, load_mediapipe_correspondence

    tri, bary = load_mediapipe_correspondence(ict)
    assert tri.shape == (478,) and np.allclose(bary.sum(1), 1, atol=1e-4) and (bary > -1e-4).all()
    p = landmark_points(ict, ict.neutral.astype(np.float64), tri, bary)
    lm = ict.neutral[ict.landmarks_68]
    # MediaPipe 4 = nose tip, 152 = chin, 33/263 = outer eye corners (subject's right/left), 13/14 = lips
    assert np.linalg.norm(p[4] - lm[30]) < 0.005
    assert np.linalg.norm(p[152] - lm[8]) < 0.01
    assert np.linalg.norm(p[33] - lm[36]) < 0.007 and np.linalg.norm(p[263] - lm[45]) < 0.007
    assert abs(p[13, 0]) < 0.003 and abs(p[14, 0]) < 0.003
    # iris centres sit on the eyeballs, one each side
    assert p[468, 0] < -0.02 and p[473, 0] > 0.02


def test_closest_point_on_mesh_matches_brute_force(ict):
    from headforge.backend.fitting.geometry import SurfaceQuery, closest_point_on_triangles

    rng = np.random.default_rng(0)
    F = ict.faces[ict.groups["face"].max() > ict.faces.max(1)][:400]
    V = ict.neutral.astype(np.float64)
    q = SurfaceQuery(V, F, k=len(F))
    pts = V[F[:20, 0]] + rng.normal(0, 0.003, (20, 3))
    c, d, t = q.closest(pts)
    tri = V[F]
    for i in range(20):
        all_c = closest_point_on_triangles(np.repeat(pts[i:i + 1], len(F), 0), tri[:, 0], tri[:, 1], tri[:, 2])
        assert d[i] == pytest.approx(np.linalg.norm(all_c - pts[i], axis=1).min(), abs=1e-9)


def test_rasterizer_covers_a_square_exactly():
    from headforge.backend.render.raster import rasterize

    xy = np.array([[2.0, 2.0], [12.0, 2.0], [12.0, 12.0], [2.0, 12.0]])
    tid, bary, z = rasterize(xy, np.array([1.0, 1.0, 2.0, 2.0]), np.array([[0, 1, 2], [0, 2, 3]]), 16, 16)
    assert (tid >= 0).sum() == 11 * 11
    assert np.allclose(bary[tid >= 0].sum(-1), 1, atol=1e-5)
    assert z[7, 7] == pytest.approx(1.5, abs=1e-5)
