"""HeadForge's Blender side headless: splat import/export (native Gaussian splats on 5.3+, quads on every
version), bad PLYs and failures midway, rigged head import (bone shapes, placement on the splat, colours),
glTF/FBX export checked by the Khronos validator and by re-import, the job → results flow (installed as an
extension), and the manifest through Blender's extension tool. Each runs on this venv's bpy and, when the Python
3.13 venv is there, on bpy 5.3 (pythons.py)."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import pythons
from gltf_validator import validate
from tests.conftest import REPO, has_module
from splat_data import head_splat

pytestmark = pytest.mark.skipif(not has_module("bpy"), reason="needs the bpy module")

FACECAP = "data/heads/facecap/facecap_decoded.glb"
ICT = "data/ict_facekit/ict_face_light.npz"


@pytest.fixture(scope="module")
def rig_glb(tmp_path_factory, shared) -> Path:
    """HeadForge's ICT rig (average identity) as the rig stage writes it: eyes, mouth, gums and teeth coloured
    per vertex, the skin by a material colour."""
    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.build import build_rig
    from headforge.backend.rig.gltf import rig_to_gltf

    rig = build_rig(load_ict(shared / ICT), np.zeros(1))
    path = tmp_path_factory.mktemp("rig") / "head_rigged.glb"
    path.write_bytes(b"".join(rig_to_gltf(rig, None).save_to_bytes()))
    return path


@pytest.fixture(scope="module", params=pythons.params())
def run(request, tmp_path_factory, shared, astronaut_path, rig_glb):
    from headforge.backend.splat.ply import write_ply

    tmp = tmp_path_factory.mktemp("io")
    ply = tmp / "splat.ply"
    write_ply(ply, head_splat(n=1000, seed=1, sh_degree=3))
    proc = subprocess.run([request.param, str(Path(__file__).with_name("drive_io.py")), str(REPO), str(tmp),
                           str(ply), str(shared / FACECAP), str(astronaut_path), str(rig_glb)], capture_output=True,
                          text=True, env=pythons.env(tmp, HEADFORGE_ICT=str(shared / ICT)), timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, json.loads(lines[-1][6:])


def _source_target_names(shared) -> list[str]:
    import pygltflib

    g = pygltflib.GLTF2().load(str(shared / FACECAP))
    return next(m.extras["targetNames"] for m in g.meshes if m.extras and "targetNames" in m.extras)


QUAD_ATTRIBUTES = {"position", "opacity", *(f"f_dc_{i}" for i in range(3)), *(f"f_rest_{i}" for i in range(45)),
                   *(f"scale_{i}" for i in range(3)), *(f"rot_{i}" for i in range(4)), "hf_quad_rot", "hf_quad_scale"}
NATIVE_ATTRIBUTES = {"position", "radiance:base", "scale", "rotation", *(f"radiance:sh_{k}" for k in range(15))}


def test_splat_import_makes_native_splats_or_quads(run):
    _, f = run
    assert f["import_splat"] == [["FINISHED"], ""]
    s = f["splat"]
    assert s["count"] == 1000
    if f["native"]:  # Blender ≥ 5.3: its own Gaussian splat, in the layout Blender's PLY importer makes
        assert (s["type"], s["data_type"]) == ("POINTCLOUD", "GAUSSIAN_SPLAT")
        assert set(s["attributes"]) == NATIVE_ATTRIBUTES | {"hf_opacity", "hf_log_scale", "hf_rot"}
        assert s["modifiers"] == [] and s["material"] == []
    else:
        assert set(s["attributes"]) == QUAD_ATTRIBUTES
        assert s["modifiers"] == [["NODES", "HeadForge Splats"]]
        assert s["material"] == ["HeadForge Splat SH0"] and s["render_method"] == "DITHERED"
    print(f"Blender {f['blender']}: splat operator import (1000 splats, SH3 file): {f['import_splat_s']} s")


def test_native_splat_holds_what_blenders_own_importer_makes(run):
    _, f = run
    if not f["native"]:
        pytest.skip(f"Blender {f['blender']} has no native Gaussian splats")
    theirs = f["blender_ply_import"]
    assert (theirs["type"], theirs["data_type"]) == ("POINTCLOUD", "GAUSSIAN_SPLAT")
    assert set(theirs["attributes"]) == NATIVE_ATTRIBUTES  # nothing of theirs is missing from ours
    diff = f["native_vs_blender_max_diff"]
    assert all(v is not None and v <= 1e-6 for v in diff.values()), diff


def test_native_export_of_blenders_own_import_keeps_the_values(run):
    """A splat made by Blender's PLY importer (unit quaternions, exp'd scales, sigmoid'd opacity) exports to a
    3DGS PLY whose activated values equal the file's."""
    from headforge.backend.splat.ply import read_ply

    tmp, f = run
    if not f["native"]:
        pytest.skip(f"Blender {f['blender']} has no native Gaussian splats")
    assert f["export_blender_native"] == [["FINISHED"], ""]
    src, back = read_ply(tmp / "splat.ply"), read_ply(tmp / "blender_native.ply")
    np.testing.assert_array_equal(back["means"], src["means"])
    np.testing.assert_array_equal(back["sh"], src["sh"])
    np.testing.assert_allclose(1 / (1 + np.exp(-back["opacity_logits"])), 1 / (1 + np.exp(-src["opacity_logits"])),
                               atol=1e-6)
    np.testing.assert_allclose(np.exp(back["log_scales"]), np.exp(src["log_scales"]), rtol=1e-6)
    unit = src["quats"] / np.linalg.norm(src["quats"], axis=1, keepdims=True)
    np.testing.assert_allclose(back["quats"], unit, atol=1e-6)
    print(f"Blender's own PLY export of the same splat: {f.get('blender_ply_export_error') or 'written'}, "
          f"{(tmp / 'blender_export.ply').stat().st_size if (tmp / 'blender_export.ply').exists() else 0} bytes")


def test_high_quality_option_blends_with_view_dependent_colour(run):
    hq = run[1]["import_splat_hq"]
    assert hq["material"][0].startswith("HeadForge Splat SH3") and hq["render_method"] == "BLENDED"
    assert hq["nodes"] > 150  # the degree-3 SH evaluation is built in
    assert run[1]["import_splat_hq_operator"]["result"] == [["FINISHED"], ""]


def test_quads_draw_a_viewport_subsample(run):
    # On every Blender (5.3 sets Geometry Nodes inputs differently): max_preview 100 of 1000 splats, each point
    # kept with p = 0.1 (binomial: 100 ± 9.5).
    assert set(run[1]["quads"]["attributes"]) == QUAD_ATTRIBUTES
    assert 60 <= run[1]["viewport_instances"] <= 140, run[1]["viewport_instances"]


def test_ply_round_trip_is_byte_exact(run):
    assert run[1]["export_splat"] == [["FINISHED"], ""]
    assert run[1]["roundtrip_identical"]  # native on 5.3, quads before
    assert run[1]["roundtrip_quads_identical"]


@pytest.mark.parametrize("case", ["quads", "native"])
def test_failure_midway_is_reported_and_leaves_nothing(run, case):
    f = run[1]
    if case == "native" and not f["native"]:
        pytest.skip(f"Blender {f['blender']} has no native Gaussian splats")
    failed = f["failures"][case]
    assert failed["result"] in (["RuntimeError"], ["SplatImportError"]), failed
    assert "[splat.import_failed]" in failed["error"] and "injected failure" in failed["error"], failed
    assert failed["created"] == {}, failed


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


def _target_names(path: Path) -> list[list[str]]:
    import pygltflib

    g = pygltflib.GLTF2().load(str(path))
    return [m.extras["targetNames"] for m in g.meshes if m.extras and "targetNames" in m.extras]


@pytest.mark.parametrize("name, apple", [("head.glb", False), ("head_godot.glb", True)])
def test_gltf_export_is_valid_with_52_arkit_targets(run, shared, name, apple):
    from headforge.backend.headmodel.arkit import ARKIT_52, ict_to_arkit_name

    tmp, f = run
    assert f["export_glb"] == [["FINISHED"], ""] and f["export_godot"] == [["FINISHED"], ""]
    issues = validate(tmp / name)
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


def test_imports_leave_no_bone_shapes_behind(run):
    """The glTF importer's bone shape (a hidden Icosphere in glTF_not_exported) is not left by any import."""
    f = run[1]
    assert f["reimport_again"] == [["FINISHED"], ""]
    after = f["after_two_imports"]
    assert not [o for o in after["objects"] if o.startswith("Icosphere")], after
    assert not [c for c in after["collections"] if c.startswith("glTF_not_exported")], after


def _source_face_colours(glb: Path) -> dict:
    """{material: (mean, std) over faces} of the rig's own per-vertex colours (a face: the mean of its corners)."""
    import pygltflib

    from tests.glb import read_accessor

    g = pygltflib.GLTF2().load(str(glb))
    out = {}
    for prim in g.meshes[0].primitives:
        name = g.materials[prim.material].name
        if prim.attributes.COLOR_0 is not None:
            faces = read_accessor(g, prim.indices).reshape(-1, 3)
            col = read_accessor(g, prim.attributes.COLOR_0)[:, :3].astype(np.float64)
            fc = col[faces].mean(1)
            out[name] = (fc.mean(0), fc.std(0))
    return out


@pytest.mark.parametrize("fmt", ["imported", "glb", "fbx"])
def test_every_material_colour_survives_export(run, rig_glb, fmt):
    """Eyes (iris and sclera), mouth, gums and teeth keep their colours in Blender and through GLB and FBX
    (FBX used to bring them back white): per material, the mean and the spread of the colour faces show."""
    f = run[1]
    assert f["import_rig"] == [["FINISHED"], ""] and f["export_rig"] == {"glb": [["FINISHED"], ""],
                                                                         "fbx": [["FINISHED"], ""]}
    source = _source_face_colours(rig_glb)
    assert set(source) == {"eye", "mouth", "gums", "teeth"}
    got = {}
    for per_material in f["rig_colours"][fmt].values():
        got.update(per_material)
    for name, (mean, std) in source.items():
        assert got.get(name) is not None, (name, got.get(name))
        err_mean = np.abs(np.array(got[name][0]) - mean).max()
        err_std = np.abs(np.array(got[name][1]) - std).max()
        print(f"{fmt} {name}: mean {np.round(got[name][0], 3)} vs {np.round(mean, 3)} (error {err_mean:.4f}), "
              f"spread error {err_std:.4f}")
        assert err_mean < 0.01 and err_std < 0.01, (name, got[name], mean, std)
    assert got["skin"] is not None and np.abs(np.array(got["skin"][0]) - [0.8, 0.62, 0.52]).max() < 0.01


def test_views_mode_head_lines_up_with_the_splat(run):
    """rig.json's to_reconstruction (scale 0.602, a rotation, a shift) places the rigged head on its splat."""
    a = run[1]["align"]
    print(f"head surface → splat centres: median {a['median_mm']} mm, 95th percentile {a['p95_mm']} mm; "
          f"heights head {a['head_height_m']} m, splat {a['splat_height_m']} m")
    assert a["same_collection"]
    assert a["median_mm"] < 0.1 and a["p95_mm"] < 0.5, a


def test_failed_reimport_keeps_the_previous_import(run):
    """Import Job Results again on a job whose splat is now damaged: a coded error, the scene exactly as before
    (the earlier import intact, no half-built collection); once the file is good the import is replaced."""
    r = run[1]["reimport"]
    assert r["failure_code"] and r["failure_code"].startswith("splat."), r
    assert r["scene_unchanged_by_failure"] and r["first_intact"] and r["replaced"], r


def test_placed_head_exports_in_the_rigs_own_size(run):
    """Placing the head on its splat does not shrink what game engines get: the export is the rig's frame."""
    f = run[1]
    assert f["export_placed"] == [["FINISHED"], ""]
    e = f["export_placed_extent"]
    np.testing.assert_allclose(e["exported_m"], e["rig_frame_m"], rtol=1e-3)


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
    splats = by_type.get("POINTCLOUD", by_type["MESH"])  # native Gaussian splats (5.3+) or a quad mesh
    assert by_type["ARMATURE"] == [root[0][0]] and root[0][0] in splats  # splat and rig under the root
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


@pytest.mark.parametrize("python", pythons.params())
def test_manifest_validates_builds_and_lists(python, tmp_path):
    """Blender's own extension tool (`blender --command extension …`, from the bpy wheel) accepts the manifest,
    builds the zip without the development files, and makes a self-hosted repository listing of it."""
    import tomllib
    import zipfile

    tool = pythons.blender_ext(python)
    manifest = tomllib.loads((REPO / "blender_manifest.toml").read_text())

    def ext(*args):
        proc = subprocess.run([python, str(tool), *args], capture_output=True, text=True, timeout=600)
        return proc.returncode, proc.stdout + proc.stderr

    rc, out = ext("validate", str(REPO))
    assert rc == 0, out
    repo = tmp_path / "repo"
    repo.mkdir()
    rc, out = ext("build", "--source-dir", str(REPO), "--output-dir", str(repo))
    assert rc == 0, out
    zip_path = repo / f"{manifest['id']}-{manifest['version']}.zip"
    names = zipfile.ZipFile(zip_path).namelist()
    assert "blender_manifest.toml" in names and "__init__.py" in names and "addon/splat_import.py" in names
    top = {n.split("/")[0] for n in names}
    assert not top & {"tests", "benchmarks", ".venv", ".venv313", ".git", "test-artifacts"}, sorted(top)
    rc, out = ext("server-generate", "--repo-dir", str(repo), "--html")
    assert rc == 0, out
    listing = json.loads((repo / "index.json").read_text())
    entry = next(d for d in listing["data"] if d["id"] == manifest["id"])
    assert entry["version"] == manifest["version"] and entry["archive_url"].endswith(zip_path.name)
    assert (repo / "index.html").is_file()
    print(f"{python}: {zip_path.name} {zip_path.stat().st_size} bytes, {len(names)} files")
