"""`headforge evaluate`: the metric code against known values, CSIM on aligned faces, missing metrics listed, and an
end-to-end run of the multi-view stage (small random-weight ID-TS) on a dataset's test split, whose input is what
`headforge run` gives the model for the frontal view."""
import io
import json
import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from headforge.backend import cameras as rig
from headforge.backend.dataset import layout
from headforge.backend.evaluate import metrics as M
from headforge.backend.evaluate.framing import box_shrink, frame_view
from headforge.backend.evaluate.run import EvalOptions, evaluate_dataset
from headforge.backend.fileio import write_json
from headforge.backend.idts.builders import SMALL_RESOLUTION, build_components
from tests.idts.conftest import _torch_threads  # noqa: F401  (one intra-op thread, as for ID-TS)


@pytest.fixture(scope="module")
def face_models(shared):
    return str(shared / "models")


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
    assert v["lpips"] == 0.0 and v["csim_excluded"] == "no face detected"  # noise: CSIM has no face to compare
    w = m.pair(_image(1), a, m.embed(a))
    assert w["lpips"] > 1e-4 and w["ssim"] < 0.5


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


def test_box_shrink_averages_blocks():
    img = np.arange(4 * 4 * 3, dtype=np.float64).reshape(4, 4, 3)
    s = box_shrink(img, 2)
    assert s.shape == (2, 2, 3) and np.allclose(s[0, 0], img[:2, :2].mean((0, 1)))
    with pytest.raises(Exception) as e:
        box_shrink(img, 3)
    assert e.value.code == "evaluate.size_mismatch"


def _move(img, scale, dx, dy):
    import cv2

    a = np.array([[scale, 0, dx], [0, scale, dy]], np.float64)
    return cv2.warpAffine(img, a, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))


def test_csim_compares_aligned_faces(face_models):
    """The same face moved and shrunk in the frame: CSIM ~1 once both faces are aligned to ArcFace's template, far
    lower on the whole frames; another person lower; a view without a face is excluded with its reason."""
    import insightface
    from skimage import data

    enc = build_components("small", seed=0)["identity_encoder"].float().eval()  # random weights: no trained ArcFace
    m = M.Metrics(identity_encoder=enc, face_models_root=face_models)  # offline; the alignment is what is tested
    a = data.astronaut().astype(np.float64) / 255
    b = _move(data.astronaut(), 0.7, 120, 60).astype(np.float64) / 255
    t1 = Image.open(os.path.join(os.path.dirname(insightface.__file__), "data", "images", "t1.jpg"))
    other = np.asarray(t1.convert("RGB")).astype(np.float64) / 255  # a group photo: its largest face, someone else
    ea, why = m.face_embedding(a)
    assert why is None
    aligned = m.pair(b, b, ea)["csim"]
    whole = float(m.embed(a) @ m.embed(b))
    different = m.pair(other, other, ea)["csim"]
    print(f"\nCSIM same face moved: aligned {aligned:.4f}, whole frame {whole:.4f}; another person {different:.4f}")
    assert aligned > 0.99 and whole < aligned - 0.1 and different < aligned - 0.05
    assert m.pair(a, a, ea)["csim"] == pytest.approx(1.0, abs=1e-9)
    blank = np.ones((128, 128, 3))
    v = m.pair(blank, blank, ea)
    assert "csim" not in v and v["csim_excluded"] == "no face detected"
    assert m.pair(a, a, None, "no face detected")["csim_excluded"] == "input: no face detected"


def _white(rgba):
    return rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]


def _png(rgba):
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def _face_dataset(root):
    """Three identities at 512 px (train a, test b and c): b's and a's frontal view is the astronaut portrait, the
    ring's other views it moved sideways and shrunk (a stand-in for turning); c's frontal view shows no face. The
    other rings repeat ring 1 (files must exist; evaluate reads only the views it scores)."""
    from skimage import data

    size = 512
    photo = np.concatenate([data.astronaut(), np.full((size, size, 1), 255, np.uint8)], -1)
    ring = [_png(photo)] + [_png(np.concatenate([_move(data.astronaut(), 1 - 0.02 * min(k, 16 - k), 12 * k, 0),
                                                  photo[..., 3:]], -1)) for k in range(1, 16)]
    blank = _png(np.zeros((size, size, 4), np.uint8) + np.array([200, 180, 160, 255], np.uint8))
    seqs = []
    for sid, split in (("a", "train"), ("b", "test"), ("c", "test")):
        vdir = layout.views_dir(root, sid)
        vdir.mkdir(parents=True)
        cams = rig.rig_cameras(size)
        for c in cams:
            png = blank if sid == "c" and c["k"] == 0 and c["ring"] == 1 else ring[c["k"]]
            (vdir / f"{c['index']:03d}.png").write_bytes(png)
        rig.save_cameras_json(vdir / "cameras.json", cams)
        write_json(root / sid / "meta.json", {"identity_embedding": None, "expression": {}, "source": "skimage",
                                              "licence": "public domain"})
        seqs.append({"id": sid, "split": split, "identity": "astronaut" if sid != "c" else "c", "source": "skimage",
                     "licence": "public domain", "kind": "mesh"})
    seqs[0]["identity"] = "astronaut-train"
    write_json(root / "manifest.json", {"format": "headforge-dataset", "version": 1, "size": size, "sequences": seqs})


def test_evaluate_end_to_end_with_the_small_model(tmp_path, small_models, face_models, monkeypatch):
    from headforge.backend.cli import main
    from headforge.backend.idts import orbit

    _face_dataset(tmp_path / "ds")
    assert layout.check_dataset(tmp_path / "ds", images=False) == []
    given = []
    real = orbit.generate_orbit

    def spy(pipe, crop, *a, **k):  # what the multiview stage is given
        given.append(crop.copy())
        return real(pipe, crop, *a, **k)

    monkeypatch.setattr(orbit, "generate_orbit", spy)
    out = tmp_path / "eval"
    # YuNet (the face stage's second detector) keeps the test short: SCRFD runs at 640² whatever the image's size
    opts = EvalOptions(models_dir=str(small_models), steps=2, keep_views=True, models_root=str(tmp_path),
                       face_models_root=face_models, detector="yunet")
    res = evaluate_dataset(tmp_path / "ds", out, opts)
    assert res["sequences"] == ["b"] and len(res["views"]) == 16
    assert [(k["sequence"], k["code"]) for k in res["skipped"]] == [("c", "face.none")]
    # the input is what `headforge run` feeds the multiview stage for b's frontal view: the same pixels
    frontal = layout.views_dir(tmp_path / "ds", "b") / f"{layout.FRONTAL_VIEW:03d}.png"
    job = tmp_path / "run-job"
    assert main(["run", str(frontal), "-o", str(job), "--until", "face", "--set", f"face.models_root={face_models}",
                 "--set", "face.detector=yunet"]) == 0
    from headforge.backend.stages.multiview import read_crop

    fed = read_crop(job / "face" / "crop.png")
    assert len(given) == 1 and given[0].shape == (512, 512, 3) and np.array_equal(given[0], fed)
    assert not np.array_equal(fed, np.asarray(Image.open(frontal).convert("RGB")))  # framed, not the render as is
    # the ground truth in the same framing: the frontal view framed is the model's input itself
    affine = np.asarray(json.loads((job / "face" / "analysis.json").read_text())["crop"]["affine_photo_to_crop"])
    assert np.array_equal(frame_view(frontal, affine, 512), fed / 255.0)
    assert res["metrics"] == ["psnr", "ssim", "csim"] and set(res["missing"]) == {"lpips", "dreamsim"}
    assert list(res["per_elevation"]) == ["0"] and len(res["per_azimuth"]) == 16
    # each figure is the named generated view against the framed ground truth of the same camera
    for row in res["views"][::5]:
        gen = np.asarray(Image.open(out / "b" / f"{row['view']:03d}.png")).astype(np.float64) / 255
        gen = gen[..., :3] * gen[..., 3:] + 1 - gen[..., 3:]
        gt = frame_view(layout.views_dir(tmp_path / "ds", "b") / f"{row['view']:03d}.png", affine,
                        SMALL_RESOLUTION["high"])
        assert row["psnr"] == pytest.approx(M.psnr(gen, gt), abs=1e-6) and row["ring"] == 1
    # the random-weight model's 64-px views show no face: CSIM excludes each, and says so
    assert res["csim_excluded"] == {"views": 16, "of": 16, "reasons": {"no face detected": 16}}
    assert res["overall"]["csim"] == {"mean": None, "std": None, "n": 0, "excluded": 16}
    vals = [r["psnr"] for r in res["views"]]
    assert res["overall"]["psnr"]["mean"] == pytest.approx(np.mean(vals), abs=1e-6)
    assert res["overall"]["psnr"]["std"] == pytest.approx(np.std(vals), abs=1e-6)
    saved = json.loads((out / "results.json").read_text())
    assert saved["overall"] == res["overall"]
    # on the CPU the run uses a fixed thread count: the same figures whatever torch was set to before
    torch.set_num_threads(3)
    try:
        again = evaluate_dataset(tmp_path / "ds", tmp_path / "eval3", EvalOptions(
            models_dir=str(small_models), steps=2, models_root=str(tmp_path), face_models_root=face_models,
            detector="yunet"))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(1)
    assert again["views"] == res["views"]
    table = (out / "table.md").read_text()
    assert "LPIPS ↓" in table and "| all views |" in table and "missing" in table and "DREAMSIM: off" in table
    assert "Skipped c: the face stage refused its frontal view (face.none" in table
    assert "CSIM excludes 16 of 16 views (no face detected: 16)." in table and "(0 of 16 views)" in table
    assert "Reconstruction" not in table


def test_evaluate_cli_refuses_a_broken_dataset(tmp_path, capsys):
    from headforge.backend.cli import main

    (tmp_path / "ds").mkdir()
    assert main(["evaluate", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert "evaluate.bad_dataset" in err and "manifest.json is missing" in err, err


@pytest.mark.slow
def test_evaluate_reconstruction_scores_all_96_cameras(tmp_path, small_models, face_models):
    _face_dataset(tmp_path / "ds")
    out = tmp_path / "eval"
    opts = EvalOptions(models_dir=str(small_models), steps=2, keep_views=True, models_root=str(tmp_path),
                       reconstruct=True, recon_steps=20, recon_points=500, face_models_root=face_models)
    res = evaluate_dataset(tmp_path / "ds", out, opts)
    assert len(res["views"]) == 16
    # the reconstruction is scored from all 96 cameras, each against its own framed ground truth
    rec = res["reconstruction"]
    assert len(rec["views"]) == 96 and list(rec["per_elevation"]) == ["-10", "0", "10", "20", "30", "40"]
    affine = np.asarray(json.loads((out / "b" / "job" / "face" / "analysis.json").read_text())["crop"]
                        ["affine_photo_to_crop"])
    for row in rec["views"][::17]:
        got = np.asarray(Image.open(out / "b" / "reconstruction" / f"{row['view']:03d}.png")) / 255.0
        gt = frame_view(layout.views_dir(tmp_path / "ds", "b") / f"{row['view']:03d}.png", affine,
                        SMALL_RESOLUTION["high"])
        assert row["psnr"] == pytest.approx(M.psnr(_white(got), gt), abs=0.05)  # the saved render is 8-bit
    table = (out / "table.md").read_text()
    assert "Reconstruction (Gaussians fitted to the generated views, rendered from all 96 cameras)" in table
