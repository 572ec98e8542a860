"""The rigged head: shape-key sanity, bones and skin weights, the glb (Khronos validator) and Blender import."""
import numpy as np
import pytest

from headforge.backend.headmodel import ARKIT_52
from headforge.backend.rig.build import BONES, _rot, build_rig, skin_vertices


@pytest.fixture(scope="module")
def rig(ict):
    a = np.random.default_rng(3).standard_normal(40) * 0.7  # a real-sized, non-average person
    return build_rig(ict, a)


def _key(rig, name):
    return rig.deltas[ARKIT_52.index(name)].astype(np.float64)


def test_every_arkit_key_present_and_moves_something(rig):
    assert tuple(rig.key_names) == ARKIT_52
    moves = np.abs(rig.deltas).reshape(52, -1).max(axis=1)
    assert (moves > 1e-3).all(), [n for n, m in zip(ARKIT_52, moves) if m <= 1e-3]


def test_jaw_open_lowers_chin_and_keeps_cranium(ict, rig):
    d = _key(rig, "jawOpen")
    chin = ict.landmarks_68[8]
    assert -d[chin, 2] >= 0.01  # chin ≥ 1 cm down
    eyes_z = rig.joints[4, 2]
    cranium = rig.basis[:, 2] > eyes_z + 0.04
    assert np.linalg.norm(d[cranium], axis=1).max() < 5e-4


def test_eye_blink_left_closes_the_plus_x_eye_only(ict, rig):
    d = np.linalg.norm(_key(rig, "eyeBlinkLeft"), axis=1)
    x = rig.basis[:, 0]
    assert d[x > 0.01].max() > 0.005  # the upper lid travels ≥ 5 mm
    assert d[x < -0.01].max() < 5e-4  # the other eye: at most ICT's sub-millimetre stray offsets
    # the lid comes down over the +X eye: the lid vertices above the eye centre move down
    up = (x > 0.01) & (d > 0.003)
    assert _key(rig, "eyeBlinkLeft")[up, 2].mean() < -0.002


def test_bones_weights_and_jaw_agree_with_jaw_open(ict, rig):
    W = rig.weights
    assert W.shape == (ict.n_vertices, len(BONES)) and np.allclose(W.sum(1), 1)
    assert (W[ict.groups["eyeball_left"], BONES.index("eye_L")] == 1).all()
    assert rig.joints[BONES.index("eye_L"), 0] > 0.02 > -0.02 > rig.joints[BONES.index("eye_R"), 0]
    R = _rot([1, 0, 0], rig.jaw_open_angle)
    posed = skin_vertices(rig, {"jaw": R})
    bone = posed - rig.basis
    key = _key(rig, "jawOpen")
    face = ict.groups["face"]
    moving = face[np.linalg.norm(key[face], axis=1) > 2e-3]
    err = np.linalg.norm(bone[moving] - key[moving], axis=1).mean()
    assert err < 0.35 * np.linalg.norm(key[moving], axis=1).mean()
    # opening: chin goes down ≥ 1 cm, the cranium stays, no skin edge stretches by more than 3×
    chin = ict.landmarks_68[8]
    assert -bone[chin, 2] > 0.01
    assert np.linalg.norm(bone[rig.basis[:, 2] > rig.joints[4, 2] + 0.04], axis=1).max() < 5e-4
    skin = rig.primitives[0]
    e = np.concatenate([skin.faces[:, [0, 1]], skin.faces[:, [1, 2]], skin.faces[:, [2, 0]]])
    vid = skin.vertex_ids
    l0 = np.linalg.norm(rig.basis[vid[e[:, 0]]] - rig.basis[vid[e[:, 1]]], axis=1)
    l1 = np.linalg.norm(posed[vid[e[:, 0]]] - posed[vid[e[:, 1]]], axis=1)
    opened = rig.basis + key
    lk = np.linalg.norm(opened[vid[e[:, 0]]] - opened[vid[e[:, 1]]], axis=1)
    # no edge stretches to more than twice what the artist's jawOpen shape (or the rest pose) gives it
    assert (l1 / np.maximum(np.maximum(l0, lk), 1e-4)).max() < 2.0
    # lips part: upper (62) vs lower (66) inner-lip landmarks separate
    gap0 = rig.basis[ict.landmarks_68[62], 2] - rig.basis[ict.landmarks_68[66], 2]
    gap1 = posed[ict.landmarks_68[62], 2] - posed[ict.landmarks_68[66], 2]
    assert gap1 - gap0 > 0.008


def test_eye_bone_turns_the_eyeball(ict, rig):
    posed = skin_vertices(rig, {"eye_L": _rot([0, 0, 1], np.radians(20))})
    moved = np.linalg.norm(posed - rig.basis, axis=1)
    assert moved[ict.groups["eyeball_left"]].max() > 0.003
    assert moved[ict.groups["eyeball_right"]].max() < 1e-9
    assert moved[ict.groups["face"]].max() < 1e-9


def test_glb_validates_and_carries_52_names(tmp_path, rig, gltf_validator):
    import pygltflib

    from headforge.backend.rig.gltf import png_bytes, write_rig_glb

    p = tmp_path / "head_rigged.glb"
    write_rig_glb(p, rig, png_bytes(np.full((64, 128, 3), 180, np.uint8)))
    report = gltf_validator(p)
    assert report["errors"] == 0, report["messages"]
    assert report["warnings"] == 0, report["messages"]
    g = pygltflib.GLTF2().load(str(p))
    assert g.meshes[0].extras["targetNames"] == list(ARKIT_52)
    assert all(len(pr.targets) == 52 for pr in g.meshes[0].primitives)
    assert [g.nodes[j].name for j in g.skins[0].joints] == list(BONES)


@pytest.mark.blender
def test_blender_imports_shape_keys_and_armature(tmp_path, rig):
    bpy = pytest.importorskip("bpy")
    from headforge.backend.rig.gltf import write_rig_glb

    p = tmp_path / "head_rigged.glb"
    write_rig_glb(p, rig, None)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(p))
    arm = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    head = [o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys]
    assert len(arm) == 1 and len(head) == 1
    assert {b.name for b in arm[0].data.bones} == set(BONES)
    assert arm[0].data.bones["jaw"].parent.name == "head"
    keys = [k.name for k in head[0].data.shape_keys.key_blocks][1:]
    assert keys == list(ARKIT_52)
    assert [m.type for m in head[0].modifiers] == ["ARMATURE"]
    co = np.array([v.co[:] for v in head[0].data.vertices])
    assert co[:, 1].argmin() >= 0 and co[:, 1].min() < -0.1  # the face looks toward −Y in Blender
    eye = arm[0].data.bones["eye_L"].head_local
    assert eye.x > 0.02  # the subject's left eye at +X
