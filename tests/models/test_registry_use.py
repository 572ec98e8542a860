"""The registry offers only assets some code reads: each installed asset is found by its consumer."""
import contextlib
import io

import pytest

from headforge.backend.models import registry, store

# HQ-Head files are inputs of the ID-TS converter (python -m headforge.backend.idts.converter), by option.
CONVERTER_OPTION = {"hqhead-stage1": "--low", "hqhead-stage2": "--high", "hqhead-arcface": "--arcface",
                    "clip-vit-h14": "--open-clip", "aesthetic-predictor": "--aesthetic"}


def install_empty(asset, root):
    for f in asset.files:
        for name in f.installed_names:
            path = store.asset_dir(asset, root) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")


def converter_help(module: str = "idts") -> str:
    import importlib

    converter = importlib.import_module(f"headforge.backend.{module}.converter")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        converter.main(["--help"])
    return " ".join(out.getvalue().split())


@pytest.mark.parametrize("model_id", list(registry.ASSETS))
def test_each_asset_is_read_by_some_code(model_id, tmp_path):
    from headforge.backend.face import detect, identity, matte

    asset = registry.get(model_id)
    root = tmp_path / "models"
    install_empty(asset, root)
    names = [n for f in asset.files for n in f.installed_names]
    if model_id == "ict-facekit":
        assert store.asset_dir(asset, root) == store.model_path("ict_facekit", root=root)
        assert {"generic_neutral_mesh.obj", "identity000.obj", "identity099.obj"} <= set(names)
    elif model_id == "yunet":
        assert detect.find_yunet(root) == (store.asset_dir(asset, root) / names[0]).resolve()
    elif model_id.startswith("insightface-"):
        pack = model_id.split("-", 1)[1]
        assert detect.find_scrfd(pack, root) == (store.asset_dir(asset, root) / detect.SCRFD_PACKS[pack]).resolve()
        assert set(identity.ARCFACE_FILES) & set(names)
    elif model_id.startswith("birefnet"):
        assert matte.find_birefnet(root) == store.asset_dir(asset, root) / names[0]
    elif model_id in CONVERTER_OPTION:
        text = converter_help()
        option = CONVERTER_OPTION[model_id]
        described = text.rsplit(option, 1)[1][:120]  # the option's line in the help's options section
        assert all(n in described for n in names), (option, described)
    elif model_id == "hqhead-lgm":  # the LGM converter's input (python -m headforge.backend.lgm.converter)
        assert names == ["recon.safetensors"]
        assert "--recon RECON HQ-Head ckpts/recon.safetensors" in converter_help("lgm")
    elif model_id == "flame":
        assert asset.user_supplied  # read from the file the user names (rig.head_model_path)
    else:
        pytest.fail(f"{model_id}: no code reads this asset; drop it from the registry")


@pytest.mark.parametrize("gone", ["svd-xt", "hqhead-birefnet", "clip-vit-l14"])
def test_assets_nothing_reads_are_not_offered(gone):
    """SVD-XT configs and the PyTorch BiRefNet are read by no code; ViT-L-14.pt is a TorchScript file the converter
    refuses (torch.load(weights_only=True))."""
    from headforge.backend.errors import ModelMissingError

    with pytest.raises(ModelMissingError) as e:
        registry.get(gone)
    assert e.value.code == "model.unknown"


def test_ict_facekit_is_offered_first():
    assert next(iter(registry.ASSETS)) == "ict-facekit"
