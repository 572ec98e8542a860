"""`benchmarks/idts_speed.py` runs at small size on the CPU (the CI smoke test) and builds the full-size models."""
import importlib.util
from pathlib import Path

import pytest
import torch

from headforge.backend.idts.builders import build_components

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "idts_speed.py"


def _bench():
    spec = importlib.util.spec_from_file_location("idts_speed", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_small_cpu_counts_what_the_stage_runs_between_rings():
    mod = _bench()
    out = mod.main(["--size", "small", "--device", "cpu", "--steps", "2", "--rings", "1", "--seed-fit-steps", "5",
                    "--matte", "white"])
    assert out["unet_calls_per_ring"] == 4 and out["unet_eval_s"] > 0
    assert set(out["per_stage_ring_s"]) == {"low", "high"}
    # the stage ran one ring, matted its 16 views and fitted the seed of the next ring before it was stopped
    assert out["rings_run"] == 1 and out["mattes"] == 16 and out["matte_method"] == "white"
    assert out["seed_fits"] == 1 and out["seed_fit_rings"] == [1] and out["seed_fallbacks"] == 0
    assert out["seed_fit_s"][0] > 0 and out["matte_ring_s"] > 0
    # 96 views: 6 rings with their mattes plus 5 seed fits, not 6 x one ring
    assert out["views_96_projected"]
    expected = 6 * (out["ring_s"] + out["matte_ring_s"] + out["other_ring_s"]) + 5 * out["seed_fit_s"][0]
    # each printed figure is rounded to 1 ms: 18 rounded terms of 6 rings, 5 of the seed fits and the total itself
    rounding = (6 * 3 + 5 + 1) * 5e-4
    assert out["views_96_s"] == pytest.approx(expected, rel=0, abs=rounding)
    assert out["views_96_s"] >= out["rings_only_96_s"] + 5 * out["seed_fit_s"][0] - 1e-2


def test_benchmark_rejects_a_ring_count_the_rig_lacks():
    with pytest.raises(SystemExit):
        _bench().main(["--size", "small", "--device", "cpu", "--rings", "7"])


def test_full_size_models_build_from_real_configs():
    parts = build_components("real", device="meta")
    counts = {k: sum(p.numel() for p in m.state_dict().values()) for k, m in parts.items()}
    assert counts["unet"] == 1_524_623_082 and counts["vae"] == counts["concat_vae"] == 83_653_863
    on_cpu = sum(p.numel() for p in parts["unet"].parameters() if p.device != torch.device("meta"))
    assert on_cpu < 1000  # only AlphaBlender's scalar mix factors escape the meta device
