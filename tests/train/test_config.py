"""The training config is validated before anything runs: each mistake gets its own code, naming the option."""
from __future__ import annotations

import json

import pytest

from headforge.backend.errors import HeadForgeError
from headforge.backend.train.config import load_config, parse_config

from .conftest import base_config


def _code(raw: dict) -> str:
    with pytest.raises(HeadForgeError) as e:
        parse_config(raw)
    return e.value.code


def test_formats_read_the_same(tmp_path, small_low_stage, tiny_dataset):
    raw = base_config(small_low_stage, tiny_dataset, tmp_path / "out", steps=7, losses={"lpips": 0.5})
    (tmp_path / "c.json").write_text(json.dumps(raw))
    yaml_text = "\n".join(f"{k}: {json.dumps(v)}" for k, v in raw.items())  # JSON values are valid YAML
    (tmp_path / "c.yaml").write_text(yaml_text)
    toml_lines = [f"{k} = {json.dumps(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    toml_lines += ["[losses]"] + [f"{k} = {v}" for k, v in raw["losses"].items()]
    (tmp_path / "c.toml").write_text("\n".join(toml_lines))
    cfgs = [load_config(tmp_path / f"c.{ext}") for ext in ("json", "yaml", "toml")]
    assert cfgs[0] == cfgs[1] == cfgs[2]
    assert cfgs[0].steps == 7 and cfgs[0].losses.lpips == 0.5 and cfgs[0].losses.identity == 1.0
    # Relative paths are taken from the config file's folder.
    rel = dict(raw, output="runs/a")
    (tmp_path / "r.json").write_text(json.dumps(rel))
    assert load_config(tmp_path / "r.json").output == str(tmp_path / "runs" / "a")


def test_each_mistake_has_its_code(tmp_path, small_low_stage, tiny_dataset):
    good = base_config(small_low_stage, tiny_dataset, tmp_path / "out")
    assert _code(dict(good, stpes=3)) == "train.config.unknown_key"
    assert _code({k: v for k, v in good.items() if k != "dataset"}) == "train.config.missing_key"
    assert _code(dict(good, stage="mid")) == "train.config.bad_value"
    assert _code(dict(good, steps=0)) == "train.config.bad_value"
    assert _code(dict(good, lr="fast")) == "train.config.bad_value"
    assert _code(dict(good, mixed_precision="fp8")) == "train.config.bad_value"
    assert _code(dict(good, resolution=100)) == "train.config.bad_value"
    assert _code(dict(good, num_frames=20)) == "train.config.bad_value"
    assert _code(dict(good, losses={"identiy": 1.0})) == "train.config.unknown_key"
    assert _code(dict(good, losses={"diffusion": 0, "lpips": 0, "identity": 0, "expression": 0})) == \
        "train.config.no_loss"
    assert _code(dict(good, ema_decay=1.0)) == "train.config.bad_value"
    assert _code(dict(good, start_frames=[0, 16])) == "train.config.bad_value"


def test_inputs_are_checked_before_loading(tmp_path, small_low_stage, tiny_dataset):
    def code_of(raw):
        (tmp_path / "c.json").write_text(json.dumps(raw))
        with pytest.raises(HeadForgeError) as e:
            load_config(tmp_path / "c.json")
        return e.value.code

    good = base_config(small_low_stage, tiny_dataset, tmp_path / "out")
    assert code_of(dict(good, model=str(tmp_path / "nowhere"))) == "train.config.no_model"
    assert code_of(dict(good, stage="high")) == "train.config.stage_mismatch"
    assert code_of(dict(good, dataset=str(tmp_path))) == "train.config.no_dataset"
    (tmp_path / "bad.yaml").write_text("stage: [low\n")
    with pytest.raises(HeadForgeError) as e:
        load_config(tmp_path / "bad.yaml")
    assert e.value.code == "train.config.syntax"
    with pytest.raises(HeadForgeError) as e:
        load_config(tmp_path / "c.ini")
    assert e.value.code == "train.config.missing"
