"""Takes keyed onto heads in Blender (bpy, in a fresh subprocess): values and rotations as in the take at the
scene's frame rate, the artist's action kept, the portrait's expression posed, a bad CSV changes nothing,
export to glTF (Khronos validator) and FBX with the take, re-imported curves equal to the take's."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.blender import pythons
from tests.blender.gltf_validator import validate
from tests.conftest import has_module

pytestmark = [pytest.mark.blender, pytest.mark.skipif(not has_module("bpy"), reason="needs the bpy module")]


@pytest.fixture(scope="module", params=pythons.params())
def run(request, tmp_path_factory, shared):
    from headforge.backend.animate.livelink import format_livelink_csv
    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.build import build_rig
    from headforge.backend.rig.gltf import rig_to_gltf
    from tests.animate.test_take import _random_take

    tmp = tmp_path_factory.mktemp("animate_blender")
    rig = build_rig(load_ict(shared / "data/ict_facekit/ict_face_light.npz"), np.zeros(1))
    (tmp / "rig.glb").write_bytes(b"".join(rig_to_gltf(rig, None).save_to_bytes()))
    lines = format_livelink_csv(_random_take(n=70)).splitlines()
    lines[5] = lines[5] + ",0.5"  # one value too many
    (tmp / "bad.csv").write_text("\n".join(lines) + "\n")
    proc = subprocess.run([request.param, str(Path(__file__).with_name("drive_animation.py")), str(tmp),
                           str(tmp / "rig.glb"), str(shared / "data/heads/facecap/facecap.glb"), str(tmp / "bad.csv")],
                          capture_output=True, text=True, cwd=tmp, timeout=900, env=pythons.env(tmp))
    facts = [ln for ln in proc.stdout.splitlines() if ln.startswith("FACTS ")]
    assert proc.returncode == 0 and facts, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, json.loads(facts[-1][6:])


def test_take_keys_our_rig_at_scene_fps(run):
    _, f = run
    o = f["ours"]
    assert o["matched"] == 52 and o["missing"] == [] and o["fps"] == 24.0 and o["resampled"]
    assert o["frames"] == 268 and o["frame_range"] == [1, 268] and o["scene_frame_end"] == 268  # 11.13 s at 24 fps
    assert o["shape_key_max_err"] < 1e-6
    assert o["bones"] == {"head": "head", "eye_left": "eye_L", "eye_right": "eye_R"}
    for r, err in o["rotation_max_err_deg"].items():
        assert err < 0.05 and o["rotation_max_deg"][r] > 2.0, (r, err, o["rotation_max_deg"][r])


def test_import_take_operator_keys_the_csv_blink_on_its_frame(run):
    _, f = run
    o = f["operator_csv"]  # the capture's blink peaks at 6.467 s: frame 156 at 24 fps
    assert o["result"] == ["FINISHED"] and o["range"] == [1.0, 268.0] and o["blink_frame"] == 156
    assert o["csv_peak"] > 0.8 and abs(o["keyed"] - o["csv_at_frame"]) < 1e-6 and o["keyed"] > 0.8


def test_existing_actions_are_kept_for_the_nla(run):
    _, f = run
    o = f["ours"]
    assert o["kept"] == [{"action": "artist_blink", "kept_as": "NLA track HF artist_blink"}]
    assert o["nla_tracks"] == ["HF artist_blink"] and o["prev_action_users"] >= 1
    assert o["second"]["action"] == "take2" and o["second"]["actions"] == ["artist_blink", "facecap", "take2"]
    assert f["bad_csv"] == "animate.csv_count" and f["bad_csv_action_kept"]


def test_partial_heads_report_missing_names(run):
    _, f = run
    assert f["partial"] == {"matched": ["eyeBlinkLeft", "jawOpen"], "missing": 50, "bones": {}}
    assert f["no_keys"] == "animate.no_target"


def test_portrait_expression_poses_the_neutral_rig(run):
    _, f = run
    p = f["portrait"]
    assert p["frame_range"] == [12, 12] and p["matched"] == 52 and p["matched_vertices"] > 10000
    assert p["max_move_mm"] > 5.0 and p["max_err_mm"] < 0.05, p  # the model's own expression, to 50 µm


def test_export_carries_the_take(run, shared):
    from headforge.backend.animate.gltf_take import read_gltf_take

    tmp, f = run
    assert f["export_glb"] == "GLB" and f["export_fbx"] == "FBX"
    # the export operators' Animations is on by default once the head plays a take (export.plays_take)
    assert f["plays_take_before"] is False and f["plays_take_after"] is True
    issues = validate(tmp / "take.glb")
    assert issues["numErrors"] == 0, [m for m in issues["messages"] if m["severity"] == 0][:5]
    # the exported morph-weight animation read back by our own reader: the take's first 60 frames at 30 fps
    src = read_gltf_take(shared / "data/heads/facecap/facecap.glb").resample(30)
    out = read_gltf_take(tmp / "take.glb")
    # only the take the head plays (an earlier one is kept in its NLA): one glTF animation, not a mix of the two
    assert f["reimport_glb_actions"] == 1 and f["reimport_fbx_actions"] >= 2
    assert out.n_frames == 60 and abs(out.fps - 30) < 1e-3 and len(out.names) == 52
    assert np.abs(out.arkit_weights() - src.arkit_weights()[:60]).max() < 1e-6
    for r in ("head", "eye_left", "eye_right"):  # the bones' rotation channels, relative to their rest
        assert np.degrees(np.abs(getattr(out, r) - getattr(src, r)[:60])).max() < 1e-3, r
    for fmt in ("glb", "fbx"):
        assert max(f[f"reimport_{fmt}_err"].values()) < 1e-5, (fmt, f[f"reimport_{fmt}_err"])
