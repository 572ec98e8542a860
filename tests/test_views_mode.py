"""Views mode: end to end from the panel (render-views output → Generate in Views mode → splat → mesh → rig), the CLI
resuming that job, and the views folder's safety: a cameras.json entry cannot make a stage read a file outside
`views/`."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image



def test_views_mode_reconstructs_and_rigs_lee_perry_smith(views_generate, views_job):
    """The panel's Views mode (conftest.views_job: render-views of the scan, then Generate on that folder):
    refusals first, then splat → mesh → rig on the job's own copy of the views; the CLI resumes the finished job."""
    facts = views_generate
    assert facts["no_folder"] == ["CANCELLED"] and facts["no_folder_code"] == "views.no_folder"
    assert facts["not_views"] == ["CANCELLED"] and facts["not_views_code"] == "views.missing_cameras"
    assert facts["jobs_after_refusals"] == []  # a refused Generate makes no job folder
    job = views_job
    src = job.parent.parent / "lps"  # the folder the artist chose: copied, never written to
    pngs = sorted(p.name for p in src.glob("*.png"))  # render-views' depth and normal .npy files stay behind
    assert len(pngs) == 96 and sorted(p.name for p in (job / "views").iterdir()) == sorted(["cameras.json", *pngs])
    assert (job / "views/cameras.json").read_bytes() == (src / "cameras.json").read_bytes()
    before = (job / "job.json").read_text()
    p = subprocess.run([sys.executable, "-m", "headforge.backend", "--json", "run", "-o", str(job), "--mode", "views"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    events = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert {e["stage"] for e in events if e["kind"] == "stage_skipped"} >= {"splat", "mesh", "rig"}, events
    assert json.loads((job / "job.json").read_text())["stages"] == json.loads(before)["stages"]
    record = json.loads((job / "job.json").read_text())
    stages = record["stages"]
    assert [s for s in ("splat", "mesh", "rig") if stages[s]["status"] == "done"] == ["splat", "mesh", "rig"]
    assert stages["splat"]["metrics"]["test_psnr"] > 22, stages["splat"]["metrics"]  # held-out views
    rig = json.loads((job / "rig/rig.json").read_text())
    assert len(rig["shape_keys"]) == 52 and rig["fit"]["source"] == "mesh/head.glb"
    # every file the splat, mesh and rig stages wrote is declared (so a damaged one is made again)
    from headforge.backend.job import LOCK_NAME, STAGES, pipeline

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


def test_a_views_folder_is_checked_and_copied_whole(tmp_path):
    """What the panel's Views mode does before a job starts (backend/views.folder_views, copy_views): a folder that
    is not a views folder is refused with its own code; the copy holds cameras.json and the listed images only, is
    named by content (one changed pixel changes the digest) and copies nothing the second time."""
    from headforge.backend import cameras as rig
    from headforge.backend.errors import JobError
    from headforge.backend.views import copy_views, folder_views

    src = tmp_path / "renders"
    src.mkdir()
    cams = rig.rig_cameras(size=16, rings=[1])[:3]
    rig.save_cameras_json(src / "cameras.json", cams)
    rgba = np.zeros((16, 16, 4), np.uint8)
    for c in cams:
        Image.fromarray(rgba).save(src / f"{c['index']:03d}.png")
    (src / "notes.txt").write_text("not a view")
    files, digest = folder_views(src)
    assert [f.name for f in files] == ["cameras.json"] + [f"{c['index']:03d}.png" for c in cams]
    assert copy_views(src, tmp_path / "job/views") == 4 and copy_views(src, tmp_path / "job/views") == 0
    assert sorted(p.name for p in (tmp_path / "job/views").iterdir()) == sorted(f.name for f in files)
    rgba[0, 0] = 1
    Image.fromarray(rgba).save(src / f"{cams[0]['index']:03d}.png")
    assert folder_views(src)[1] != digest
    (src / f"{cams[1]['index']:03d}.png").unlink()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/cameras.json").write_text("{not json")
    for folder, code in ((src, "views.missing_view"), (tmp_path / "bad", "views.bad_cameras"),
                         (tmp_path / "empty", "views.not_a_folder"), (tmp_path, "views.missing_cameras")):
        with pytest.raises(JobError) as e:
            folder_views(folder)
        assert e.value.code == code, (folder, e.value)
