"""Shared test set-up: offline hubs, throw-away Blender/torch folders, the read-only data in ../shared."""
import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="headforge-tests-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("BLENDER_USER_RESOURCES", str(_TMP / "blender"))
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(_TMP / "torch_extensions"))
os.environ.setdefault("HEADFORGE_MODELS", str(_TMP / "models"))
os.environ.setdefault("HEADFORGE_JOBS", str(_TMP / "jobs"))
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEADFORGE_SHARED", REPO.parent / "shared")).resolve()
# The backend never looks in a development checkout: the tests hand it the team's ICT-FaceKit Light explicitly
# (the face detectors in SHARED/models come through the face stage's models_root option, tests/face/conftest.py).
os.environ.setdefault("HEADFORGE_ICT", str(SHARED / "data" / "ict_facekit" / "ict_face_light.npz"))

# bpy and pymeshlab both bundle Embree: bpy must be imported first or it breaks.
try:
    import bpy  # noqa: F401
except ImportError:
    pass

ARTIFACTS = REPO / "test-artifacts"  # images tests keep for people to look at (git-ignored)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared test data not found at {SHARED}; set HEADFORGE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def astronaut_path(tmp_path_factory) -> Path:
    """scikit-image's public-domain astronaut portrait as a JPEG file."""
    from PIL import Image
    from skimage import data

    p = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(p, quality=95)
    return p


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def small_models(tmp_path_factory) -> Path:
    """Converted ID-TS folders (low_stage/, high_stage/) of the builders' 'small' configuration; read only."""
    from headforge.backend.idts.builders import SMALL_RESOLUTION, build_components, save_stage

    root = tmp_path_factory.mktemp("models") / "idts"
    for i, stage in enumerate(("low", "high")):
        save_stage(build_components("small", seed=i), root / f"{stage}_stage", stage, SMALL_RESOLUTION[stage])
    return root



@pytest.fixture(scope="session")
def views_generate(tmp_path_factory, shared) -> dict:
    """What the panel's driver (tests/blender/drive_views_generate.py) saw while making `views_job`: its refusals,
    the job folder."""
    import json
    import subprocess
    import sys

    if not has_module("bpy"):
        pytest.skip("render-views and the panel need the bpy module")
    tmp = tmp_path_factory.mktemp("views_job")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "BLENDER_USER_RESOURCES": str(tmp / "blender")}
    cli = [sys.executable, "-m", "headforge.backend", "--json"]
    p = subprocess.run(cli + ["render-views", str(shared / "data/heads/lee_perry_smith/LeePerrySmith_textured.glb"),
                              "-o", str(tmp / "lps"), "--size", "64", "--samples", "2"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    small = {"splat": {"steps": 120, "init_points": 4000},
             "mesh": {"voxel_size": 0.004, "depth_size": 64, "texture_size": 256, "target_triangles": 3000}}
    p = subprocess.run([sys.executable, str(REPO / "tests/blender/drive_views_generate.py"), str(REPO),
                        str(tmp / "jobs"), str(tmp / "lps"), json.dumps(small)],
                       capture_output=True, text=True, timeout=900, env=env)
    facts = [line for line in p.stdout.splitlines() if line.startswith("FACTS ")]
    assert p.returncode == 0 and facts, p.stdout[-3000:] + p.stderr[-3000:]
    facts = json.loads(facts[-1][6:])
    assert facts["generate"] == ["FINISHED"] and facts["error"] == "", facts
    return facts


@pytest.fixture(scope="session")
def views_job(views_generate) -> Path:
    """A views-mode job of the Lee Perry-Smith scan, made as an artist would: `headforge render-views` (64 px),
    then the panel's Generate in Views mode on that folder (tests/blender/drive_views_generate.py, in this bpy
    Python), with small splat and mesh settings. The views test and the first-run test both use it."""
    return Path(views_generate["job_dir"])
