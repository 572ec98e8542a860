"""`benchmarks/idts_speed.py` runs at small size on the CPU (the CI smoke test) and builds the full-size models."""
import importlib.util
from pathlib import Path

import torch

from headforge.backend.idts.builders import build_components

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "idts_speed.py"


def test_benchmark_small_cpu():
    spec = importlib.util.spec_from_file_location("idts_speed", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--size", "small", "--device", "cpu", "--steps", "2", "--rings", "1"])
    assert out["unet_calls_per_ring"] == 4 and out["unet_eval_s"] > 0
    assert out["views_96_projected"] and out["views_96_s"] > out["ring_s"] > 0
    assert set(out["per_stage_ring_s"]) == {"low", "high"}


def test_full_size_models_build_from_real_configs():
    parts = build_components("real", device="meta")
    counts = {k: sum(p.numel() for p in m.state_dict().values()) for k, m in parts.items()}
    assert counts["unet"] == 1_524_623_082 and counts["vae"] == counts["concat_vae"] == 83_653_863
    on_cpu = sum(p.numel() for p in parts["unet"].parameters() if p.device != torch.device("meta"))
    assert on_cpu < 1000  # only AlphaBlender's scalar mix factors escape the meta device
