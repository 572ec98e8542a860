"""The built-in ICT-FaceKit dataset heads: reproducible sampling, ARKit expressions, the written glb's geometry and
texture, identity splits."""
import numpy as np
import pytest

from headforge.backend.dataset import ict_heads, layout
from headforge.backend.headmodel import ARKIT_52, load_ict
from headforge.backend.headmodel.parts import visible_faces


def test_sampling_is_reproducible_and_prefix_stable():
    a, b = ict_heads.sample_heads(6, seed=3), ict_heads.sample_heads(9, seed=3)
    for x, y in zip(a, b):
        assert x.id == y.id and np.array_equal(x.identity, y.identity) and x.expression == y.expression
    assert ict_heads.sample_heads(2, seed=4)[0].id != a[0].id
    for h in b:
        assert set(h.expression) <= set(ARKIT_52) and all(0 < w <= 1 for w in h.expression.values())
    per = ict_heads.sample_heads(6, seed=3, expressions_per_identity=3)
    assert [h.identity_id for h in per] == [per[0].identity_id] * 3 + [per[3].identity_id] * 3
    assert np.array_equal(per[0].identity, per[2].identity) and per[0].expression == {}


def test_written_head_matches_the_model(shared, tmp_path):
    import trimesh

    model = load_ict(shared / "data/ict_facekit/ict_face_light.npz")
    head = next(h for h in ict_heads.sample_heads(20, seed=1) if "jawOpen" in h.expression)
    ict_heads.write_head(tmp_path / "h.glb", model, head, res=128)
    verts = ict_heads.head_vertices(model, head)
    # jawOpen moves the chin down by centimetres
    chin = model.landmarks_68[8]
    assert verts[chin, 2] < model.neutral[chin, 2] - 0.005 * head.expression["jawOpen"]
    m = trimesh.load(tmp_path / "h.glb", force="mesh", process=False)
    from headforge.backend.headmodel.frames import WORLD_TO_GLTF

    used = np.unique(model.faces[visible_faces(model)])
    got = np.asarray(m.vertices) @ WORLD_TO_GLTF  # glTF → world
    assert abs(len(m.faces) - len(visible_faces(model))) == 0
    assert np.abs(got.min(0) - verts[used].min(0)).max() < 1e-5 and np.abs(got.max(0) - verts[used].max(0)).max() < 1e-5
    tex = np.asarray(m.visual.material.baseColorTexture.convert("RGB"), np.float64) / 255
    assert tex.shape == (128 + 32, 512, 3)
    # skin tile: the mean skin colour is the head's tone; the eye strip has the iris and a dark pupil
    face_tile = tex[40:100, 20:110]
    assert np.abs(np.median(face_tile.reshape(-1, 3), 0) - np.asarray(head.skin_rgb)).max() < 0.06
    strip = tex[140, :256]
    assert strip[-1].max() < 0.05 and np.abs(strip[0] - ict_heads.SCLERA_RGB).max() < 0.01


def test_splits_keep_identities_together_and_hold_out_some():
    ids = [f"p{i}" for i in range(40)]
    s = layout.assign_splits(ids, seed=0)
    counts = {k: sum(v == k for v in s.values()) for k in layout.SPLITS}
    assert counts == {"train": 32, "val": 4, "test": 4}
    assert layout.assign_splits(ids, seed=0) == s and layout.assign_splits(ids, seed=1) != s
    assert sorted(layout.assign_splits(["a", "b"]).values()) == ["test", "train"]


def test_skin_typology_angle():
    from skimage.color import lab2rgb

    from headforge.backend.dataset.identity import skin_ita_deg

    kps = np.array([[30.0, 40], [70, 40], [50, 60], [35, 80], [65, 80]])
    for L, b in ((70.0, 15.0), (45.0, 20.0), (30.0, 12.0)):
        rgb = np.clip(lab2rgb(np.array([[[L, 12.0, b]]])) * 255, 0, 255).round().astype(np.uint8)
        img = np.tile(rgb, (100, 100, 1))
        assert skin_ita_deg(img, kps) == pytest.approx(np.degrees(np.arctan2(L - 50, b)), abs=1.5)  # 8-bit colour
    light, dark = (np.tile(np.asarray(ict_heads.SKIN_TONES[i]) * 255, (100, 100, 1)).astype(np.uint8) for i in (0, 7))
    assert skin_ita_deg(light, kps) > 40 > -30 > skin_ita_deg(dark, kps)


def test_build_refuses_bad_input_before_making_anything(tmp_path, monkeypatch):
    from headforge.backend.dataset.build import BuildOptions, build_dataset
    from headforge.backend.errors import HeadForgeError

    out = tmp_path / "ds"
    monkeypatch.setenv("HEADFORGE_ICT", str(tmp_path / "absent.npz"))
    cases = [(None, BuildOptions(ict=1), "model.ict_missing"),
             (tmp_path / "nope", BuildOptions(), "dataset.bad_source"),
             (None, BuildOptions(), "dataset.empty"), (None, BuildOptions(ict=1, size=8), "cli.bad_option")]
    for source, opts, code in cases:
        with pytest.raises(HeadForgeError) as e:
            build_dataset(source, out, opts)
        assert e.value.code == code and e.value.message
        assert not out.exists()
