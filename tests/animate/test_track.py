"""Video → take against ground truth: the facecap capture drives our ICT rig, Blender renders it (Workbench,
320×240), the tracker recovers the ARKit weights and head rotation. Plus smoothing, tracking loss, bad videos
and the CLI."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
import wave

import numpy as np
import pytest

from headforge.backend.animate.take import AnimationError
from headforge.backend.animate.track import fill_lost, one_euro, smooth_take, track_video, video_landmarks
from tests.conftest import has_module

needs_bpy = pytest.mark.skipif(not has_module("bpy"), reason="renders the ground truth with bpy")
# Measured on this 2-core machine (frames 80–119 of the capture, front view, 320×240, no smoothing; a face this
# small is fitted with the photo fit's correspondence, not the learned video table), MediaPipe's models through
# OpenCV (the installed backend's runtime): mean active-key error 0.190, jawOpen 0.169, blinks 0.102/0.049 (from the
# eyes' pixels; with mediapipe.solutions' landmarks 0.088/0.048, everything else within 0.002), head rotation 2.24°
# mean (1.26° once its constant part is removed). The goals (0.08, 0.10, 2°) are not met at this size (at
# 640×480 the blinks are: benchmarks/animate.py); the asserts sit a little above what is measured so that a
# regression fails.
MAX_MEAN_MAE, MAX_JAW_MAE, MAX_BLINK_MAE, MAX_HEAD_DEG = 0.24, 0.22, 0.12, 3.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory, shared):
    from tests.animate.ground_truth import render_clip

    work = tmp_path_factory.mktemp("track")
    return render_clip(shared, work, start=80, frames=40, size=(320, 240))


@needs_bpy
@pytest.mark.blender
def test_recovers_capture_weights_and_head_rotation(clip, artifacts):
    from tests.animate.ground_truth import score

    mp4, gt, facts = clip
    take = track_video(mp4, smoothing=0.0)
    assert take.n_frames == 40 and take.fps == 30.0 and take.info["lost_frames"] == []
    assert np.abs(take.times - gt.times).max() < 1e-3  # frame times from the stream
    s = score(gt, take, np.array(facts["w2c"]))
    print({k: v for k, v in s.items() if k != "per_key_mae"})
    (artifacts / "animate_track_score.txt").write_text(str(s))
    assert len(s["active_keys"]) > 20
    assert s["mean_mae_active"] < MAX_MEAN_MAE
    assert s["jawOpen_mae"] < MAX_JAW_MAE
    assert s["eyeBlinkLeft_mae"] < MAX_BLINK_MAE and s["eyeBlinkRight_mae"] < MAX_BLINK_MAE
    assert s["head_rot_err_deg_mean"] < MAX_HEAD_DEG
    assert take.info["correspondence"] == "photo"  # a face this small (~45 px between the eyes): not the table
    # the jaw opening in this segment is found: tracked jawOpen follows the capture
    g, t = gt.weight("jawOpen"), take.weight("jawOpen")
    assert np.corrcoef(g, t)[0, 1] > 0.9


EYE_ROT_BOUND_DEG = 6.0  # the turned-head test's eye rotations (mean |yaw|, |pitch| error; measured 4.0 / 4.3)


@needs_bpy
@pytest.mark.blender
def test_learned_correspondence_on_a_turned_head(shared, tmp_path_factory):
    """The capture filmed from −30° at 640×480 (the size the table was learned at), frames 165–204 with the
    capture's one blink (left eye, truth 0.86, rising through 0.5 at frame 193): the learned video correspondence
    against the photo fit's on the same landmarks, and the blinks from the eyes' pixels (eye_openness.py) against
    the fit's own eyeBlink. Measured (no smoothing, 2026-12-07): table + pixels head rotation 2.78° (photo
    correspondence 8.76°), mean active-key error 0.172 (0.194), jawOpen 0.141 (0.093); the blink found at its
    frame from the pixels (eyeBlinkLeft MAE 0.059, right 0.026), not by the fit (0.186, no onset). The gaze and lid
    keys from the pixels (eye_keys.py) against the fit's: eyeLookDown L/R 0.265 / 0.357 → 0.174 / 0.211, eyeWide
    0.495 / 0.434 → 0.508 / 0.379, the mean over the active keys 0.172 → 0.165. The eyes' rotations from those look
    keys against the fit's iris gaze (mean |yaw|, |pitch| error, left / right): 19.6° / 11.4° → 4.0° / 4.3°.
    Since the coupled prior (track.FACS_PRIOR_BETA, 2026-12-07 session 33) the fit itself reads these eyes better:
    table + pixels mean 0.138, jawOpen 0.127, head 2.46°; the fit's eyeLookDown L/R 0.155 / 0.216 → the pixels'
    0.129 / 0.141, but eyeWide 0.290 / 0.235 → 0.400 / 0.286 and the mean over the active keys 0.137 → 0.138 on
    this clip (on the capture's held-out stretches the pixels' eye keys still lower the mean 0.154 → 0.145)."""
    from headforge.backend.animate.track import fit_landmarks
    from tests.animate.ground_truth import render_clip, score

    mp4, gt, facts = render_clip(shared, tmp_path_factory.mktemp("turned"), start=165, frames=40, size=(640, 480),
                                 yaw_deg=-30.0)
    times, marks, info = video_landmarks(mp4)
    w2c = np.array(facts["w2c"])
    new_take = fit_landmarks(times, marks, info, smoothing=0.0)
    assert new_take.info["correspondence"] == "video" and new_take.info["blinks_from"] == "pixels"
    new = score(gt, new_take, w2c)
    old = score(gt, fit_landmarks(times, marks, info, smoothing=0.0, correspondence="photo", eye_model=None), w2c)
    fit_blinks = score(gt, fit_landmarks(times, marks, info, smoothing=0.0, eye_model=None), w2c)
    fit_keys = score(gt, fit_landmarks(times, marks, info, smoothing=0.0, eye_keys_model=None), w2c)
    assert new_take.info["eye_keys_from"] == "pixels"
    for name, s in (("table + pixels", new), ("photo", old), ("table, the fit's blinks", fit_blinks),
                    ("table, the fit's gaze/lid keys", fit_keys)):
        print(name, {k: round(v, 3) for k, v in s.items() if isinstance(v, float)}, s["blinks"]["eyeBlinkLeft"])
    assert new["head_rot_err_deg_mean"] < 3.6 and new["head_rot_err_deg_mean"] < old["head_rot_err_deg_mean"] - 4.0
    assert new["mean_mae_active"] < 0.25 and new["mean_mae_active"] < old["mean_mae_active"]
    assert new["jawOpen_mae"] < 0.22  # a regression guard
    # the blink: found within a frame from the pixels, not by the fit
    assert gt.weight("eyeBlinkLeft").max() > 0.8 and len(new["blinks"]["eyeBlinkLeft"]["truth"]) == 1
    found = new["blinks"]["eyeBlinkLeft"]["found"]
    assert len(found) == 1 and abs(found[0] - new["blinks"]["eyeBlinkLeft"]["truth"][0]) <= 1
    assert fit_blinks["blinks"]["eyeBlinkLeft"]["found"] == []
    assert new["eyeBlinkLeft_mae"] <= 0.10 and new["eyeBlinkLeft_mae"] < fit_blinks["eyeBlinkLeft_mae"] - 0.05
    assert new["eyeBlinkRight_mae"] <= 0.10
    # the gaze and lid keys from the pixels (eye_keys.py): the capture looks down with its eyes wide
    eye_keys = [k for k in new["per_key_mae"] if k.startswith(("eyeWide", "eyeLook"))]
    print({k: (fit_keys["per_key_mae"][k], new["per_key_mae"][k]) for k in eye_keys})
    for k in ("eyeLookDownLeft", "eyeLookDownRight"):
        assert new["per_key_mae"][k] < fit_keys["per_key_mae"][k] - 0.02
    look = [k for k in eye_keys if k.startswith("eyeLookDown")]
    assert np.mean([new["per_key_mae"][k] for k in look]) < np.mean([fit_keys["per_key_mae"][k] for k in look]) - 0.04
    assert new["mean_mae_active"] < fit_keys["mean_mae_active"] + 0.005
    # the eyes' rotations from the look keys (track.LOOK_DEG_PER_UNIT), not the fit's iris gaze
    eye_err = {s: (round(fit_keys[f"{s}_err_deg_mean"], 2), round(new[f"{s}_err_deg_mean"], 2))
               for s in ("eye_left", "eye_right")}
    print("eye rotation error, degrees (fit's gaze, from the look keys):", eye_err)
    for fit_e, new_e in eye_err.values():
        assert new_e < EYE_ROT_BOUND_DEG and new_e < fit_e - 3.0


@needs_bpy
@pytest.mark.blender
def test_cli_writes_livelink_csv(clip, tmp_path):
    from headforge.backend.animate.livelink import read_livelink_csv
    from headforge.backend.cli import main

    mp4, gt, _ = clip
    out = tmp_path / "take.csv"
    assert main(["--json", "animate", str(mp4), "-o", str(out), "--max-frames", "12", "--fps", "60"]) == 0
    take = read_livelink_csv(out, fps=60)
    assert take.n_frames == 23 and take.fps == 60  # 12 frames at 30 fps = 0.367 s, resampled not stretched
    assert take.weight("jawOpen").max() > 0.5 and gt.weight("jawOpen")[:12].max() > 0.8


def test_one_euro_keeps_a_blink_and_removes_jitter():
    rng = np.random.default_rng(0)
    t = np.arange(120) / 30
    clean = np.zeros(120)
    clean[60:64] = [0.6, 1.0, 1.0, 0.5]  # a fast blink, 4 frames
    noisy = clean + rng.normal(0, 0.03, 120)
    from headforge.backend.animate.take import Take

    take = Take(times=t, names=("eyeBlinkLeft", "mouthSmileLeft"), weights=np.stack([noisy, noisy], 1), fps=30)
    sm = smooth_take(take, 0.5)
    blink, smile = sm.weight("eyeBlinkLeft"), sm.weight("mouthSmileLeft")
    assert blink[60:64].max() > 0.85  # the blink keeps its depth
    assert np.std(blink[:55] - clean[:55]) < 0.5 * np.std(noisy[:55] - clean[:55])  # jitter halved
    assert np.std(smile[:55] - clean[:55]) < 0.5 * np.std(noisy[:55] - clean[:55])
    assert smooth_take(take, 0.0) is take
    x = np.cumsum(rng.normal(0, 1, (50, 2)), 0)
    assert np.abs(one_euro(x, np.arange(50) / 30, 1e9, 0.0) - x).max() < 1e-6  # infinite cutoff: unchanged


def test_one_euro_keeps_3_to_5_frame_blinks_on_time():
    """Blinks of 3, 4 and 5 frames (a half-sine, 30 fps, 0.03 noise) through the default and the strongest
    smoothing: measured peaks 0.81–1.0, onsets (rising through 0.5) on the true frame or one late."""
    from headforge.backend.animate.take import Take
    from tests.animate.ground_truth import blink_onsets

    rng = np.random.default_rng(0)
    t = np.arange(120) / 30
    for d in (3, 4, 5):
        prof = np.sin(np.linspace(0, np.pi, d + 2)[1:-1])
        clean = np.zeros(120)
        clean[60:60 + d] = prof / prof.max()
        noisy = clean + rng.normal(0, 0.03, 120)
        for strength in (0.5, 1.0):
            out = smooth_take(Take(times=t, names=("eyeBlinkLeft",), weights=noisy[:, None], fps=30), strength)
            b = out.weight("eyeBlinkLeft")
            on_true, on = blink_onsets(clean), blink_onsets(b)
            assert b[55:70].max() > 0.78, (d, strength)
            assert len(on) == 1 and abs(int(on[0]) - int(on_true[0])) <= 1, (d, strength, on, on_true)


def test_the_fits_eyeblink_reads_the_takes_open_lid_as_open_and_keeps_its_blinks():
    """Where the eyes' pixels are gated off the fit's eyeBlink is used, and on real open eyes it reads partly closed
    (benchmarks/animate_real.py: medians 0.03-0.34 on still faces). calibrate_open takes the take's lower quartile
    plus 3× its frame-to-frame noise as open: here two eyes resting at 0.15 / 0.30 (0.02 noise) with five 3-5 frame
    blinks rising 0.6 above that read ~0 when open, and every blink is still found on its frame (±1) after the
    default smoothing."""
    from headforge.backend.animate.eye_openness import blink_hits
    from headforge.backend.animate.take import Take
    from headforge.backend.animate.track import calibrate_open

    rng = np.random.default_rng(3)
    t = np.arange(150) / 30
    clean = np.zeros(150)
    for start, d in ((20, 3), (45, 4), (70, 5), (100, 3), (125, 4)):
        prof = np.sin(np.linspace(0, np.pi, d + 2)[1:-1])
        clean[start:start + d] = prof / prof.max()
    raw = np.stack([rest + 0.6 * clean + rng.normal(0, 0.02, 150) for rest in (0.15, 0.30)], 1)  # (T, 2)
    cal, levels = calibrate_open(raw)
    open_ = clean < 0.01
    assert raw[open_].mean() > 0.2  # uncalibrated: the open eyes read partly closed
    assert cal[open_].mean() < 0.01 and np.percentile(cal[open_], 95) < 0.03  # measured 0.00003 / 0.0
    assert 0.15 < levels[0] < 0.25 and 0.30 < levels[1] < 0.40
    sm = smooth_take(Take(times=t, names=("eyeBlinkLeft", "eyeBlinkRight"), weights=cal, fps=30), 0.5).weights
    for k in range(2):
        found, blinks, false = blink_hits(clean, sm[:, k])
        assert (found, blinks, false) == (5, 5, 0), k


def test_noisier_landmarks_are_smoothed_harder():
    """landmark_noise reads white noise's σ from the fit's misfit through a slow drift; smooth_take lowers the
    weights' cutoffs by (NOISE_REF / noise)² above NOISE_REF, so a noisy take's jitter falls to ~what a take at
    NOISE_REF keeps, and a take at or below NOISE_REF (large frontal faces, the synthetic benchmark) is unchanged."""
    from headforge.backend.animate.take import Take
    from headforge.backend.animate.track import NOISE_REF, landmark_noise

    rng = np.random.default_rng(5)
    drift = 0.02 * np.sin(np.arange(90) / 30 * 2 * np.pi / 3)[:, None, None]  # slow, as a turning head's misfit
    resid = drift + rng.normal(0, 0.006, (90, 400, 2))
    resid[40] = np.nan  # a lost frame
    assert abs(landmark_noise(resid) - 0.006) < 0.0005
    t = np.arange(90) / 30
    sigma = 3 * NOISE_REF
    w = np.clip(0.3 + rng.normal(0, 3 * sigma, (90, 1)), 0, 1)  # a key jittering at ~3× the landmarks' σ
    take = Take(times=t, names=("mouthSmileLeft",), weights=w, fps=30)
    jitter = {}
    for noise in (None, NOISE_REF, sigma):
        sm = smooth_take(replace(take, info={} if noise is None else {"landmark_noise_iod": noise}), 0.5)
        jitter[noise] = float(np.abs(np.diff(sm.weights[:, 0])).mean())
    assert jitter[NOISE_REF] == jitter[None]
    assert jitter[sigma] < 0.5 * jitter[None]  # measured 0.0097 → 0.0014 (mean |Δ| a frame; raw 0.035)


def test_tracking_loss_is_held_then_eased():
    v = np.ones((20, 1))
    found = np.ones(20, bool)
    found[5:15] = False
    out = fill_lost(v * np.arange(20)[:, None], found, hold=3, ease=4)
    assert np.allclose(out[5:8, 0], 4.0)  # held
    assert 0 < out[9, 0] < 4.0 and np.allclose(out[11:15, 0], 0.0)  # eased to neutral
    assert out[15, 0] == 15.0
    found[:3] = False
    assert np.allclose(fill_lost(v, found, 3, 4)[:3], 1.0)  # before the first face: the first face's values


def test_bad_videos_are_coded_errors(tmp_path):
    import cv2

    with wave.open(str(tmp_path / "voice.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(8000) * 0.1) * 3000).astype("<i2").tobytes())
    (tmp_path / "junk.mp4").write_bytes(os.urandom(4000))
    (tmp_path / "empty.mov").write_bytes(b"")
    vw = cv2.VideoWriter(str(tmp_path / "wall.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    for i in range(8):
        vw.write(np.full((120, 160, 3), 30 * i, np.uint8))
    vw.release()
    cases = {"voice.wav": "animate.video_audio_only", "junk.mp4": "animate.video_unreadable",
             "empty.mov": "animate.video_unreadable", "absent.mp4": "animate.video_missing",
             "wall.avi": "animate.no_face"}
    for name, code in cases.items():
        with pytest.raises(AnimationError) as e:
            track_video(tmp_path / name)
        assert e.value.code == code, (name, str(e.value))


@needs_bpy
@pytest.mark.blender
def test_truncated_video_is_refused_or_cut_short(clip, tmp_path):
    mp4 = clip[0]
    data = mp4.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) // 2])
    try:
        times, marks, info = video_landmarks(bad)
    except AnimationError as e:
        assert e.code == "animate.video_unreadable"  # the index (moov) is at the end: nothing to decode
    else:
        assert len(times) < 40 and info.get("truncated")


def test_box_qp_is_the_exact_bounded_minimiser():
    """The tracker's per-frame solver (fitting/solve.box_qp) against scipy's BVLS on the same problems: random
    damped normal equations with some variables free, some boxed, some fixed, many bounds active."""
    from scipy.optimize import lsq_linear

    from headforge.backend.fitting.solve import box_qp

    rng = np.random.default_rng(3)
    active = 0
    for trial in range(40):
        P = int(rng.integers(5, 60))
        A = rng.normal(size=(3 * P, P)) * rng.uniform(0.01, 100, P)  # badly scaled columns, as pose vs weights
        b = rng.normal(size=3 * P) * 10
        lb = np.where(rng.random(P) < 0.2, -np.inf, -rng.uniform(0, 1, P))
        ub = np.where(rng.random(P) < 0.2, np.inf, rng.uniform(0, 1, P))
        fixed = rng.random(P) < 0.05
        lb[fixed] = ub[fixed] = 0.0
        x = box_qp(A.T @ A, A.T @ b, lb, ub)
        ref = lsq_linear(A, b, (np.where(fixed, -1e-300, lb), np.where(fixed, 1e-300, ub)), method="bvls",
                         tol=1e-13, max_iter=10 * P).x
        assert np.all(x >= lb) and np.all(x <= ub)
        cost = lambda v: np.sum((A @ v - b) ** 2)  # noqa: E731
        assert cost(x) <= cost(ref) * (1 + 1e-9) + 1e-9, trial
        assert np.abs(x - ref).max() < 1e-6 * max(1.0, np.abs(ref).max()), trial
        active += int(np.sum((x == lb) | (x == ub)))
    assert active > 100  # the bounds did bind


def test_fit_recovers_the_capture_from_exact_landmarks(shared, tmp_path):
    """The per-frame fit alone (no MediaPipe, no renderer): landmarks made by the head model from the capture's
    weights and head motion are fitted back. Measured (24 frames from 100, the true identity, prior 1e-6): mean
    |error| over the active keys 0.068, jawOpen 0.003, head rotation 0.03°. Most of it is one pair the
    landmarks cannot tell apart: eyeWide raises the upper lid and eyeLookDown lowers it, so the capture's
    eyeWide 0.5 + eyeLookDown 0.4 comes out as ~0 + ~0.2 (errors 0.52 and 0.22); without the eyeWide/eyeLook
    keys the mean is 0.021, the worst mouthLowerDown 0.098 (it trades with mouthPucker/Funnel). The same numbers
    come out with 1 and 4 BLAS threads."""
    import subprocess
    import sys

    from headforge.backend.animate.track import fit_landmarks
    from headforge.backend.headmodel import load_ict
    from tests.animate.exact_landmarks import exact_landmarks
    from tests.animate.ground_truth import capture_segment, score

    model = load_ict(shared / "data/ict_facekit/ict_face_light.npz")
    gt = capture_segment(shared, 100, 24)
    times, marks, info = exact_landmarks(model, gt)
    take = fit_landmarks(times, marks, info, model=model, smoothing=0.0, identity=np.zeros(40),
                         expression_prior=1e-6, correspondence="photo")  # the points the landmarks were made at
    s = score(gt, take)
    print({k: s[k] for k in ("mean_mae_active", "jawOpen_mae", "eyeBlinkLeft_mae", "head_rot_err_deg_mean")})
    rest = [v for k, v in s["per_key_mae"].items() if not k.startswith(("eyeWide", "eyeLook"))]
    print("without eyeWide/eyeLook:", np.mean(rest))
    assert s["mean_mae_active"] < 0.08 and np.mean(rest) < 0.03 and max(rest) < 0.12
    assert s["jawOpen_mae"] < 0.01 and s["head_rot_err_deg_mean"] < 0.1
    # thread count: the script fits the same landmarks (smoothed) under OMP_NUM_THREADS 1 and 4
    runs = []
    for n in (1, 4):
        out = tmp_path / f"t{n}.npz"
        env = {**os.environ, "OMP_NUM_THREADS": str(n), "OPENBLAS_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}
        subprocess.run([sys.executable, "-m", "tests.animate.exact_landmarks", str(out), str(shared)], check=True,
                       env=env, timeout=300, cwd=str(Path(__file__).resolve().parents[2]))
        runs.append(np.load(out))
    for key in ("weights", "head", "video_weights", "video_head"):
        assert np.abs(runs[0][key] - runs[1][key]).max() < 1e-9, key


def test_pose_is_freed_of_the_expression_priors_pull(shared):
    """The capture's frames 150–229 filmed from −30° as the learned table itself predicts MediaPipe's points (the
    tracker's own landmark model: no detector error), fitted back on the true identity. The expression prior
    shrinks the capture's sustained expression (brows up, mouth to the left) toward neutral and the fit turns
    the head to make up for it; the debiasing step takes most of that turn out. Measured: head rotation error
    1.84° → 1.29° (front 0.85° → 0.48°, +30° 1.12° → 0.85°), mean active-key error 0.147 → 0.142."""
    from headforge.backend.animate.track import fit_landmarks
    from headforge.backend.headmodel import load_ict
    from tests.animate.exact_landmarks import table_landmarks
    from tests.animate.ground_truth import capture_segment, score

    model = load_ict(shared / "data/ict_facekit/ict_face_light.npz")
    gt = capture_segment(shared, 150, 80)
    times, marks, info, w2c = table_landmarks(model, gt, -30.0)
    s = {d: score(gt, fit_landmarks(times, marks, info, model=model, smoothing=0.0, identity=np.zeros(40),
                                    debias_pose=d, prior_scale={}), w2c) for d in (False, True)}
    print({d: (round(v["head_rot_err_deg_mean"], 3), round(v["mean_mae_active"], 3)) for d, v in s.items()})
    assert s[False]["head_rot_err_deg_mean"] > 1.6  # the prior's pull is there to take out
    assert s[True]["head_rot_err_deg_mean"] < 1.45
    assert s[True]["head_rot_err_deg_mean"] < 0.75 * s[False]["head_rot_err_deg_mean"]
    assert s[True]["mean_mae_active"] <= s[False]["mean_mae_active"] + 0.002


def test_the_coupled_prior_reads_the_captures_sustained_mouth(shared):
    """The capture holds many mouth keys at once (frames 0-39: smile 0.4, shrugUpper 0.4, shrugLower 0.3,
    rollLower 0.25, dimple and cheekSquint 0.2), which a prior on each key alone shrinks toward neutral. Filmed
    as the learned table predicts MediaPipe's points (no detector error) and fitted back on the true identity,
    the expression re-solved under the FACS-shaped prior (track.FACS_PRIOR_BETA, the default) reads them closer,
    the head within 1e-5°. Measured (front, no smoothing), diagonal prior → coupled: mouth/jaw/cheek keys 0.099 →
    0.062, the active keys 0.106 → 0.072; on the detections of the capture's held-out stretches 0.164 → 0.145
    (benchmarks/animate.py)."""
    from headforge.backend.animate.track import fit_landmarks
    from headforge.backend.headmodel import load_ict
    from tests.animate.exact_landmarks import table_landmarks
    from tests.animate.ground_truth import capture_segment, score

    model = load_ict(shared / "data/ict_facekit/ict_face_light.npz")
    gt = capture_segment(shared, 0, 40)
    times, marks, info, w2c = table_landmarks(model, gt, 0.0)
    fit = dict(model=model, smoothing=0.0, identity=np.zeros(40))
    takes = {"default": fit_landmarks(times, marks, info, **fit)}
    s = {"default": score(gt, takes["default"], w2c)}

    def mouth(x):
        return np.mean([v for k, v in x["per_key_mae"].items() if k.startswith(("mouth", "jaw", "cheek"))])

    print("default", round(mouth(s["default"]), 4), round(s["default"]["mean_mae_active"], 4))
    assert mouth(s["default"]) < 0.075 and s["default"]["mean_mae_active"] < 0.085  # diagonal: 0.099, 0.106
    takes["diagonal"] = fit_landmarks(times, marks, info, prior_coupling=0.0, **fit)
    s["diagonal"] = score(gt, takes["diagonal"], w2c)
    print("diagonal", round(mouth(s["diagonal"]), 4), round(s["diagonal"]["mean_mae_active"], 4))
    assert mouth(s["default"]) < 0.75 * mouth(s["diagonal"])
    assert s["default"]["mean_mae_active"] < s["diagonal"]["mean_mae_active"] - 0.015
    assert np.degrees(np.abs(takes["default"].head - takes["diagonal"].head).max()) < 1e-3  # the pose: diagonal


def test_the_turned_heads_bias_follows_the_captures_asymmetric_expression(shared):
    """Why the head's constant error is larger at −30° than at +30° (benchmarks/animate.py): the capture's frames
    150–229 filmed from ±30° as the learned table predicts MediaPipe's points (no detector error), fitted back on
    the true identity with the tracker's prior and pose debiasing, as captured and with the expression mirrored
    left ↔ right (the head's motion as captured). The constant part follows the expression's asymmetry (the mouth
    pulled to the capture's left, its left-side keys stronger), not the camera's side: measured as captured
    1.24° at −30° / 0.55° at +30°, mirrored 0.61° / 0.88°; head rotation error 1.27° / 0.82° → 0.95° / 0.91°."""
    from headforge.backend.animate.track import fit_landmarks
    from headforge.backend.headmodel import load_ict
    from tests.animate.exact_landmarks import mirror_expression, table_landmarks
    from tests.animate.ground_truth import capture_segment, score

    model = load_ict(shared / "data/ict_facekit/ict_face_light.npz")
    gt = capture_segment(shared, 150, 80)
    const, err = {}, {}
    for tag, take in (("captured", gt), ("mirrored", mirror_expression(gt))):
        for yaw in (-30.0, 30.0):
            times, marks, info, w2c = table_landmarks(model, take, yaw)
            s = score(take, fit_landmarks(times, marks, info, model=model, smoothing=0.0, identity=np.zeros(40),
                                          eye_model=None, eye_keys_model=None, brow_model=None), w2c)
            const[tag, yaw], err[tag, yaw] = s["head_rot_offset_deg"], s["head_rot_err_deg_mean"]
    print({k: round(v, 3) for k, v in const.items()}, {k: round(v, 3) for k, v in err.items()})
    assert const["captured", -30.0] > const["captured", 30.0] + 0.4  # the −30° bias, without MediaPipe
    assert const["mirrored", -30.0] < const["mirrored", 30.0] - 0.1  # mirrored expression: the other side
    assert const["mirrored", -30.0] < const["captured", -30.0] - 0.4
    assert err["mirrored", -30.0] < err["captured", -30.0] - 0.2
    assert max(err.values()) < 1.4  # and within the goal (2°) on the tracker's own landmark model


def test_eyes_unlike_the_eye_models_keep_the_fits_blinks(tmp_path):
    """The eye regressor learned on renders of our rig; on real open eyes with dark lashes and make-up it can read
    them as closed (insightface's group photo, the woman at the left: 1.00 / 0.67 for a still video of her open
    eyes). A take whose eyes read closed through most of it keeps the fit's eyeBlink (track.PIXEL_BLINK_MEDIAN_MAX),
    so the avatar's eyes are not shut throughout, and keeps the fit's gaze and brows too (the pixel models share the
    gate); the astronaut's eyes read open (0.00) and keep the pixels'."""
    import cv2
    from PIL import Image
    from skimage import data

    from tests.conftest import load_benchmark

    get_image = pytest.importorskip("insightface.data").get_image
    group = np.ascontiguousarray(get_image("t1", to_rgb=True))
    h, w = group.shape[:2]
    x0, y0, x1, y1 = load_benchmark("complete_head").GROUP_CROPS[0]
    crop = group[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
    stills = {"group": np.asarray(Image.fromarray(crop).resize((crop.shape[1] * 2, crop.shape[0] * 2))),
              "astronaut": data.astronaut()}
    takes = {}
    for name, img in stills.items():
        H, W = (s // 2 * 2 for s in img.shape[:2])
        vw = cv2.VideoWriter(str(tmp_path / f"{name}.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
        for _ in range(6):
            vw.write(np.ascontiguousarray(img[:H, :W, ::-1]))
        vw.release()
        takes[name] = track_video(tmp_path / f"{name}.avi", smoothing=0.0)
        print(name, takes[name].info["blinks_from"], takes[name].info["blinks_pixel_median"])
    group_take, astronaut_take = takes["group"], takes["astronaut"]
    assert max(group_take.info["blinks_pixel_median"]) > 0.5 and group_take.info["blinks_from"] == "fit"
    assert group_take.info["eye_keys_from"] == "fit" and group_take.info["brows_from"] == "fit"
    blink = [group_take.names.index(n) for n in ("eyeBlinkLeft", "eyeBlinkRight")]
    assert group_take.weights[:, blink].max() < 0.3  # her open eyes stay open
    assert max(astronaut_take.info["blinks_pixel_median"]) < 0.1 and astronaut_take.info["blinks_from"] == "pixels"
    assert astronaut_take.info["eye_keys_from"] == "pixels" and astronaut_take.info["brows_from"] == "pixels"
    # her near-neutral face looking at the camera reads near neutral from the gaze/lid and brow models (measured:
    # eyeLookUp 0.15, eyeLookIn/Out 0.13, eyeWide ≤ 0.06, the brows ≤ 0.14): one real photo, not a measurement of
    # real video
    gaze_brows = {n: float(astronaut_take.weight(n).mean()) for n in astronaut_take.names
                  if n.startswith(("eyeWide", "eyeLook", "brow"))}
    print({n: round(v, 2) for n, v in gaze_brows.items()})
    assert max(gaze_brows.values()) < 0.25



def test_the_coupled_priors_file_is_checked_like_the_models(shared, tmp_path):
    """The shipped coupled prior (track.FACS_PRIOR_FILE) is a model file (model_file.py): missing, altered or
    truncated is a coded error, never a fit that silently goes without it; another head model's expressions get
    none."""
    from types import SimpleNamespace

    from headforge.backend.animate.track import FACS_PRIOR_FILE, load_facs_precision
    from headforge.backend.headmodel import load_ict

    ict = load_ict()
    P = load_facs_precision(ict)
    assert P.shape == (ict.n_expression,) * 2 and np.allclose(P, P.T)
    assert load_facs_precision(SimpleNamespace(expression_names=["a", "b"])) is None
    with pytest.raises(AnimationError) as e:
        load_facs_precision(ict, tmp_path / "none.npz")
    assert e.value.code == "animate.facs_prior_missing"
    z = dict(np.load(FACS_PRIOR_FILE))
    z["precision"] = z["precision"] * 1.01  # the couplings changed, the digest kept
    np.savez(tmp_path / "altered.npz", **z)
    (tmp_path / "truncated.npz").write_bytes(FACS_PRIOR_FILE.read_bytes()[:500])
    for bad in ("altered.npz", "truncated.npz"):
        with pytest.raises(AnimationError) as e:
            load_facs_precision(ict, tmp_path / bad)
        assert e.value.code == "animate.facs_prior_invalid"
