"""The recon.safetensors converter: key-complete on the real 'big' list; incomplete or mis-shaped files refused."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from headforge.backend.lgm import converter
from headforge.backend.lgm.model import LGMModel

from .conftest import max_err


def test_big_model_is_key_complete_on_the_real_list(lgm_fixture):
    meta, _ = lgm_fixture
    real = {e["key"]: tuple(e["shape"]) for e in meta["keys_big"]}
    assert len(real) == 376
    rep = converter.check_keys(real, "big")
    assert rep.ok and len(rep.mapped) == 376 and not rep.missing and not rep.unknown and not rep.shape_mismatch
    shapes = converter.expected_shapes("big")
    assert list(shapes) == [e["key"] for e in meta["keys_big"]]  # same names in the same order
    n = sum(torch.Size(s).numel() for s in shapes.values())
    assert n == meta["n_params_big"] == 415_042_848
    # LPIPS weights (training loss only) are ignored, not unknown
    rep = converter.check_keys({**real, "lpips.net.slice1.0.weight": (64, 3, 3, 3)}, "big")
    assert rep.ok and rep.ignored == ["lpips.net.slice1.0.weight"]


def test_converts_a_tiny_file_and_refuses_missing_or_misshapen_keys(tmp_path, tiny_weights, lgm_fixture, capsys):
    _, t = lgm_fixture
    good = tmp_path / "recon.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_weights.items()}, str(good))
    assert converter.main(["--recon", str(good), "--out", str(tmp_path / "out"), "--size", "tiny",
                           "--dtype", "fp32"]) == 0
    model = LGMModel.from_pretrained(str(tmp_path / "out")).eval()
    with torch.no_grad():
        assert max_err(model(t["input"][None]), t["gaussians"]) < 1e-5

    # the tiny file given as the big model: every mis-shaped key and the missing shortcut convs are named
    with pytest.raises(converter.LGMCheckpointError) as e:
        converter.convert(good, tmp_path / "big")
    msg = str(e.value)
    assert "8 of its tensors are missing" in msg and "unet.down_blocks.1.nets.0.shortcut.weight" in msg
    assert "unet.conv_in.weight: (32, 9, 3, 3) in the file, (64, 9, 3, 3) expected" in msg
    assert not (tmp_path / "big").exists()

    # missing keys and a foreign key
    partial = {k: v for k, v in tiny_weights.items() if k not in ("conv.weight", "unet.norm_out.bias")}
    partial["decoder.weight"] = torch.zeros(3)
    bad = tmp_path / "partial.safetensors"
    save_file(partial, str(bad))
    assert converter.main(["--recon", str(bad), "--out", str(tmp_path / "o2"), "--size", "tiny"]) == 2
    out = capsys.readouterr().out
    assert "2 of its tensors are missing: unet.norm_out.bias, conv.weight" in out
    assert "1 keys are not LGM's: decoder.weight" in out
    assert not (tmp_path / "o2").exists()

    # not a safetensors file at all
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(converter.LGMCheckpointError) as e:
        converter.convert(junk, tmp_path / "o3", "tiny")
    assert "not a readable .safetensors" in str(e.value)


def test_registry_offers_the_file_the_converter_reads(capsys):
    """hqhead-lgm is recon.safetensors, the converter's --recon input; its output folder is where splat.init looks."""
    from headforge.backend.lgm.splat_init import weights_dir
    from headforge.backend.models import registry, store

    asset = registry.get("hqhead-lgm")
    assert [n for f in asset.files for n in f.installed_names] == ["recon.safetensors"]
    with pytest.raises(SystemExit):
        converter.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--recon RECON HQ-Head ckpts/recon.safetensors" in help_text
    assert weights_dir() == store.model_path("lgm") and "headforge.backend.lgm.converter" in asset.note
