"""Shared helpers for the ID-TS parity tests: fixture loading and the fixtures' deterministic weights."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

SHARED = Path(os.environ.get("HEADFORGE_SHARED", Path(__file__).resolve().parents[3] / "shared"))
FIXTURES = SHARED / "fixtures" / "idts"


def _fill_module():
    spec = importlib.util.spec_from_file_location("hf_fill_params", SHARED / "fixtures" / "fill_params.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Fixture:
    """One fixture: `.meta` (the JSON), `.t` (tensors, cloned), `.weights(list_key, prefix)`."""

    def __init__(self, name: str):
        from safetensors.torch import load_file

        self.name = name
        self.meta = json.loads((FIXTURES / f"{name}.json").read_text())
        self.t = {k: v.clone() for k, v in load_file(str(FIXTURES / f"{name}.safetensors")).items()}
        self._full: dict[str, dict] = {}

    def weights(self, list_key: str = "keys", prefix: str = "") -> dict[str, torch.Tensor]:
        """Fill-rule weights of a key list (cached), with `prefix` stripped from the keys."""
        if list_key not in self._full:
            self._full[list_key] = _fill_module().regenerate(self.meta[list_key])
        return {k[len(prefix):]: v for k, v in self._full[list_key].items() if k.startswith(prefix)}


@pytest.fixture(scope="package", autouse=True)
def _torch_threads():
    """One intra-op thread for these tiny models (much faster on a shared, oversubscribed CPU); restored after."""
    prev = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("HEADFORGE_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="session")
def fixtures():
    if not FIXTURES.is_dir():
        pytest.skip(f"ID-TS fixtures not found at {FIXTURES}")
    cache: dict[str, Fixture] = {}

    def get(name: str) -> Fixture:
        if name not in cache:
            cache[name] = Fixture(name)
        return cache[name]

    return get


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


@pytest.fixture(scope="session")
def tiny_unet(fixtures):
    """The fixtures' tiny UNet as an `IDTSUNet`, weights from the fill rule through our key map."""
    from headforge.backend.idts.keymaps import convert_unet
    from headforge.backend.idts.unet import TINY_UNET_CONFIG, IDTSUNet

    unet = IDTSUNet(**TINY_UNET_CONFIG).eval()
    state = convert_unet(fixtures("unet_tiny").weights(prefix="model.diffusion_model."), TINY_UNET_CONFIG)
    unet.load_state_dict(state, strict=True)
    return unet


def tiny_component(name: str, state: dict):
    """Build one tiny component and load `state` (reference layout, prefix stripped) through the converter."""
    from headforge.backend.idts.converter import component_specs

    spec = component_specs("tiny")[name]
    model = spec.build().eval()
    converted, _ = spec.convert(state)
    model.load_state_dict(converted, strict=True)
    return model


def sub(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


@pytest.fixture(scope="session")
def tiny_conditioner(fixtures):
    """The conditioner fixture's models (tiny CLIP stand-ins, real IR-SE-50 + MLP, tiny concat VAE)."""
    from headforge.backend.idts.conditioner import IDTSConditioner

    w = fixtures("conditioner").weights()
    return IDTSConditioner(
        image_encoder=tiny_component("image_encoder", sub(w, "conditioner.embedders.0.open_clip.model.")),
        aesthetic_encoder=tiny_component("aesthetic_encoder", sub(w, "conditioner.embedders.1.aesthetic_model.")),
        aesthetic_mlp=tiny_component("aesthetic_mlp", sub(w, "conditioner.embedders.1.aesthetic_mlp.")),
        identity_encoder=tiny_component("identity_encoder", sub(w, "conditioner.embedders.5.")),
        concat_vae=tiny_component("concat_vae", sub(w, "conditioner.embedders.3.encoder.")),
    ).eval()


@pytest.fixture(scope="session")
def tiny_vaes(fixtures):
    """(first-stage VAE, concat-encoder VAE) of `sampler_tiny`, through the converter's VAE key map."""
    fx = fixtures("sampler_tiny")
    vae = tiny_component("vae", fx.weights("first_stage_keys", "first_stage_model."))
    concat_vae = tiny_component("concat_vae", fx.weights("concat_embedder_keys", "conditioner.embedders.3.encoder."))
    return vae, concat_vae
