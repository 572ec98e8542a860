"""`headforge run --mode views`: render-views output → splat → mesh → rig through the CLI, end to end."""
import json
import subprocess
import sys

import pytest

from tests.conftest import has_module

pytestmark = pytest.mark.skipif(not has_module("bpy"), reason="render-views needs the bpy module")


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
