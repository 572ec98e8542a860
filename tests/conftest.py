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

