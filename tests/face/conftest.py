"""Face-stage test helpers: the real detectors in ../shared/models, and an `analyse` shortcut."""
import numpy as np
import pytest


@pytest.fixture(scope="session")
def models_root(shared):
    root = shared / "models"
    if not (root / "insightface" / "models" / "buffalo_m" / "det_2.5g.onnx").is_file():
        pytest.fail(f"face detectors not found under {root} (see its README.md)")
    return str(root)


@pytest.fixture(scope="session")
def run_analyse(models_root):
    from headforge.backend.face.analysis import FaceOptions, analyse

    def run(img: np.ndarray, **opts):
        opts.setdefault("models_root", models_root)
        return analyse(img, FaceOptions(**opts))

    return run
