"""The `multiview` job stage end to end on the CPU with small random-weight models: all 96 views in the rig's
layout, cameras.json, progress events with previews, notes in job.json, cancel between steps, missing weights."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from headforge.backend import cameras as rig
from headforge.backend.errors import Cancelled, JobError, ModelMissingError
from headforge.backend.events import CancelToken
from headforge.backend.idts.builders import SMALL_RESOLUTION
from headforge.backend.job import Job, StageContext
from headforge.backend.stages.multiview import MultiviewOptions, run_multiview



def _job(tmp_path, yaw=20.0, pitch=-22.0):
    job = Job(tmp_path / "job")
    (job.root / "face").mkdir(parents=True)
    rng = np.random.RandomState(0)
    crop = np.full((96, 96, 3), 255, np.uint8)
    crop[20:80, 25:70] = rng.randint(60, 200, (60, 45, 3))
    Image.fromarray(crop).save(job.path("face/crop.png"))
    (job.path("face/analysis.json")).write_text(json.dumps({"face": {"pose": {"yaw_deg": yaw, "pitch_deg": pitch}}}))
    return job


def _ctx(job, events, cancel=None, **opts):
    return StageContext(job, "multiview", MultiviewOptions(**opts), "full", events.append, cancel or CancelToken(),
                        lambda f: f)


def test_writes_96_views_in_rig_layout(tmp_path, small_models):
    job, events = _job(tmp_path), []
    ctx = _ctx(job, events, models_dir=str(small_models), steps=2, seed=3, seed_fit_steps=10, seed_fit_points=500)
    metrics = run_multiview(ctx)
    views = sorted(p.name for p in job.path("views").glob("*.png"))
    assert views == [f"{i:03d}.png" for i in range(96)]
    size = SMALL_RESOLUTION["high"]
    assert all(Image.open(job.path(f"views/{v}")).size == (size, size) for v in views[::7])
    assert all(Image.open(job.path(f"views/{v}")).mode == "RGBA" for v in views[::7])
    from headforge.backend.stages.splat import load_views  # the next stage reads them as they are

    loaded, viewmats, Ks, _ = load_views(job.path("views"))
    assert tuple(loaded.shape) == (96, size, size, 4) and tuple(viewmats.shape) == (96, 4, 4)
    # pitch -22 (looking down) puts the camera 22° above: nearest ring is 20° (ring 3); input ring first
    assert metrics["input_ring"] == 3 and metrics["ring_order"] == [3, 2, 4, 1, 5, 0]
    cams = json.loads(job.path("views/cameras.json").read_text())
    assert cams["convention"] == "opencv" and len(cams["views"]) == 96
    assert [v["file"] for v in cams["views"]] == views
    # frame 0 of the input ring sits at the portrait's viewpoint: azimuth -yaw, i.e. toward the subject's right (-X)
    c2w = np.linalg.inv(np.array(cams["views"][rig.view_index(3, 0)]["w2c"]))
    eye = c2w[:3, 3]
    assert np.isclose(np.degrees(np.arctan2(eye[0], -eye[1])), -20.0, atol=1e-6)
    assert np.isclose(np.degrees(np.arcsin(eye[2] / np.linalg.norm(eye))), 20.0, atol=1e-6)
    previews = [e.preview for e in events if e.preview]
    assert len(previews) >= 6 and all(p.endswith(".png") for p in previews)
    assert any("seeded by renders of Gaussians" in n for n in ctx.notes)
    assert len(metrics["seed_fit_seconds"]) == 5 and len(list(job.path("views/seeds").glob("ring_*.png"))) == 5
    assert set(metrics["cross_ring_l1"]) == {"-10/0", "0/10", "10/20", "20/30", "30/40"}
    assert metrics["unet_calls"] == 6 * 2 * 2
    print("multiview small e2e:", {k: metrics[k] for k in ("seconds_per_ring", "cross_ring_l1")})


def test_input_ring_choice():
    """Auto keeps the frontal ring within 15° of level (the pose estimator reads the reference's frontal examples up
    to 13.8° off level), beyond that the nearest ring; multiview.elevation overrides the pose."""
    from headforge.backend.idts.orbit import choose_input_ring

    assert [choose_input_ring(e)[0] for e in (0.0, 4.0, -6.0, 13.8, -14.9)] == [1] * 5
    assert [choose_input_ring(e)[0] for e in (15.0, 16.0, 27.0, 36.0, 80.0, -15.0, -40.0)] == [2, 3, 4, 5, 5, 0, 0]
    assert choose_input_ring(13.8, "10")[0] == 2 and choose_input_ring(-30.0, "0")[0] == 1
    from headforge.backend.job import STAGES, check_options

    assert check_options(STAGES["multiview"], {"elevation": "-10"}) == {"elevation": "-10"}
    with pytest.raises(JobError, match="must be one of auto, -10, 0, 10"):
        check_options(STAGES["multiview"], {"elevation": "5"})


def test_input_ring_only_is_deterministic(tmp_path, small_models):
    outs = []
    for run in range(2):
        job = _job(tmp_path / str(run), yaw=0.0, pitch=0.0)
        run_multiview(_ctx(job, [], models_dir=str(small_models), steps=1, other_rings="none", seed=7))
        outs.append(np.stack([np.asarray(Image.open(p)) for p in sorted(job.path("views").glob("*.png"))]))
    assert outs[0].shape == (16, 64, 64, 4) and np.array_equal(outs[0], outs[1])
    cams = json.loads(job.path("views/cameras.json").read_text())
    assert [v["index"] for v in cams["views"]] == list(range(16, 32))  # ring 1 (elevation 0)


def test_cancel_between_steps(tmp_path, small_models):
    job, cancel = _job(tmp_path), CancelToken()
    events = []

    def emit(e):
        events.append(e)
        if "step 1/" in e.message:
            cancel.cancel()

    ctx = StageContext(job, "multiview", MultiviewOptions(models_dir=str(small_models), steps=3,
                                                          other_rings="portrait"), "full", emit,
                       cancel, lambda f: f)
    with pytest.raises(Cancelled):
        run_multiview(ctx)
    assert not list(job.path("views").glob("*.png"))
    assert sum("step" in e.message for e in events) == 1


def test_missing_weights_name_the_files(tmp_path):
    job = _job(tmp_path)
    with pytest.raises(ModelMissingError) as err:
        run_multiview(_ctx(job, [], models_dir=str(tmp_path / "nowhere")))
    assert "low_stage" in err.value.message and "idts_stage.json" in err.value.message
    assert "converter" in err.value.hint


def test_out_of_memory_falls_back_to_next_mode(monkeypatch):
    from headforge.backend.idts.builders import build_stage
    from headforge.backend.idts.pipeline import IDTSPipeline

    warnings = []
    pipe = IDTSPipeline(build_stage("low", "small"), None, num_steps=1, memory="balanced", on_warning=warnings.append)
    real = pipe.run_stage
    calls = []

    def flaky(*args, **kw):
        calls.append(pipe.memory)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("simulated")
        return real(*args, **kw)

    monkeypatch.setattr(pipe, "run_stage", flaky)
    crop = np.full((40, 40, 3), 200, np.uint8)
    ring = pipe.generate_ring(crop, 0.0, seed=0)
    assert calls == ["balanced", "low"] and pipe.memory == "low" and pipe.unet_calls == 2  # split uc / c
    assert ring.frames.shape == (16, 32, 32, 3) and "'low'" in warnings[0]


def test_white_key_alpha():
    from headforge.backend.idts.orbit import white_key_alpha

    img = np.full((40, 40, 3), 255, np.uint8)
    img[10:30, 10:30] = 90  # the head
    img[15:18, 15:25] = 250  # a white highlight inside it
    img[0, 0] = 250  # near-white noise in the background
    a = white_key_alpha(img)
    assert a[20, 20] == 1.0 and a[16, 20] == 1.0 and a[0, 0] == 0.0 and a[35, 35] == 0.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_pipeline_runs(dtype):
    """The dtype plumbing of the GPU modes (models in bf16/fp16, sampler maths in fp32), checked on the CPU."""
    from headforge.backend.idts.builders import build_stage
    from headforge.backend.idts.pipeline import IDTSPipeline

    pipe = IDTSPipeline(build_stage("low", "small", dtype=dtype), None, num_steps=1)
    ring = pipe.generate_ring(np.full((40, 40, 3), 180, np.uint8), 10.0, seed=0)
    assert ring.frames.shape == (16, 32, 32, 3) and ring.frames.dtype == np.uint8


def test_resume_keeps_finished_rings(tmp_path, small_models):
    """Cancel during the third ring, run again: the two finished rings are kept, the result equals an
    uninterrupted run."""
    opts = dict(models_dir=str(small_models), steps=1, other_rings="portrait", seed=5)
    ref_job = _job(tmp_path / "ref")
    run_multiview(_ctx(ref_job, [], **opts))
    job, cancel = _job(tmp_path / "resumed"), CancelToken()

    def emit(e):
        if "written" in e.message and e.message.startswith(("ring 1 ", "ring 2 ", "ring 3 ")):
            n_written = sum(1 for _ in job.path("views").glob("[0-9]*.png")) // 16
            if n_written == 2:
                cancel.cancel()

    with pytest.raises(Cancelled):
        run_multiview(StageContext(job, "multiview", MultiviewOptions(**opts), "full", emit, cancel, lambda f: f))
    assert len(list(job.path("views").glob("[0-9]*.png"))) == 32
    events = []
    metrics = run_multiview(_ctx(job, events, **opts))
    assert sum("kept from the interrupted run" in e.message for e in events) == 2
    assert metrics["unet_calls"] == 4 * 2  # four rings generated, one step, two stages each
    for i in range(96):
        a = np.asarray(Image.open(job.path(f"views/{i:03d}.png")))
        assert np.array_equal(a, np.asarray(Image.open(ref_job.path(f"views/{i:03d}.png")))), i


def test_seed_fit_failure_falls_back_to_portrait(tmp_path, small_models, monkeypatch):
    from headforge.backend.errors import StageError
    from headforge.backend.idts import orbit

    def no_fit(*args, **kw):
        raise StageError("Every view's alpha mask is empty: nothing to reconstruct.", code="splat.empty_masks")

    monkeypatch.setattr(orbit, "splat_seed_view", no_fit)
    job, events = _job(tmp_path), []
    ctx = _ctx(job, events, models_dir=str(small_models), steps=1)
    metrics = run_multiview(ctx)
    assert metrics["views"] == 96
    assert sum(e.kind == "warning" and e.data["code"] == "multiview.seed_fallback" for e in events) == 5


def test_resume_remakes_a_ring_whose_view_was_replaced(tmp_path, small_models):
    """A finished ring is kept only while its 16 files are the ones written: a view replaced by another valid
    image (a damaged output the runner re-runs the stage for) makes its ring again, identical to the first run."""
    opts = dict(models_dir=str(small_models), steps=1, other_rings="none", seed=7)
    job = _job(tmp_path, yaw=0.0, pitch=0.0)
    run_multiview(_ctx(job, [], **opts))
    first = np.asarray(Image.open(job.path("views/021.png")))
    Image.fromarray(np.zeros_like(first)).save(job.path("views/021.png"))
    events = []
    run_multiview(_ctx(job, events, **opts))
    assert not any("kept from the interrupted run" in e.message for e in events)
    assert np.array_equal(np.asarray(Image.open(job.path("views/021.png"))), first)
    events = []
    run_multiview(_ctx(job, events, **opts))  # untouched: kept
    assert sum("kept from the interrupted run" in e.message for e in events) == 1
