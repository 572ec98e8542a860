"""`headforge dataset build` / `check`: a 2-sequence dataset (an ICT-FaceKit head and the Lee Perry-Smith scan) at
a small size; its cameras reproject each mesh onto its renders; a resumed build continues a half-rendered sequence
with the same pixels; `check` names each fault of a broken copy."""
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from headforge.backend import cameras as rig
from headforge.backend.dataset import ict_heads, layout
from headforge.backend.headmodel import ARKIT_52
from headforge.backend.render.raster import rasterize
from tests.conftest import has_module

SIZE = 128
needs_bpy = pytest.mark.skipif(not has_module("bpy"), reason="needs the bpy module")


def _build(source, out, *extra):
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "headforge.backend", "--json", "dataset", "build", str(source),
                           "-o", str(out), "--size", str(SIZE), "--ict", "1", "--samples", "2", "--workers", "2",
                           "--texture-size", "256", *extra], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    done = [json.loads(line) for line in proc.stdout.splitlines() if '"job_done"' in line]
    return done[-1]["data"], time.time() - t0


@pytest.fixture(scope="module")
def dataset(shared, tmp_path_factory):
    src = tmp_path_factory.mktemp("heads")
    lps = shared / "data/heads/lee_perry_smith"
    (src / "lps").mkdir()
    shutil.copy(lps / "LeePerrySmith_textured.glb", src / "lps")
    shutil.copy(lps / "LeePerrySmith_License.txt", src / "lps")
    # the same scan as FBX (Blender's exporter), one identity with the glb through a sidecar
    (src / "fbx").mkdir()
    export = ("import bpy, sys; bpy.ops.wm.read_factory_settings(use_empty=True); "
              "bpy.ops.import_scene.gltf(filepath=sys.argv[1]); bpy.ops.export_scene.fbx(filepath=sys.argv[2], "
              "path_mode='COPY', embed_textures=True)")
    subprocess.run([sys.executable, "-c", export, str(lps / "LeePerrySmith_textured.glb"), str(src / "fbx/lps.fbx")],
                   check=True, capture_output=True, timeout=120)
    (src / "fbx/lps.json").write_text(json.dumps({"identity": "lee-perry-smith", "licence": "CC BY 3.0"}))
    (src / "lps/LeePerrySmith_textured.json").write_text(json.dumps({"identity": "lee-perry-smith"}))
    out = tmp_path_factory.mktemp("dataset")
    summary, wall = _build(src, out, "--models-root", str(shared / "models"))
    print(f"\ndataset build: 2 sequences at {SIZE} px, 2 samples, 2 workers: {wall:.1f} s")
    return src, out, summary


def _mesh(path):
    import trimesh

    m = trimesh.load(path, force="mesh", process=False)
    return np.asarray(m.vertices, np.float64), np.asarray(m.faces)


@needs_bpy
@pytest.mark.blender
def test_manifest_meta_and_check(dataset):
    _, out, summary = dataset
    assert summary["sequences"] == 3 and summary["rendered"] == 3 and not summary["failed"]
    man = layout.read_manifest(out)
    assert man["format"] == "headforge-dataset" and man["version"] == 1 and man["size"] == SIZE
    kinds = {s["kind"]: s for s in man["sequences"] if not s["id"].startswith("mesh-fbx")}
    fbx = next(s for s in man["sequences"] if s["id"] == "mesh-fbx-lps")
    assert set(kinds) == {"ict", "mesh"}
    assert kinds["mesh"]["licence"] == "Creative Commons Attribution 3.0 Unported License"  # read from the text
    assert kinds["ict"]["licence"] == "MIT" and fbx["licence"] == "CC BY 3.0"  # from the sidecar
    # 2 identities (the scan's two files share one through their sidecars): one held out, the scan's files together
    assert fbx["identity"] == kinds["mesh"]["identity"] == "lee-perry-smith" and fbx["split"] == kinds["mesh"]["split"]
    assert {kinds["mesh"]["split"], kinds["ict"]["split"]} == {"test", "train"}
    for s in man["sequences"]:
        meta = json.loads((out / s["id"] / "meta.json").read_text())
        assert meta["identity_model"] == "dlib_resnet_v1" and len(meta["identity_embedding"]) == 128, meta
        assert set(meta["expression"]) <= set(ARKIT_52)
        marks = json.loads((out / s["id"] / "landmarks.json").read_text())  # dataset/landmarks.py
        assert meta["landmarks"] == {"file": "landmarks.json", "views": len(marks["views"]), "searched": 96}
        print(f"{s['id']}: expression points found in {len(marks['views'])} of 96 views at {SIZE} px")
    ict_meta = json.loads((out / kinds["ict"]["id"] / "meta.json").read_text())
    head = ict_heads.sample_heads(1, 0)[0]
    assert ict_meta["expression"] == head.expression and ict_meta["skin_tone"] == head.skin_tone
    # the measured skin typology angle of the render is in the band of the head's sampled albedo (±15°: shading)
    flat = np.tile(np.asarray(head.skin_rgb) * 255, (100, 100, 1)).astype(np.uint8)
    from headforge.backend.dataset.identity import skin_ita_deg

    albedo_ita = skin_ita_deg(flat, np.array([[30.0, 40], [70, 40], [50, 60], [35, 80], [65, 80]]))
    assert abs(ict_meta["skin_ita_deg"] - albedo_ita) < 15, (ict_meta["skin_ita_deg"], albedo_ita)
    assert layout.check_dataset(out) == []


@needs_bpy
@pytest.mark.blender
def test_cameras_reproject_meshes_onto_renders(dataset):
    _, out, _ = dataset
    for s in layout.read_manifest(out)["sequences"]:
        if s["id"] == "mesh-fbx-lps":
            continue  # no file_to_world for FBX (the importer applies the header's units): next test
        vdir = layout.views_dir(out, s["id"])
        meta = json.loads((vdir / "cameras.json").read_text())
        asset = out / s["id"] / "head.glb" if s["kind"] == "ict" else meta["source"]
        M = np.array(meta["normalisation"]["file_to_world"])
        v, f = _mesh(asset)
        vw = v @ M[:3, :3].T + M[:3, 3]
        ious = []
        for cam in rig.load_cameras_json(vdir / "cameras.json")[::3]:  # every ring, azimuths varying ring to ring
            alpha = np.asarray(Image.open(vdir / cam["file"]))[..., 3] > 127
            xy, z = rig.project(vw, cam)
            sil = rasterize(xy, z, f, SIZE, SIZE)[0] >= 0
            ious.append((alpha & sil).sum() / (alpha | sil).sum())
        print(f"\n{s['id']}: silhouette IoU over 32 views min {min(ious):.4f} mean {np.mean(ious):.4f}")
        assert min(ious) >= 0.98


@needs_bpy
@pytest.mark.blender
def test_fbx_renders_like_the_glb_it_was_exported_from(dataset):
    _, out, _ = dataset
    glb, fbx = layout.views_dir(out, "mesh-lps-LeePerrySmith_textured"), layout.views_dir(out, "mesh-fbx-lps")
    assert json.loads((fbx / "cameras.json").read_text())["normalisation"]["file_to_world"] is None
    ious = []
    for i in range(0, 96, 5):
        a = np.asarray(Image.open(glb / f"{i:03d}.png"))[..., 3] > 127
        b = np.asarray(Image.open(fbx / f"{i:03d}.png"))[..., 3] > 127
        ious.append((a & b).sum() / (a | b).sum())
    assert min(ious) >= 0.98, min(ious)


@needs_bpy
@pytest.mark.blender
def test_check_names_each_fault_of_a_broken_copy(dataset, tmp_path):
    _, out, _ = dataset
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    man = layout.read_manifest(bad)
    a = next(s for s in man["sequences"] if s["kind"] == "ict")
    b = next(s for s in man["sequences"] if s["id"] == "mesh-lps-LeePerrySmith_textured")
    a["identity"] = b["identity"]  # one identity in two splits
    (bad / "manifest.json").write_text(json.dumps(man))
    (layout.views_dir(bad, a["id"]) / "005.png").unlink()
    cams = json.loads((layout.views_dir(bad, b["id"]) / "cameras.json").read_text())
    cams["views"][20]["w2c"][0][3] += 0.01  # a camera moved by 1 cm
    (layout.views_dir(bad, b["id"]) / "cameras.json").write_text(json.dumps(cams))
    view = layout.views_dir(bad, b["id"]) / "030.png"
    Image.open(view).convert("RGB").save(view)
    meta = json.loads((bad / b["id"] / "meta.json").read_text())
    meta["expression"] = {"smile": 0.5}
    (bad / b["id"] / "meta.json").write_text(json.dumps(meta))
    marks = json.loads((bad / a["id"] / layout.LANDMARKS_FILE).read_text())
    view = next(iter(marks["views"]))
    marks["views"][view][3] = [float("nan"), 10.0]  # what the training's loss would read as a point
    (bad / a["id"] / layout.LANDMARKS_FILE).write_text(json.dumps(marks))
    (bad / b["id"] / layout.LANDMARKS_FILE).unlink()  # allowed: the training runs MediaPipe instead
    problems = layout.check_dataset(bad)
    codes = sorted(p.code for p in problems)
    assert codes == sorted(["dataset.identity_leak", "dataset.missing_view", "dataset.not_rig_camera",
                            "dataset.no_alpha", "dataset.bad_expression", "dataset.bad_landmarks"]), codes
    assert f"views {view}:" in next(p.message for p in problems if p.code == "dataset.bad_landmarks")
    proc = subprocess.run([sys.executable, "-m", "headforge.backend", "dataset", "check", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "dataset.not_rig_camera" in proc.stdout and "030.png" in proc.stdout


@needs_bpy
@pytest.mark.blender
def test_cancel_then_resume_continues_a_half_rendered_sequence(dataset, tmp_path, shared):
    from headforge.backend.dataset.build import BuildOptions, build_dataset
    from headforge.backend.errors import Cancelled
    from headforge.backend.events import CancelToken

    src, out, _ = dataset
    copy = tmp_path / "ds"
    shutil.copytree(out, copy)
    ict_id = next(s["id"] for s in layout.read_manifest(out)["sequences"] if s["kind"] == "ict")
    vdir = layout.views_dir(copy, ict_id)
    for i in range(40, 96):
        (vdir / f"{i:03d}.png").unlink()
    (vdir / "cameras.json").unlink()
    (copy / ict_id / "meta.json").unlink()
    opts = BuildOptions(size=SIZE, ict=1, samples=2, workers=2, texture_size=256, models_root=str(shared / "models"))
    cancel = CancelToken()

    def emit(e):  # Ctrl-C while the 50th view renders
        if e.kind == "progress" and "view 50/96" in e.message:
            cancel.cancel()

    with pytest.raises(Cancelled):
        build_dataset(src, copy, opts, emit, cancel)
    kept = sorted(p.name for p in vdir.glob("[0-9][0-9][0-9].png"))
    assert 50 <= len(kept) < 96 and not (vdir / "cameras.json").exists(), len(kept)
    summary = build_dataset(src, copy, opts)  # the next run continues the sequence where it stopped
    assert summary["rendered"] == 1 and summary["skipped"] == 2 and not summary["failed"]
    assert json.loads((vdir / "cameras.json").read_text())["render"]["views_rendered"] == 96 - len(kept)
    for i in range(40, 96):  # the same renderer settings: the same pixels as the first, uninterrupted build
        a = np.asarray(Image.open(vdir / f"{i:03d}.png")).astype(int)
        b = np.asarray(Image.open(layout.views_dir(out, ict_id) / f"{i:03d}.png")).astype(int)
        assert np.abs(a - b).max() <= 2, i
    assert layout.check_dataset(copy) == []


@pytest.mark.parametrize("change,code", [
    (lambda d: d, None),
    (lambda d: d["views"]["12"].__setitem__(0, [float("inf"), 3.0]), "dataset.bad_landmarks"),  # not finite
    (lambda d: d["views"]["12"].__setitem__(0, [70.0, 3.0]), "dataset.bad_landmarks"),  # outside the 64-px view
    (lambda d: d["views"].__setitem__("999", d["views"]["12"]), "dataset.bad_landmarks"),  # no such camera
    (lambda d: d["views"].__setitem__("40", [[1.0, 2.0]]), "dataset.bad_landmarks"),  # another point count
    (lambda d: d["views"].__setitem__("40", "abc"), "dataset.bad_landmarks"),
    (lambda d: d.__setitem__("size", "64"), "dataset.bad_landmarks"),
    (lambda d: d.__setitem__("size", 128), "dataset.landmarks_size"),  # the loss rescales: a warning
])
def test_check_reads_landmarks_as_the_training_does(tmp_path, change, code):
    data = {"size": 64, "points": "test", "searched": 96, "views": {"12": [[10.0, 20.5], [30, 40]],
                                                                  "40": [[0.0, 64.0], [5.5, 6.5]]}}
    change(data)
    path = tmp_path / layout.LANDMARKS_FILE
    path.write_text(json.dumps(data))
    problems = layout._check_landmarks(path, 64, set(range(96)))
    assert [p.code for p in problems] == ([code] if code else []), problems
    path.write_text("{not json")
    assert [p.code for p in layout._check_landmarks(path, 64, set(range(96)))] == ["dataset.bad_landmarks"]
