"""FLAME from a user's pickle without chumpy: a small synthetic file in FLAME's format (chumpy arrays, SciPy
sparse regressor, Python-2 pickle protocol), evaluation with LBS + pose correctives, refusals."""
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp

from headforge.backend.errors import ModelMissingError
from headforge.backend.headmodel.flame import flame_pose, load_flame, read_flame_pickle


class _Ch:  # pickled under the name chumpy.ch.Ch, as FLAME's files are
    def __init__(self, x):
        self.x = x


def _sphere_head(n_lat=12, n_lon=16, r=0.1):
    """A UV sphere in FLAME's frame (+Y up, face +Z, metres): (V, 3), (F, 3)."""
    verts = [[0, r, 0]]
    for i in range(1, n_lat):
        th = np.pi * i / n_lat
        for j in range(n_lon):
            ph = 2 * np.pi * j / n_lon
            verts.append([r * np.sin(th) * np.sin(ph), r * np.cos(th), r * np.sin(th) * np.cos(ph)])
    verts.append([0, -r, 0])
    V = len(verts)
    faces = [[0, 1 + (j + 1) % n_lon, 1 + j] for j in range(n_lon)]
    for i in range(n_lat - 2):
        for j in range(n_lon):
            a, b = 1 + i * n_lon + j, 1 + i * n_lon + (j + 1) % n_lon
            faces += [[a, b, b + n_lon], [a, b + n_lon, a + n_lon]]
    faces += [[V - 1, 1 + (n_lat - 2) * n_lon + j, 1 + (n_lat - 2) * n_lon + (j + 1) % n_lon] for j in range(n_lon)]
    return np.array(verts, np.float64), np.array(faces, np.int64)


def write_synthetic_flame(path, n_shape=20, seed=0, joints=5, tamper=False):
    """A FLAME-format pickle: v_template, f, shapedirs (chumpy), posedirs, J_regressor (csc), weights, kintree."""
    rng = np.random.default_rng(seed)
    v, f = _sphere_head()
    V = len(v)
    y = v[:, 1]
    # joints: root at the base, neck below the centre, jaw in front-low, eyes at ±X front-high
    anchors = np.array([[0, -0.1, 0], [0, -0.05, 0], [0, -0.02, 0.03], [0.03, 0.03, 0.08], [-0.03, 0.03, 0.08]])
    d = np.linalg.norm(v[:, None] - anchors[None, :joints], axis=2)
    Jreg = np.exp(-((d / 0.03) ** 2))
    Jreg /= Jreg.sum(axis=0, keepdims=True)
    weights = np.zeros((V, joints))
    weights[:, 0] = (y < -0.07)
    weights[:, 1] = (y >= -0.07) & (y < -0.03)
    weights[:, 2] = (y >= -0.03) & (v[:, 2] > 0.02) & (y < 0.0)
    if joints >= 5:
        weights[:, 3] = (d[:, 3] < 0.02)
        weights[:, 4] = (d[:, 4] < 0.02)
    weights[weights.sum(1) == 0, min(1, joints - 1)] = 1
    weights /= weights.sum(1, keepdims=True)
    shapedirs = rng.normal(0, 0.002, (V, 3, n_shape + 100))
    posedirs = rng.normal(0, 0.0005, (V, 3, 9 * (joints - 1)))
    kintree = np.array([[4294967295, 0, 1, 1, 1][:joints], list(range(joints))], np.int64)
    data = {"v_template": v, "f": f.astype(np.uint32), "shapedirs": _Ch(shapedirs), "posedirs": posedirs,
            "J_regressor": sp.csc_matrix(Jreg.T), "weights": weights, "kintree_table": kintree,
            "bs_style": "lbs", "bs_type": "lrotmin"}
    if tamper:
        data["evil"] = types.SimpleNamespace  # a global no FLAME file holds
    fake = types.ModuleType("chumpy.ch")
    fake.Ch = _Ch
    _Ch.__module__, _Ch.__qualname__ = "chumpy.ch", "Ch"
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = fake
    try:
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]
    return data, shapedirs, posedirs


def test_reads_chumpy_pickle_without_chumpy(tmp_path):
    p = tmp_path / "flame_synthetic.pkl"
    data, shapedirs, _ = write_synthetic_flame(p)
    assert "chumpy" not in sys.modules
    raw = read_flame_pickle(p)
    assert np.array_equal(raw["shapedirs"], shapedirs)
    assert raw["J_regressor"].shape == (5, len(data["v_template"]))
    m = load_flame(p)
    assert m.n_identity == 20 and m.n_expression == 100 and m.pose_correctives.shape[0] == 36
    # FLAME (+Y up, face +Z) → world (+Z up, face −Y): the top of the sphere is +Z, the front −Y
    assert m.neutral[:, 2].argmax() == 0
    assert m.joint_names[3] == "eye_L" and (m.joint_regressor @ m.neutral)[3, 0] > 0
    # the linear shape model matches the file's shapedirs
    a = np.zeros(20)
    a[3] = 1.5
    from headforge.backend.headmodel.frames import yup_to_world

    expect = yup_to_world(data["v_template"] + 1.5 * shapedirs[:, :, 3])
    assert np.allclose(m.vertices(identity=a), expect, atol=1e-6)


def test_lbs_and_pose_correctives(tmp_path):
    p = tmp_path / "flame_synthetic.pkl"
    _, _, posedirs = write_synthetic_flame(p)
    m = load_flame(p)
    rest = m.neutral.astype(np.float64)
    posed, joints = flame_pose(m, rest, np.zeros((5, 3)))
    assert np.allclose(posed, rest, atol=1e-12)
    # a jaw rotation moves only jaw-weighted vertices (plus the correctives), about the jaw joint
    pose = np.zeros((5, 3))
    pose[2] = [0.3, 0, 0]
    posed, joints = flame_pose(m, rest, pose)
    jaw = m.skin_weights[:, 2] > 0.99
    other = m.skin_weights[:, 2] == 0
    from headforge.backend.headmodel.flame import rodrigues

    R = rodrigues(np.array([0.3, 0, 0]))
    feat = np.concatenate([np.zeros(9), (R - np.eye(3)).ravel(), np.zeros(18)])
    corr = np.tensordot(feat, m.pose_correctives, axes=1)
    J = (m.joint_regressor @ rest)[2]
    expect = (rest + corr - J) @ R.T + J
    assert np.allclose(posed[jaw], expect[jaw], atol=1e-9)
    assert np.allclose(posed[other], (rest + corr)[other], atol=1e-9)


def test_wrong_version_and_tampered_files_are_refused(tmp_path):
    p = tmp_path / "smpl_like.pkl"
    write_synthetic_flame(p, joints=3)
    with pytest.raises(ModelMissingError) as e:
        load_flame(p)
    assert e.value.code == "model.flame_bad_version" and "5 joints" in e.value.message
    p = tmp_path / "tampered.pkl"
    write_synthetic_flame(p, tamper=True)
    with pytest.raises(ModelMissingError) as e:
        load_flame(p)
    assert e.value.code == "model.flame_tampered"
    p = tmp_path / "truncated.pkl"
    write_synthetic_flame(p)
    p.write_bytes(p.read_bytes()[:1000])
    with pytest.raises(ModelMissingError) as e:
        load_flame(p)
    assert e.value.code == "model.flame_tampered"
    with pytest.raises(ModelMissingError) as e:
        load_flame(tmp_path / "absent.pkl")
    assert e.value.code == "model.flame_missing"


def write_flame_from_ict(path, ict, n_shape=10):
    """A FLAME-format pickle whose head is ICT-FaceKit's (face, head, eyes): a face MediaPipe can find, with
    FLAME's five joints and skinning; expression space = ICT's 53 shapes padded to 100."""
    from headforge.backend.headmodel.frames import YUP_TO_WORLD
    from headforge.backend.rig.build import build_rig

    keep = np.concatenate([ict.groups[g] for g in ("face", "head_and_neck", "eye_socket_left", "eye_socket_right",
                                                   "eyeball_left", "eyeball_right")])
    keep = np.unique(keep)
    remap = -np.ones(ict.n_vertices, np.int64)
    remap[keep] = np.arange(len(keep))
    faces = remap[ict.faces]
    faces = faces[(faces >= 0).all(axis=1)]
    to_flame = lambda a: np.asarray(a, np.float64) @ YUP_TO_WORLD  # world → +Y up (metres)  # noqa: E731
    v = to_flame(ict.neutral[keep])
    V = len(v)
    shapedirs = np.zeros((V, 3, n_shape + 100))
    for k in range(n_shape):
        shapedirs[:, :, k] = to_flame(ict.identity_basis[k][keep])
    for k in range(ict.n_expression):
        shapedirs[:, :, n_shape + k] = to_flame(ict.expression_basis[k][keep])
    rig = build_rig(ict, np.zeros(1))
    W = rig.weights[keep]  # root, neck, head, jaw, eye_L, eye_R
    weights = np.stack([W[:, 0] + W[:, 1], W[:, 2], W[:, 3], W[:, 4], W[:, 5]], axis=1)
    Jreg = np.zeros((5, V))
    world_v = ict.neutral[keep].astype(np.float64)
    for j, target in enumerate([rig.joints[1], rig.joints[2], rig.joints[3], rig.joints[4], rig.joints[5]]):
        near = np.argsort(np.linalg.norm(world_v - target, axis=1))[:1]
        Jreg[j, near] = 1.0
    data = {"v_template": v, "f": faces.astype(np.uint32), "shapedirs": _Ch(shapedirs),
            "posedirs": np.zeros((V, 3, 36)), "J_regressor": sp.csc_matrix(Jreg), "weights": weights,
            "kintree_table": np.array([[4294967295, 0, 1, 1, 1], [0, 1, 2, 3, 4]], np.int64)}
    fake = types.ModuleType("chumpy.ch")
    fake.Ch = _Ch
    _Ch.__module__, _Ch.__qualname__ = "chumpy.ch", "Ch"
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = types.ModuleType("chumpy"), fake
    try:
        with open(path, "wb") as fh:
            pickle.dump(data, fh, protocol=2)
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]


def test_flame_rig_from_a_photo(tmp_path, ict, astronaut_path, gltf_validator):
    """FLAME in instant mode: MediaPipe correspondence computed on renders of the FLAME file, photo fit, ARKit
    keys carried over from ICT, FLAME's joints and weights, a valid glb."""
    from PIL import Image

    from headforge.backend.fitting.landmarks import mediapipe_478
    from headforge.backend.headmodel import ARKIT_52
    from headforge.backend.rig.gltf import write_rig_glb
    from headforge.backend.rig.photo_rig import rig_from_photo

    p = tmp_path / "flame_from_ict.pkl"
    write_flame_from_ict(p, ict)
    m = load_flame(p)
    photo = np.asarray(Image.open(astronaut_path).convert("RGB"))
    analysis = {"image_size": [512, 512], "face": {"landmarks_478": mediapipe_478(photo).tolist(),
                                                    "landmarks_68": None}}
    rig, atlas, fit, lm, info = rig_from_photo(m, photo, analysis)
    assert atlas is None and (tmp_path / "flame_from_ict.pkl.mediapipe478.npz").is_file()
    print(f"FLAME-format head on the astronaut: landmark error {100 * fit.error_iod:.2f}% IOD, "
          f"ARKit transfer mean distance {1000 * rig.extras['transfer']['mean_distance_m']:.2f} mm")
    assert fit.error_iod < 0.05
    assert tuple(rig.key_names) == ARKIT_52
    jo = rig.deltas[ARKIT_52.index("jawOpen")]
    assert -jo[:, 2].min() > 0.01  # the transferred jawOpen lowers the chin by more than 1 cm
    bl = np.linalg.norm(rig.deltas[ARKIT_52.index("eyeBlinkLeft")], axis=1)
    assert bl[rig.basis[:, 0] > 0.01].max() > 0.004 and bl[rig.basis[:, 0] < -0.01].max() < 0.001
    out = tmp_path / "flame_rig.glb"
    write_rig_glb(out, rig, None)
    report = gltf_validator(out)
    assert report["errors"] == 0, report["messages"]
