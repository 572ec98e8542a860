"""Parity of the spatio-temporal UNet and the v-scaling denoiser with `unet_tiny` / `denoiser_tiny`."""
import torch

from headforge.backend.idts import sampler
from headforge.backend.idts.keymaps import convert_unet
from headforge.backend.idts.unet import TINY_UNET_CONFIG, IDTSUNet

from .conftest import max_abs

TOL = 1e-5  # float32 round-off on outputs of magnitude ~1-3 (SPEC 8 measured 3.5e-6 for this port)


def test_unet_tiny_every_key_maps(fixtures):
    unet = IDTSUNet(**TINY_UNET_CONFIG)
    fx = fixtures("unet_tiny")
    state = convert_unet(fx.weights(prefix="model.diffusion_model."), TINY_UNET_CONFIG)
    ours = unet.state_dict()
    assert len(state) == len(fx.meta["keys"]) == len(ours)
    assert set(state) == set(ours)
    assert all(state[k].shape == ours[k].shape for k in ours)
    assert sum(v.numel() for v in ours.values()) == fx.meta["n_params"]


def test_unet_tiny(fixtures, tiny_unet):
    t = fixtures("unet_tiny").t
    with torch.no_grad():
        out = tiny_unet(t["x"], t["timesteps"], t["context"], t["y"], num_frames=4,
                        image_only_indicator=t["image_only_indicator"])
        out_b = tiny_unet(t["x"], t["timesteps"], t["context"], t["y"], num_frames=4,
                          image_only_indicator=t["image_only_indicator_b"])
    err, err_b = max_abs(out, t["out"]), max_abs(out_b, t["out_b"])
    print(f"unet_tiny max|diff| out={err:.3g} out_b={err_b:.3g} (tol {TOL})")
    assert err < TOL and err_b < TOL
    assert max_abs(out, out_b) > 1e-2  # the indicator matters, so out_b checks the alpha path


def test_denoiser_tiny(fixtures, tiny_unet):
    t = fixtures("denoiser_tiny").t
    for got, name in zip(sampler.v_scalings(t["sigma"]), ["c_skip", "c_out", "c_in", "c_noise"]):
        assert max_abs(got, t[name]) <= 1e-7, name
    seen = {}

    def unet(x, *args, **kw):
        seen["in"] = x
        seen["out"] = tiny_unet(x, *args, **kw)
        return seen["out"]

    cond = sampler.Conditioning(t["crossattn"], t["vector"], t["concat"])
    with torch.no_grad():
        den = sampler.denoise(unet, t["input"], t["sigma"], cond, num_frames=4,
                              image_only_indicator=t["image_only_indicator"])
    errs = {"network_input": max_abs(seen["in"], t["network_input"]),
            "network_output": max_abs(seen["out"], t["network_output"]),
            "denoised": max_abs(den, t["denoised"])}
    print("denoiser_tiny max|diff|", errs, f"(tol {TOL})")
    assert errs["network_input"] <= 1e-6
    assert errs["network_output"] < TOL and errs["denoised"] < TOL
