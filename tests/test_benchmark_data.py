"""The benchmarks find the team's data by themselves (benchmarks/_data.py: ../shared or $HEADFORGE_SHARED), though
the backend never looks there; and the mesh benchmark's training-views folder is one the stages accept."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.conftest import REPO

BENCH = REPO / "benchmarks"


def test_rig_sanity_finds_the_shared_ict_without_headforge_ict(shared, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HEADFORGE_ICT"}
    env.update(HEADFORGE_MODELS=str(tmp_path / "no-models"), HEADFORGE_SHARED=str(shared), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, str(BENCH / "rig_sanity.py")], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "every key moves" in p.stdout and "jawOpen: chin down" in p.stdout


def test_use_shared_ict_keeps_a_given_path_and_skips_a_missing_one(tmp_path):
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); import _data; print(_data.use_shared_ict()); "
            "print(os.environ.get('HEADFORGE_ICT'))")
    env = {k: v for k, v in os.environ.items() if k != "HEADFORGE_ICT"}
    given = subprocess.run([sys.executable, "-c", code, str(BENCH)], capture_output=True, text=True,
                           env={**env, "HEADFORGE_ICT": "/my/ict.npz"}).stdout.split()
    assert given == ["/my/ict.npz", "/my/ict.npz"]
    none = subprocess.run([sys.executable, "-c", code, str(BENCH)], capture_output=True, text=True,
                          env={**env, "HEADFORGE_SHARED": str(tmp_path)}).stdout.split()
    assert none == ["None", "None"]  # no shared data there: the model store's lookup applies


def test_mesh_benchmark_training_views_load_in_the_mesh_stage(tmp_path):
    from headforge.backend import cameras
    from headforge.backend.stages.mesh import load_views

    spec = importlib.util.spec_from_file_location("mesh_extract", BENCH / "mesh_extract.py")
    mx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mx)
    src = tmp_path / "renders"
    src.mkdir()
    cams = [{**c, "file": f"{c['index']:03d}.png"} for c in cameras.rig_cameras(16)[:4]]
    for i, c in enumerate(cams):
        Image.fromarray(np.full((16, 16, 4), 60 * i, np.uint8), "RGBA").save(src / c["file"])
    train = cams[1:]
    dest = tmp_path / "job" / "views"
    dest.mkdir(parents=True)
    (dest / train[0]["file"]).symlink_to(src / train[0]["file"])  # what an earlier version left behind
    mx.training_views(src, train, dest)
    _, colour = load_views(dest)
    assert len(colour) == 3 and not any(p.is_symlink() for p in dest.iterdir())
    assert [round(float(v.image[0, 0, 0]) * 255) for v in colour] == [60, 120, 180]
