"""One decision for "can full mode run here" (CUDA + converted ID-TS weights), used by mode auto (job.choose_mode:
the demo, the CLI, the Blender panel) and doctor; the weights are looked up through the model store's root."""
import pytest

from headforge.backend import job
from headforge.backend.models import store
from headforge.backend.idts import readiness
from headforge.backend.stages import multiview

torch = pytest.importorskip("torch")


def converted_weights(root, stages=("low", "high")):
    """The file layout idts.converter writes (configs and safetensors per component), empty files."""
    from headforge.backend.idts.stage_folder import COMPONENTS

    for s in stages:
        folder = root / "idts" / f"{s}_stage"
        for comp in COMPONENTS:
            (folder / comp).mkdir(parents=True, exist_ok=True)
            (folder / comp / "config.json").write_text("{}")
            (folder / comp / "diffusion_pytorch_model.safetensors").write_bytes(b"")
        (folder / "idts_stage.json").write_text("{}")
    return root


@pytest.fixture
def models(tmp_path, monkeypatch):
    monkeypatch.setenv("HEADFORGE_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(store, "_override", None)
    return tmp_path / "models"


def test_no_cuda_runs_instant_and_says_why(models, monkeypatch):
    converted_weights(models)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ready, reason = readiness.full_mode_readiness()
    assert not ready and "CUDA" in reason
    assert job.choose_mode()[0] == "instant"


def test_cuda_and_weights_run_full(models, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(readiness, "nvidia_driver_present", lambda: True)
    converted_weights(models)
    ready, reason = readiness.full_mode_readiness()
    assert ready, reason
    assert str(models / "idts") in reason
    assert job.choose_mode()[0] == "full"
    # The user's device choice CPU rules full mode out even with a GPU.
    ready, reason = readiness.full_mode_readiness(device="cpu")
    assert not ready and reason.startswith("the device is set to CPU; ")
    assert job.choose_mode({"multiview": {"device": "cpu"}})[0] == "instant"


def test_cuda_without_stage2_weights_runs_instant(models, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(readiness, "nvidia_driver_present", lambda: True)
    converted_weights(models, stages=("low",))
    ready, reason = readiness.full_mode_readiness()
    assert not ready and "high_stage" in reason and str(models / "idts") in reason
    # The one step names the downloads and the converter command with this machine's paths.
    step = reason.split("; ", 1)[1]
    assert "headforge models download hqhead-stage1 hqhead-stage2" in step
    assert f"--low {models / 'hqhead' / 'low_stage.pt'}" in step and f"--out {models / 'idts'}" in step
    assert job.choose_mode()[0] == "instant"


def test_models_folder_of_the_preferences_reaches_the_multiview_stage(tmp_path, models, monkeypatch):
    """store.set_root (what the add-on's Models folder sets) wins over $HEADFORGE_MODELS for the weights."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(readiness, "nvidia_driver_present", lambda: True)
    prefs_folder = converted_weights(tmp_path / "prefs-models")
    assert not readiness.full_mode_readiness()[0]  # $HEADFORGE_MODELS holds nothing
    store.set_root(prefs_folder)
    try:
        assert readiness.weights_dir() == prefs_folder / "idts"
        assert readiness.full_mode_readiness()[0]
        assert multiview._models_dir(multiview.MultiviewOptions()) == prefs_folder / "idts"
    finally:
        store.set_root(None)
    # An explicit multiview.models_dir still wins.
    assert readiness.weights_dir(str(prefs_folder / "idts")) == prefs_folder / "idts"
    assert readiness.full_mode_readiness(str(prefs_folder / "idts"))[0]


def test_deciding_imports_no_torch_without_a_gpu_or_weights(tmp_path):
    """Mode auto's check must not cost a torch import (seconds) where full mode cannot run anyway."""
    import os
    import subprocess
    import sys

    code = ("import sys; from headforge.backend.idts import readiness as m; "
            "m.nvidia_driver_present = lambda: sys.argv[1] == 'gpu'; "
            "ready, why = m.full_mode_readiness(); print(ready, 'torch' in sys.modules, why)")
    for driver, says in (("none", "no CUDA GPU"), ("gpu", "weights are not in")):
        out = subprocess.run([sys.executable, "-c", code, driver], capture_output=True, text=True, check=True,
                             env={**os.environ, "HEADFORGE_MODELS": str(tmp_path)}).stdout
        assert out.startswith("False False ") and says in out, out
