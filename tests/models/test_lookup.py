"""Every model lookup goes through the model store's root (the add-on's Models folder, else $HEADFORGE_MODELS);
nothing looks in a development checkout (../shared)."""
import shutil
import sys
import types

import numpy as np
import pytest

from headforge.backend.errors import ModelMissingError
from headforge.backend.models import store


@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    """An empty models root, no explicit ICT file, and the repository next to ../shared as in development."""
    monkeypatch.setenv("HEADFORGE_MODELS", str(tmp_path / "env-models"))
    monkeypatch.delenv("HEADFORGE_ICT", raising=False)
    monkeypatch.delenv("HEADFORGE_SHARED", raising=False)
    monkeypatch.setattr(store, "_override", None)
    return tmp_path


def test_ict_is_not_found_in_a_development_checkout(empty_store, shared):
    from headforge.backend.face import pose
    from headforge.backend.headmodel import ict

    assert (shared / "data/ict_facekit/ict_face_light.npz").is_file()  # it is there, and must not be used
    assert ict.default_ict_path() is None
    with pytest.raises(ModelMissingError) as e:
        ict.load_ict()
    assert e.value.code == "model.ict_missing"
    assert "headforge models download ict-facekit" in e.value.hint
    assert "Preferences → HeadForge → Models" in e.value.hint
    with pytest.raises(FileNotFoundError):
        pose._ict_path()


def test_ict_comes_from_the_preferences_models_folder(empty_store, shared):
    from headforge.backend.face import pose
    from headforge.backend.headmodel import ict

    prefs = empty_store / "prefs-models"
    (prefs / "ict_facekit").mkdir(parents=True)
    npz = shutil.copy(shared / "data/ict_facekit/ict_face_light.npz", prefs / "ict_facekit")
    store.set_root(prefs)
    try:
        assert ict.default_ict_path() == prefs / "ict_facekit/ict_face_light.npz"
        assert pose._ict_path() == prefs / "ict_facekit/ict_face_light.npz"
        model = ict.load_ict()
        assert model.info["file"] == str(prefs.resolve() / "ict_facekit/ict_face_light.npz")
        assert model.neutral.shape[0] == np.load(npz)["neutral"].shape[0]
    finally:
        store.set_root(None)


def test_birefnet_comes_from_the_preferences_models_folder(empty_store):
    from headforge.backend.face import matte

    prefs = empty_store / "prefs-models"
    (prefs / "birefnet-portrait").mkdir(parents=True)
    (prefs / "birefnet-portrait" / "my-export.onnx").write_bytes(b"onnx")
    (prefs / "birefnet").mkdir()
    (prefs / "birefnet" / "BiRefNet-general-epoch_244.onnx").write_bytes(b"onnx")
    assert matte.find_birefnet() is None  # $HEADFORGE_MODELS is empty
    store.set_root(prefs)
    try:
        assert matte.find_birefnet() == prefs / "birefnet-portrait" / "my-export.onnx"  # the portrait model first
        option = empty_store / "option-models"
        (option / "birefnet").mkdir(parents=True)
        (option / "birefnet" / "x.onnx").write_bytes(b"onnx")
        assert matte.find_birefnet(option) == option / "birefnet" / "x.onnx"  # the face stage's option wins
    finally:
        store.set_root(None)


def test_lpips_weights_come_from_the_models_store(empty_store, monkeypatch):
    """metrics.lpips reads <models root>/lpips/alex.pth (the `lpips` package is optional; a recording stand-in
    for it shows which file the metric would load)."""
    import torch

    from headforge.backend import metrics

    loaded = []

    class LPIPS:
        def __init__(self, net, pretrained, model_path, verbose):
            loaded.append(model_path)

        def __call__(self, a, b):
            return (a - b).abs().mean()

    monkeypatch.setitem(sys.modules, "lpips", types.SimpleNamespace(LPIPS=LPIPS))
    img, ref = torch.zeros(8, 8, 3), torch.ones(8, 8, 3)
    assert metrics.lpips(img, ref) is None and loaded == []  # no weights installed
    prefs = empty_store / "prefs-models"
    (prefs / "lpips").mkdir(parents=True)
    (prefs / "lpips" / "alex.pth").write_bytes(b"weights")
    store.set_root(prefs)
    try:
        assert metrics.lpips(img, ref) == pytest.approx(2.0)
    finally:
        store.set_root(None)
    assert loaded == [str(prefs / "lpips" / "alex.pth")]
