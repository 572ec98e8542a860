"""Training-test helpers: a small stage folder (builders 'small') and a tiny synthetic dataset in the contract
layout (backend/train/synthetic.py: sphere heads rendered through the rig's cameras)."""
from __future__ import annotations

from pathlib import Path

import pytest

from headforge.backend.train.synthetic import make_dataset
from tests.idts.conftest import _torch_threads  # noqa: F401  (one intra-op thread, as for ID-TS and LGM)

IDENTITIES = {"red": ((0.85, 0.3, 0.25), 0.2, "train"), "green": ((0.3, 0.75, 0.35), 0.8, "train"),
              "blue": ((0.3, 0.4, 0.85), 0.5, "test")}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("train-data"), IDENTITIES, size=64, landmarks=True)


def save_small_stage(folder: Path, stage: str = "low") -> Path:
    from headforge.backend.idts.builders import SMALL_RESOLUTION, build_components, save_stage

    parts = build_components("small", seed=0 if stage == "low" else 1)
    return save_stage(parts, folder, stage, resolution=SMALL_RESOLUTION[stage], source="tests (builders small)")


@pytest.fixture(scope="session")
def small_low_stage(tmp_path_factory) -> Path:
    return save_small_stage(tmp_path_factory.mktemp("stage") / "low", "low")


def base_config(model: Path, dataset: Path, output: Path, **over) -> dict:
    cfg = {"stage": "low", "model": str(model), "dataset": str(dataset), "output": str(output), "steps": 4,
           "num_frames": 4, "lr": 1e-3, "ema_decay": 0.9, "checkpoint_every": 100, "log_every": 1,
           "log_with": "jsonl", "losses": {"lpips": 0.0, "expression": 0.0}}
    cfg.update(over)
    return cfg
