"""HeadForge's Blender side headless: splat import/export, bad PLYs, rigged head import, glTF/FBX export checked
by the Khronos validator and by re-import, and the job → results flow (installed as an extension)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO, has_module
from splat_data import head_splat

pytestmark = pytest.mark.skipif(not has_module("bpy"), reason="needs the bpy module")

FACECAP = "data/heads/facecap/facecap_decoded.glb"
VALIDATOR_VERSION = "2.0.0-dev.3.10"


@pytest.fixture(scope="module")
def run(tmp_path_factory, shared, astronaut_path):
    from headforge.backend.splat.ply import write_ply

    tmp = tmp_path_factory.mktemp("io")
    ply = tmp / "splat.ply"
    write_ply(ply, head_splat(n=1000, seed=1, sh_degree=3))
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp / "blender")}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("drive_io.py")), str(REPO), str(tmp),
                           str(ply), str(shared / FACECAP), str(astronaut_path)], capture_output=True, text=True,
                          env=env, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, json.loads(lines[-1][6:])


def _source_target_names(shared) -> list[str]:
    import pygltflib

    g = pygltflib.GLTF2().load(str(shared / FACECAP))
    return next(m.extras["targetNames"] for m in g.meshes if m.extras and "targetNames" in m.extras)


def test_splat_import_keeps_standard_names_and_builds_drawing(run):
    _, f = run
    assert f["import_splat"] == [["FINISHED"], ""]
    s = f["splat"]
    assert s["count"] == 1000
    expected = {"position", "opacity", *(f"f_dc_{i}" for i in range(3)), *(f"f_rest_{i}" for i in range(45)),
                *(f"scale_{i}" for i in range(3)), *(f"rot_{i}" for i in range(4)), "hf_quad_rot", "hf_quad_scale"}
    assert set(s["attributes"]) == expected
    assert s["modifiers"] == [["NODES", "HeadForge Splats"]]
    assert s["material"] == ["HeadForge Splat SH0"] and s["render_method"] == "DITHERED"
    print(f"splat operator import (1000 splats, SH3 file): {f['import_splat_s']} s")


def test_high_quality_option_blends_with_view_dependent_colour(run):
    hq = run[1]["import_splat_hq"]
    assert hq["result"] == [["FINISHED"], ""]
    assert hq["material"].startswith("HeadForge Splat SH3") and hq["render_method"] == "BLENDED"
    assert hq["nodes"] > 150  # the degree-3 SH evaluation is built in


def test_viewport_draws_a_subsample(run):
    # max_preview_splats=100 of 1000: each point kept with p = 0.1 (binomial: 100 ± 9.5).
    assert 60 <= run[1]["viewport_instances"] <= 140, run[1]["viewport_instances"]


def test_ply_round_trip_is_byte_exact(run):
    assert run[1]["export_splat"] == [["FINISHED"], ""]
    assert run[1]["roundtrip_identical"]


@pytest.mark.parametrize("case, code", [("missing_property", "splat.not_gaussians"), ("wrong_type", "splat.bad_type"),
                                        ("truncated", "splat.ply_truncated"), ("zero_splats", "splat.empty"),
                                        ("ascii", "splat.bad_format"), ("not_a_ply", "splat.bad_ply"),
                                        ("nan", "splat.not_finite")])
def test_bad_ply_gives_typed_error_and_creates_nothing(run, case, code):
    bad = run[1]["bad"][case]
    assert bad["result"] == ["RuntimeError"] and f"[{code}]" in bad["error"], bad
    assert not bad["created"]


def test_head_import_structure(run, shared):
    _, f = run
    assert f["import_head"] == [["FINISHED"], ""]
    h = f["head"]
    assert len(h["collections"]) == 1 and len(h["roots"]) == 1 and h["under_root"]
    assert set(h["bones"]) >= {"root", "neck", "head", "jaw", "eye_L", "eye_R"}
    assert all(mods == ["ARMATURE"] for mods in h["modifiers"].values()), h["modifiers"]
    assert all(t == h["armatures"] for t in h["armature_targets"].values())
    assert h["shape_keys"] == {"head": _source_target_names(shared)}  # the 52 names, exactly and in order
    assert h["textured"] == ["lambert5"]
    assert f["jaw_open_max_move"] > 0.05
    print(f"facecap import (operator): {f['import_head_s']} s")


def _validator() -> Path:
    """The Khronos glTF validator from npm, installed once into a temp folder (skips without node/npm)."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node/npm not installed")
    root = Path(tempfile.gettempdir()) / "headforge-gltf-validator"
    if not (root / "node_modules" / "gltf-validator").is_dir():
        root.mkdir(exist_ok=True)
        proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent",
                               f"gltf-validator@{VALIDATOR_VERSION}"], cwd=root, capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            pytest.skip(f"npm could not install gltf-validator: {proc.stderr[-300:]}")
    script = root / "validate.js"
    script.write_text("const fs = require('fs'); const v = require('gltf-validator');\n"
                      "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])), {maxIssues: 500})\n"
                      "  .then(r => console.log(JSON.stringify(r))).catch(e => { console.error(e); process.exit(2); });\n")
    return script


def _validate(path: Path) -> dict:
    proc = subprocess.run(["node", str(_validator()), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["issues"]


def _target_names(path: Path) -> list[list[str]]:
    import pygltflib

    g = pygltflib.GLTF2().load(str(path))
    return [m.extras["targetNames"] for m in g.meshes if m.extras and "targetNames" in m.extras]


@pytest.mark.parametrize("name, apple", [("head.glb", False), ("head_godot.glb", True)])
def test_gltf_export_is_valid_with_52_arkit_targets(run, shared, name, apple):
    from headforge.backend.headmodel.arkit import ARKIT_52, ict_to_arkit_name

    tmp, f = run
    assert f["export_glb"] == [["FINISHED"], ""] and f["export_godot"] == [["FINISHED"], ""]
    issues = _validate(tmp / name)
    print(f"{name}: validator errors {issues['numErrors']}, warnings {issues['numWarnings']} "
          f"({sorted({m['code'] for m in issues['messages'] if m['severity'] == 1})})")
    assert issues["numErrors"] == 0, [m for m in issues["messages"] if m["severity"] == 0][:5]
    names = _target_names(tmp / name)
    assert len(names) == 1 and len(names[0]) == 52
    source = _source_target_names(shared)
    if apple:
        assert set(names[0]) == set(ARKIT_52)
        assert names[0] == [n if n in ARKIT_52 else ict_to_arkit_name(n) for n in source]
    else:
        assert names[0] == source
    assert f["names_after_export"] == source  # renaming for export leaves the Blender data alone


def test_fbx_for_unreal_keeps_shape_keys_and_bones(run):
    from headforge.backend.headmodel.arkit import ARKIT_52

    _, f = run
    assert f["export_unreal"] == [["FINISHED"], ""]
    keys = [k for k in f["fbx_reimport"].values() if k]
    assert len(keys) == 1 and sorted(keys[0]) == sorted(ARKIT_52)
    assert f["fbx_armatures"] == [["eye_L", "eye_R", "head", "jaw", "neck", "root"]]
    print(f"FBX round trip: {len(keys[0])} shape keys")


def test_skinned_glb_imports_without_building_a_rig(run, shared):
    _, f = run
    assert f["reimport_glb"] == [["FINISHED"], ""]
    h = f["reimported_head"]
    assert h["armatures"] == ["facecap_decoded_rig"]  # the file's own armature, not a new one
    assert h["shape_keys"] == {"head": _source_target_names(shared)}
    assert all(mods == ["ARMATURE"] for mods in h["modifiers"].values())
    assert len(h["roots"]) == 1 and h["under_root"]


def test_generate_imports_results_under_one_root(run):
    _, f = run
    assert f["generate"] == [["FINISHED"], ""], f["state"]
    st = f["state"]
    assert st["error"] == "" and st["progress"] == 1.0 and st["faces"] == 2 and st["preview"].endswith(".png")
    objs = f["job_collection"]
    root = [o for o in objs if o[1] == "EMPTY"]
    assert len(root) == 1
    by_type = {}
    for name, kind, parent in objs:
        by_type.setdefault(kind, []).append(parent)
    assert by_type["ARMATURE"] == [root[0][0]] and root[0][0] in by_type["MESH"]  # splat and rig under the root
    assert f["generate_again"] == [["FINISHED"], ""]
    assert f["collections_after_rerun"] == [st["imported"]] and f["objects_after_rerun"] == len(objs)
    print(f"generate → import: {f['generate_s']} s")


def test_main_thread_never_stalls_while_the_job_works(run):
    busy = run[1]["busy"]
    print(f"worker job: {busy['ticks']} timer ticks, {busy['events']} events, longest stall {busy['max_stall_s']} s")
    assert busy["error"] == "" and busy["events"] > 10
    assert busy["max_stall_s"] < 0.2


def test_cancel_then_resume(run):
    assert run[1]["cancelled"] == {"code": "cancelled"}
    assert run[1]["resumed"] == {"error": "", "status": "done"}


def test_disable_removes_every_class(run):
    assert run[1]["after_disable"] == []
