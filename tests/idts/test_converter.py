"""The checkpoint converter: every key of the real stage checkpoints (checkpoint_keys.json) mapped to a parameter of
the same shape, nothing missing or left over (checked on meta tensors); a real round trip on a synthetic tiny
checkpoint laid out like the released ones reproduces the fixtures; bad checkpoints fail with clear messages."""
import collections
import json

import pytest
import torch

from headforge.backend.idts.converter import (CheckpointError, component_specs, convert_checkpoint, map_components)
from headforge.backend.idts.pipeline import ModelFilesMissing, StageModels

from .conftest import FIXTURES, max_abs

TEXT_KEYS = 12  # CLIP text-side tensors kept in the checkpoint next to the two image towers


@pytest.fixture(scope="module")
def meta_models():
    with torch.device("meta"):
        return {c: s.build() for c, s in component_specs("real").items()}


@pytest.mark.parametrize("stage", ["stage1_low", "stage2_high"])
def test_real_checkpoint_layout_maps_completely(stage, meta_models):
    info = json.loads((FIXTURES / "checkpoint_keys.json").read_text())[stage]
    state = {e["key"]: torch.empty(e["shape"], device="meta") for e in info["keys"]}
    assert len(state) == info["n_tensors"] == 3467
    converted, report = map_components(state, "real", models=meta_models)
    print(f"{stage}: {len(report.mapped)} mapped, {len(report.ignored)} ignored, unknown {len(report.unknown)}, "
          f"missing {sum(map(len, report.missing.values()))}, shape mismatches {len(report.shape_mismatch)}")
    assert report.ok, (report.unknown[:5], report.shape_mismatch[:5], {k: v[:3] for k, v in report.missing.items()})
    assert len(report.mapped) + len(report.ignored) == len(state)  # every key consumed exactly once
    assert set(report.mapped).isdisjoint(report.ignored)
    groups = collections.Counter(k.split(".")[0] for k in report.ignored)
    assert groups == {"lpips": 33, "id_model": 397, "conditioner": TEXT_KEYS}
    for comp, model in meta_models.items():  # every parameter filled, element counts equal
        expected = model.state_dict()
        assert set(converted[comp]) == set(expected)
        assert sum(v.numel() for v in converted[comp].values()) == sum(v.numel() for v in expected.values())
    unet_elements = info["groups"]["model.diffusion_model"]["n_elements"]
    assert sum(p.numel() for p in meta_models["unet"].parameters()) == unet_elements


def _tiny_checkpoint(fixtures) -> dict:
    """A tiny DeepSpeed-style checkpoint: {'module': {'module.<key>': tensor}} with every component's keys."""
    state = {}
    state.update({"model.diffusion_model." + k: v for k, v in
                  fixtures("unet_tiny").weights(prefix="model.diffusion_model.").items()})
    state.update({"first_stage_model." + k: v for k, v in
                  fixtures("sampler_tiny").weights("first_stage_keys", "first_stage_model.").items()})
    state.update({k: v for k, v in fixtures("conditioner").weights().items()})
    state["lpips.net.slice1.0.weight"] = torch.zeros(2, 3, 3, 3)
    state["id_model.input_layer.0.weight"] = torch.zeros(64, 3, 3, 3)
    return {"module": {"module." + k: v for k, v in state.items()}, "global_steps": 1, "ds_version": "0.14"}


@pytest.fixture(scope="module")
def tiny_ckpt(fixtures, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "low_stage.pt"
    torch.save(_tiny_checkpoint(fixtures), path)
    return path


def test_round_trip_reproduces_fixtures(fixtures, tiny_ckpt, tmp_path):
    out = tmp_path / "low_stage"
    report = convert_checkpoint(tiny_ckpt, out, "low", size="tiny", dtype=torch.float32)
    assert report.ok and len(report.ignored) == 2 + TEXT_KEYS
    models = StageModels.from_pretrained(out, "low", dtype=torch.float32, resolution=128)
    u, c, s = fixtures("unet_tiny").t, fixtures("conditioner").t, fixtures("sampler_tiny").t
    assert models.conditioner.chunk == 16  # taken from the tiny UNet's 48-d vector input
    models.conditioner.chunk = 256  # the conditioner fixture was made with the real 256-d chunks
    with torch.no_grad():
        out_u = models.unet(u["x"], u["timesteps"], u["context"], u["y"], num_frames=4)
        cond, _ = models.conditioner(c["image"][None], c["cond_frames"], c["elevation"], c["cond_aug"], num_frames=4)
        dec = models.vae.decode(s["s1_samples"][:1] / 0.18215).sample
    errs = {"unet_out": max_abs(out_u, u["out"]), "c_crossattn": max_abs(cond.crossattn, c["c_crossattn"]),
            "c_vector": max_abs(cond.vector, c["c_vector"]), "c_concat": max_abs(cond.concat, c["c_concat"]),
            "s1_decoded[0]": max_abs(dec, s["s1_decoded"][:1])}
    print("converter round trip max|diff|", errs)
    assert errs["unet_out"] < 1e-5 and errs["c_crossattn"] < 1e-5 and errs["c_vector"] < 1e-5
    assert errs["c_concat"] < 5e-5 and errs["s1_decoded[0]"] < 5e-5
    with pytest.raises(ValueError, match="'low' stage"):
        StageModels.from_pretrained(out, "high", dtype=torch.float32)


def test_incomplete_checkpoint_names_file_and_keys(fixtures, tmp_path):
    ck = _tiny_checkpoint(fixtures)
    dropped = [k for k in ck["module"] if k.startswith("module.model.diffusion_model.output_blocks.5.")]
    for k in dropped:
        del ck["module"][k]
    ck["module"]["module.model.diffusion_model.extra_head.weight"] = torch.zeros(4, 4)
    path = tmp_path / "high_stage.pt"
    torch.save(ck, path)
    with pytest.raises(CheckpointError) as err:
        convert_checkpoint(path, tmp_path / "out", "high", size="tiny")
    msg = str(err.value)
    assert "high_stage.pt" in msg and f"unet: {len(dropped)} tensors missing" in msg
    assert "up_blocks.1.attentions.2" in msg or "up_blocks.1.resnets.2" in msg
    assert "1 unknown keys" in msg and "model.diffusion_model.extra_head.weight" in msg


class NotWeights:  # an arbitrary class: weights_only unpickling must refuse it
    pass


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "low_stage.pt"
    torch.save({"module": {}, "extra": NotWeights()}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        convert_checkpoint(path, tmp_path / "out", "low", size="tiny")


def test_missing_folder_lists_files(tmp_path):
    with pytest.raises(ModelFilesMissing) as err:
        StageModels.from_pretrained(tmp_path / "nothing", "low")
    assert any("unet" in m for m in err.value.missing) and any("idts_stage.json" in m for m in err.value.missing)


def test_wrong_stage_file_is_refused(tiny_ckpt, tmp_path):
    with pytest.raises(CheckpointError, match="low-stage checkpoint"):
        convert_checkpoint(tiny_ckpt, tmp_path / "out", "high", size="tiny")
