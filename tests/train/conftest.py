"""Training-test helpers: a small stage folder (builders 'small') and tiny datasets in the contract layout.

The dataset's heads are analytic renders through the rig's own cameras (backend/cameras.py): a shaded sphere per
identity (its colour), with two dark eyes and a mouth whose height is the expression; alpha is the silhouette.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from headforge.backend.cameras import rig_cameras, save_cameras_json

HEAD_RADIUS = 0.1


@pytest.fixture(scope="package", autouse=True)
def _torch_threads():
    """One intra-op thread (the shared CPU is oversubscribed); restored after."""
    prev = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("HEADFORGE_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(prev)


def render_head(cam: dict, colour, mouth: float) -> np.ndarray:
    """uint8 RGBA [S, S, 4] of the sphere head seen by a cameras.json entry (OpenCV K, w2c)."""
    S = int(cam["width"])
    K, w2c = np.asarray(cam["K"]), np.asarray(cam["w2c"])
    c2w = np.linalg.inv(w2c)
    v, u = np.mgrid[0:S, 0:S].astype(np.float64)
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d = d_cam @ c2w[:3, :3].T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    o = c2w[:3, 3]
    b = d @ o
    disc = b ** 2 - (o @ o - HEAD_RADIUS ** 2)
    hit = disc > 0
    t = -b - np.sqrt(np.where(hit, disc, 0))
    n = (o + t[..., None] * d) / HEAD_RADIUS
    light = np.clip(n @ np.array([0.3, -0.8, 0.5]) / np.linalg.norm([0.3, -0.8, 0.5]), 0, 1)
    rgb = np.asarray(colour, np.float64)[None, None] * (0.45 + 0.55 * light[..., None])
    for eye in ((0.35, -0.85, 0.3), (-0.35, -0.85, 0.3)):
        e = np.asarray(eye) / np.linalg.norm(eye)
        rgb[(n @ e) > 0.985] = 0.05
    mouth_dir = np.array([0.0, -0.9, -0.4]) / np.linalg.norm([0.0, -0.9, -0.4])
    lateral = n[..., 0]
    vertical = n @ np.array([0.0, 0.4, -0.9]) / np.linalg.norm([0.0, 0.4, -0.9])
    in_mouth = ((n @ mouth_dir) > 0.8) & (np.abs(lateral) < 0.3) & (np.abs(vertical - 0.4) < 0.04 + 0.12 * mouth)
    rgb[in_mouth] = (0.5, 0.1, 0.1)
    rgba = np.zeros((S, S, 4))
    rgba[..., :3] = np.where(hit[..., None], rgb, 0.0)
    rgba[..., 3] = hit
    return (np.clip(rgba, 0, 1) * 255).round().astype(np.uint8)


def mouth_points(cam: dict, mouth: float) -> np.ndarray | None:
    """Pixel positions of a few points around the mouth (for a landmarks.json), None when it faces away."""
    from headforge.backend.cameras import project

    pts = []
    for x in (-0.2, 0.0, 0.2):
        for dz in (-0.05 * mouth, 0.05 * mouth):
            p = np.array([x, -0.9, -0.4 + dz])
            pts.append(HEAD_RADIUS * p / np.linalg.norm(p))
    pts = np.asarray(pts)
    c2w = np.linalg.inv(np.asarray(cam["w2c"]))
    if np.mean((c2w[:3, 3] - pts) @ (pts.mean(0) / np.linalg.norm(pts.mean(0)))) <= 0:
        return None
    uv, _ = project(pts, cam)
    return uv


def make_dataset(root: Path, identities: dict, size: int = 64, landmarks: bool = False) -> Path:
    """identities {id: (rgb colour, mouth, split)} -> a dataset folder in the contract layout."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    seqs = []
    cams = rig_cameras(size)
    for sid, (colour, mouth, split) in identities.items():
        views = root / sid / "views"
        views.mkdir(parents=True, exist_ok=True)
        lm = {}
        for cam in cams:
            Image.fromarray(render_head(cam, colour, mouth), "RGBA").save(views / f"{cam['index']:03d}.png")
            if landmarks:
                pts = mouth_points(cam, mouth)
                if pts is not None:
                    lm[str(cam["index"])] = pts.tolist()
        save_cameras_json(views / "cameras.json", cams)
        (root / sid / "meta.json").write_text(json.dumps({"identity_embedding": None, "expression": {},
                                                          "source": "synthetic sphere", "licence": "CC0"}))
        if landmarks:
            (root / sid / "landmarks.json").write_text(json.dumps({"size": size, "views": lm}))
        seqs.append({"id": sid, "split": split, "identity": sid, "source": "synthetic", "licence": "CC0",
                     "kind": "mesh"})
    (root / "manifest.json").write_text(json.dumps({"format": "headforge-dataset", "version": 1, "size": size,
                                                    "sequences": seqs}))
    return root


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
