"""Views mode: `headforge run --mode views` end to end (render-views output → splat → mesh → rig through the CLI),
and the views folder's safety: a cameras.json entry cannot make a stage read a file outside `views/`."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import has_module


@pytest.mark.skipif(not has_module("bpy"), reason="render-views needs the bpy module")
def test_views_mode_reconstructs_and_rigs_lee_perry_smith(shared, tmp_path):
    asset = shared / "data/heads/lee_perry_smith/LeePerrySmith_textured.glb"
    cli = [sys.executable, "-m", "headforge.backend", "--json"]
    p = subprocess.run(cli + ["render-views", str(asset), "-o", str(tmp_path / "job/views"), "--size", "64",
                              "--samples", "2"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    small = ["splat.steps=120", "splat.init_points=4000", "mesh.voxel_size=0.004", "mesh.depth_size=64",
             "mesh.texture_size=256", "mesh.target_triangles=3000"]
    p = subprocess.run(cli + ["run", "-o", str(tmp_path / "job"), "--mode", "views",
                              *[a for s in small for a in ("--set", s)]], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    record = json.loads((tmp_path / "job/job.json").read_text())
    stages = record["stages"]
    assert [s for s in ("splat", "mesh", "rig") if stages[s]["status"] == "done"] == ["splat", "mesh", "rig"]
    assert stages["splat"]["metrics"]["test_psnr"] > 22, stages["splat"]["metrics"]  # held-out views
    rig = json.loads((tmp_path / "job/rig/rig.json").read_text())
    assert len(rig["shape_keys"]) == 52 and rig["fit"]["source"] == "mesh/head.glb"
    # every file the splat, mesh and rig stages wrote is declared (so a damaged one is made again)
    from headforge.backend.job import LOCK_NAME, STAGES, pipeline

    job = tmp_path / "job"
    declared = ["views"] + [o for n in pipeline("views") for o in STAGES[n].outputs + STAGES[n].optional_outputs]
    written = sorted(str(p.relative_to(job)) for p in job.rglob("*") if p.is_file())
    undeclared = [w for w in written if w not in ("job.json", LOCK_NAME, "libraries.log")
                  and not any(w == d or w.startswith(d + "/") for d in declared)]
    assert undeclared == [] and "mesh/head_albedo.png" in written and "mesh/preview.png" in written


def _views_job(tmp_path, outside: str):
    """A job whose views/cameras.json lists 4 good views and one whose "file" is `outside`, a readable RGBA PNG
    placed outside views/ (relative "../..", absolute, or a symlink inside views/ that points out)."""
    from headforge.backend import cameras as rig
    from headforge.backend.job import Job

    job = Job(tmp_path / "job")
    views = job.path("views")
    views.mkdir(parents=True)
    cams = rig.rig_cameras(size=32, rings=[1])[:5]
    img = Image.fromarray(np.full((32, 32, 4), 200, np.uint8), "RGBA")
    for c in cams[:4]:
        img.save(views / f"{c['index']:03d}.png")
    secret = tmp_path / "secret.png"  # outside the job folder
    img.save(secret)
    if outside == "relative":
        cams[4]["file"] = "../../secret.png"
    elif outside == "absolute":
        cams[4]["file"] = str(secret)
    else:
        (views / "link.png").symlink_to(secret)
        cams[4]["file"] = "link.png"
    rig.save_cameras_json(views / "cameras.json", cams)
    return job


def _ctx(job, name, opts):
    from headforge.backend.events import CancelToken
    from headforge.backend.job import StageContext

    return StageContext(job, name, opts, "views", lambda e: None, CancelToken(), lambda f: f)


@pytest.mark.parametrize("outside", ["relative", "absolute", "symlink"])
def test_splat_stage_refuses_views_outside_the_views_folder(tmp_path, outside):
    from headforge.backend.errors import HeadForgeError
    from headforge.backend.stages.splat import SplatOptions, run_splat

    job = _views_job(tmp_path, outside)
    with pytest.raises(HeadForgeError) as err:
        run_splat(_ctx(job, "splat", SplatOptions(steps=1, init_points=100, device="cpu")))
    assert err.value.code == "views.outside_folder", err.value.to_dict()
    assert "views" in err.value.message and "secret.png" in err.value.message
    assert not job.path("splat/head.ply").exists()


@pytest.mark.parametrize("outside", ["relative", "absolute", "symlink"])
def test_mesh_stage_refuses_views_outside_the_views_folder(tmp_path, outside):
    from headforge.backend.errors import HeadForgeError
    from headforge.backend.splat.ply import write_ply
    from headforge.backend.stages.mesh import MeshOptions, run_mesh

    job = _views_job(tmp_path, outside)
    rng = np.random.default_rng(0)
    n = 400
    write_ply(job.path("splat/head.ply"), {
        "means": rng.normal(0, 0.03, (n, 3)).astype(np.float32), "quats": np.tile([1, 0, 0, 0], (n, 1)).astype(
            np.float32), "log_scales": np.full((n, 3), np.log(0.005), np.float32),
        "opacity_logits": np.full(n, 3.0, np.float32), "sh": np.zeros((n, 1, 3), np.float32)})
    with pytest.raises(HeadForgeError) as err:
        run_mesh(_ctx(job, "mesh", MeshOptions(device="cpu", depth_size=32, voxel_size=0.004,
                                               texture_size=256, target_triangles=500)))
    assert err.value.code == "views.outside_folder", err.value.to_dict()
    assert not job.path("mesh/head.glb").exists()


def test_views_inside_the_folder_still_load(tmp_path):
    """Subfolders of views/ and `./` prefixes stay allowed: only paths that leave views/ are refused."""
    from headforge.backend import cameras as rig
    from headforge.backend.stages import mesh, splat

    views = tmp_path / "views"
    (views / "sub").mkdir(parents=True)
    cams = rig.rig_cameras(size=32, rings=[1])[:3]
    for c, name in zip(cams, ["000.png", "sub/001.png", "./sub/../002.png"]):
        Image.fromarray(np.full((32, 32, 4), 100 + c["index"], np.uint8), "RGBA").save(views / name)
        c["file"] = name
    rig.save_cameras_json(views / "cameras.json", cams)
    loaded = splat.load_views(views)[0]
    assert loaded.shape[0] == 3 and [round(float(v[0, 0, 0]) * 255) for v in loaded] == [116, 117, 118]
    assert len(mesh.load_views(views)[1]) == 3
