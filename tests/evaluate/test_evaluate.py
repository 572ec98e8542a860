"""`headforge evaluate`: the metric code against known values, missing metrics listed, and an end-to-end run of the
multi-view stage (small random-weight ID-TS) on a synthetic dataset's test split."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from headforge.backend import cameras as rig
from headforge.backend.dataset import layout
from headforge.backend.evaluate import metrics as M
from headforge.backend.evaluate.run import EvalOptions, _shrink, evaluate_dataset
from headforge.backend.fileio import write_json
from headforge.backend.idts.builders import SMALL_RESOLUTION, build_components
from tests.idts.conftest import _torch_threads  # noqa: F401  (one intra-op thread, as for ID-TS)





def _image(seed, size=48):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.2, 0.8, (size, size, 3))


def test_identical_images():
    from headforge.backend.idts.identity import IdentityEncoder
    from headforge.backend.lgm.lpips_vgg import LPIPSVGG

    torch.manual_seed(0)
    net = LPIPSVGG().eval()  # random weights: the distance of identical inputs is still exactly 0
    for lin in net.lins:  # LPIPS' trained heads are non-negative (a distance)
        lin.weight.data.abs_()
    enc = build_components("small", seed=0)["identity_encoder"].float().eval()
    assert isinstance(enc, IdentityEncoder)
    m = M.Metrics(lpips_net=net, identity_encoder=enc)
    a = _image(0)
    v = m.pair(a, a.copy(), m.embed(a))
    assert v["psnr"] == math.inf and v["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert v["lpips"] == 0.0 and v["csim"] == pytest.approx(1.0, abs=1e-6)
    w = m.pair(_image(1), a, m.embed(a))
    assert w["lpips"] > 1e-4 and w["csim"] < 1 - 1e-6 and w["ssim"] < 0.5


def test_known_shift_and_noise_give_the_analytic_psnr():
    a = _image(2)
    assert M.psnr(a + 0.1, a) == pytest.approx(20.0, abs=1e-9)  # mse 0.01
    assert M.psnr(a - 0.03, a) == pytest.approx(-10 * math.log10(0.03**2), abs=1e-9)
    noise = np.random.default_rng(3).standard_normal(a.shape) * 0.05
    expect = -10 * math.log10(np.mean(noise**2))
    assert M.psnr(a + noise, a) == pytest.approx(expect, abs=1e-9)
    assert M.psnr(a + noise, a) == pytest.approx(26.02, abs=0.1)  # σ = 0.05: 20·log10(1/0.05)
    # SSIM of a constant shift: luminance term only, (2μxμy + C1)/(μx² + μy² + C1) per window
    flat = np.full((40, 40, 3), 0.5)
    c1 = 0.01**2
    assert M.ssim(flat + 0.1, flat) == pytest.approx((2 * 0.6 * 0.5 + c1) / (0.36 + 0.25 + c1), abs=1e-9)


def test_metrics_do_not_depend_on_thread_count():
    from headforge.backend.lgm.lpips_vgg import LPIPSVGG

    torch.manual_seed(0)
    enc = build_components("small", seed=0)["identity_encoder"].float().eval()
    m = M.Metrics(lpips_net=LPIPSVGG().eval(), identity_encoder=enc)
    a, b = _image(4, 64), _image(5, 64)
    got = []
    for n in (1, 4):
        torch.set_num_threads(n)
        got.append(m.pair(a, b, m.embed(b)))
    torch.set_num_threads(1)
    assert got[0] == got[1]


def test_missing_weights_are_listed(tmp_path):
    m = M.Metrics(model_dir=tmp_path / "none", models_root=tmp_path)
    assert m.available == ["psnr", "ssim"]
    assert set(m.missing) == {"lpips", "csim", "dreamsim"} and all(m.missing.values())


def test_shrink_is_a_premultiplied_box_filter():
    rgba = np.zeros((4, 4, 4))
    rgba[:2, :2] = (1.0, 0.0, 0.0, 1.0)  # one opaque red quadrant, the rest transparent
    rgba[0, 0, 3] = 0.0
    s = _shrink(rgba, 2)
    assert s[0, 0, 3] == pytest.approx(0.75) and np.allclose(s[0, 0, :3], (1, 0, 0)) and s[1, 1, 3] == 0


def _white(rgba):
    return rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]


def _synthetic_dataset(root, size):
    """Two identities (train, test) whose 96 views are flat coloured discs: the layout, not the content, matters."""
    cams = rig.rig_cameras(size)
    seqs = []
    for n, (sid, split) in enumerate((("a", "train"), ("b", "test"))):
        vdir = layout.views_dir(root, sid)
        vdir.mkdir(parents=True)
        yy, xx = np.mgrid[:size, :size]
        for c in cams:
            img = np.zeros((size, size, 4), np.uint8)
            r = size * (0.3 + 0.1 * np.cos(np.radians(c["azimuth"])))
            disc = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < r * r
            img[disc] = (40 + 50 * n, 120 + c["ring"] * 10, 200 - c["k"] * 8, 255)
            Image.fromarray(img, "RGBA").save(vdir / f"{c['index']:03d}.png")
        rig.save_cameras_json(vdir / "cameras.json", cams)
        write_json(root / sid / "meta.json", {"identity_embedding": None, "expression": {}, "source": "synthetic",
                                              "licence": "CC0"})
        seqs.append({"id": sid, "split": split, "identity": sid, "source": "synthetic", "licence": "CC0",
                     "kind": "mesh"})
    write_json(root / "manifest.json", {"format": "headforge-dataset", "version": 1, "size": size, "sequences": seqs})


def test_evaluate_end_to_end_with_the_small_model(tmp_path, small_models):
    size = 2 * SMALL_RESOLUTION["high"]  # ground truth larger than the views: box-filtered down
    _synthetic_dataset(tmp_path / "ds", size)
    assert layout.check_dataset(tmp_path / "ds") == []
    out = tmp_path / "eval"
    opts = EvalOptions(models_dir=str(small_models), steps=2, keep_views=True, models_root=str(tmp_path))
    res = evaluate_dataset(tmp_path / "ds", out, opts)
    assert res["sequences"] == ["b"] and len(res["views"]) == 16
    assert res["metrics"] == ["psnr", "ssim", "csim"] and set(res["missing"]) == {"lpips", "dreamsim"}
    assert list(res["per_elevation"]) == ["0"] and len(res["per_azimuth"]) == 16
    # each figure is the named generated view against the ground truth of the same camera
    for row in res["views"][::5]:
        gen = np.asarray(Image.open(out / "b" / f"{row['view']:03d}.png")).astype(np.float64) / 255
        gen = gen[..., :3] * gen[..., 3:] + 1 - gen[..., 3:]
        gt = np.asarray(Image.open(layout.views_dir(tmp_path / "ds", "b") / f"{row['view']:03d}.png")) / 255.0
        gt = _shrink(gt, SMALL_RESOLUTION["high"])
        gt = gt[..., :3] * gt[..., 3:] + 1 - gt[..., 3:]
        assert row["psnr"] == pytest.approx(M.psnr(gen, gt), abs=1e-6) and row["ring"] == 1
    vals = [r["psnr"] for r in res["views"]]
    assert res["overall"]["psnr"]["mean"] == pytest.approx(np.mean(vals), abs=1e-6)
    assert res["overall"]["psnr"]["std"] == pytest.approx(np.std(vals), abs=1e-6)
    saved = json.loads((out / "results.json").read_text())
    assert saved["overall"] == res["overall"]
    # on the CPU the run uses a fixed thread count: the same figures whatever torch was set to before
    torch.set_num_threads(3)
    try:
        again = evaluate_dataset(tmp_path / "ds", tmp_path / "eval3", EvalOptions(models_dir=str(small_models), steps=2,
                                                                                  models_root=str(tmp_path)))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(1)
    assert again["views"] == res["views"]
    table = (out / "table.md").read_text()
    assert "LPIPS ↓" in table and "| all views |" in table and "missing" in table and "DREAMSIM: off" in table
    assert "Reconstruction" not in table


def test_evaluate_cli_refuses_a_broken_dataset(tmp_path, capsys):
    from headforge.backend.cli import main

    (tmp_path / "ds").mkdir()
    assert main(["evaluate", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert "evaluate.bad_dataset" in err and "manifest.json is missing" in err, err


@pytest.mark.slow
def test_evaluate_reconstruction_scores_all_96_cameras(tmp_path, small_models):
    _synthetic_dataset(tmp_path / "ds", SMALL_RESOLUTION["high"])
    out = tmp_path / "eval"
    opts = EvalOptions(models_dir=str(small_models), steps=2, keep_views=True, models_root=str(tmp_path),
                       reconstruct=True, recon_steps=20, recon_points=500)
    res = evaluate_dataset(tmp_path / "ds", out, opts)
    assert len(res["views"]) == 16
    # the reconstruction is scored from all 96 cameras, each against its own ground truth
    rec = res["reconstruction"]
    assert len(rec["views"]) == 96 and list(rec["per_elevation"]) == ["-10", "0", "10", "20", "30", "40"]
    for row in rec["views"][::17]:
        got = np.asarray(Image.open(out / "b" / "reconstruction" / f"{row['view']:03d}.png")) / 255.0
        gt = np.asarray(Image.open(layout.views_dir(tmp_path / "ds", "b") / f"{row['view']:03d}.png")) / 255.0
        assert row["psnr"] == pytest.approx(M.psnr(_white(got), _white(gt)), abs=0.05)  # the saved render is 8-bit
    table = (out / "table.md").read_text()
    assert "Reconstruction (Gaussians fitted to the generated views, rendered from all 96 cameras)" in table
