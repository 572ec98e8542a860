"""Live Link Face CSV and glTF morph-weight takes: reading, writing, resampling, and every bad input."""
from __future__ import annotations

import numpy as np
import pytest

from headforge.backend.animate.gltf_take import read_gltf_take
from headforge.backend.animate.livelink import (format_livelink_csv, frame_to_timecode, parse_livelink_csv,
                                                read_livelink_csv, timecode_to_frame, write_livelink_csv)
from headforge.backend.animate.take import AnimationError, Take
from headforge.backend.headmodel.arkit import ARKIT_52


def _random_take(n=90, fps=60.0, drop=False, start="10:23:59:50", seed=0) -> Take:
    rng = np.random.default_rng(seed)
    return Take(times=np.arange(n) / fps, names=ARKIT_52, weights=rng.random((n, 52)), fps=fps,
                head=rng.normal(0, 0.2, (n, 3)), eye_left=rng.normal(0, 0.1, (n, 3)),
                eye_right=rng.normal(0, 0.1, (n, 3)), start_timecode=start, drop_frame=drop)


@pytest.fixture(scope="module")
def facecap(shared):
    return read_gltf_take(shared / "data" / "heads" / "facecap" / "facecap.glb")


def test_facecap_capture_reads_335_frames(facecap, shared):
    t = facecap
    assert t.n_frames == 335 and t.names == ARKIT_52 and t.fps == 30.0
    assert abs(t.duration - 334 / 30) < 1e-4 and t.info["unmatched_targets"] == []
    # the meshopt-compressed file decodes to exactly what the decompressed copy stores
    ref = read_gltf_take(shared / "data" / "heads" / "facecap" / "facecap_decoded.glb")
    assert np.array_equal(t.times, ref.times) and np.array_equal(t.weights, ref.weights)
    assert np.array_equal(t.head, ref.head) and np.array_equal(t.eye_left, ref.eye_left)
    # a real performance: the jaw opens fully, both eyes blink, the head turns by several degrees
    assert t.weight("jawOpen").max() > 0.9 and t.weight("eyeBlinkLeft").max() > 0.8
    assert np.ptp(np.degrees(t.head[:, 0])) > 5 and t.eye_left is not None and t.eye_right is not None


@pytest.mark.parametrize("fps,drop,start", [(60.0, False, "10:23:59:50"), (24.0, False, "00:00:00:00"),
                                            (30.0, False, "23:59:58:00"), (30000 / 1001, True, "00:00:59;20"),
                                            (60000 / 1001, True, "01:09:59;40")])
def test_csv_round_trip_values_and_timing(tmp_path, fps, drop, start):
    take = _random_take(fps=fps, drop=drop, start=start)
    path = write_livelink_csv(take, tmp_path / "take.csv")
    back = read_livelink_csv(path, fps=fps)
    assert back.fps == pytest.approx(fps) and back.drop_frame == drop and back.start_timecode == start
    assert np.abs(back.weights - take.weights).max() <= 1e-6
    for r in ("head", "eye_left", "eye_right"):
        assert np.abs(getattr(back, r) - getattr(take, r)).max() <= 1e-6
    assert np.abs(back.times - take.times).max() <= 1e-9
    # written again: byte-identical; and the frame rate is inferred from the timecodes when not given
    assert format_livelink_csv(back) == path.read_text()
    assert read_livelink_csv(path).fps == pytest.approx(fps)


def test_drop_frame_timecodes():
    # 29.97 DF: labels ;00 and ;01 are skipped at every minute but each tenth
    assert frame_to_timecode(1799, 30, True) == "00:00:59;29"
    assert frame_to_timecode(1800, 30, True) == "00:01:00;02"
    assert frame_to_timecode(17982, 30, True) == "00:10:00;00"
    assert timecode_to_frame(0, 10, 0, 0, 30, True) == 17982
    for n in range(0, 40000, 7):
        tc = frame_to_timecode(n, 30, True)
        h, m, s, f = int(tc[:2]), int(tc[3:5]), int(tc[6:8]), int(tc[9:])
        assert timecode_to_frame(h, m, s, f, 30, True) == n
    with pytest.raises(ValueError):
        timecode_to_frame(0, 1, 0, 0, 30, True)
    # one real second of 29.97 DF is 29.97 frames: the times of a DF file are wall-clock
    take = _random_take(n=1800, fps=30000 / 1001, drop=True, start="00:00:00;00")
    back = parse_livelink_csv(format_livelink_csv(take), fps=30000 / 1001)
    assert back.times[-1] == pytest.approx(1799 * 1001 / 30000)


def test_resample_keeps_duration_and_values(facecap):
    up = facecap.resample(60)
    assert up.fps == 60 and up.duration == pytest.approx(facecap.duration, abs=1 / 60)
    assert np.abs(up.weights[::2] - facecap.weights[: len(up.weights[::2])]).max() < 2e-3  # shared instants
    down = facecap.resample(24)
    assert down.duration == pytest.approx(facecap.duration, abs=1 / 24) and down.n_frames == 268
    k = ARKIT_52.index("jawOpen")
    assert np.abs(down.weights[:, k] - np.interp(down.times, facecap.times, facecap.weights[:, k])).max() < 1e-12
    assert np.abs(down.head - np.array([np.interp(down.times, facecap.times, facecap.head[:, c])
                                        for c in range(3)]).T).max() < np.radians(0.05)


def _csv_text(take=None):
    return format_livelink_csv(take or _random_take(n=70, fps=60.0))


def _edit(text, fn):
    lines = text.splitlines()
    fn(lines)
    return "\n".join(lines) + "\n"


BAD = {
    "missing_column": (lambda L: L.__setitem__(slice(None), [",".join(l.split(",")[:20] + l.split(",")[21:])
                                                             for l in L]), "animate.csv_missing_columns"),
    "unknown_name": (lambda L: L.__setitem__(0, L[0].replace("JawOpen", "JawOpenn")), "animate.csv_unknown_column"),
    "wrong_count": (lambda L: L.__setitem__(3, L[3].replace(",61,", ",60,", 1)), "animate.csv_count"),
    "short_row": (lambda L: L.__setitem__(4, ",".join(L[4].split(",")[:-1])), "animate.csv_count"),
    "nan": (lambda L: L.__setitem__(5, ",".join(L[5].split(",")[:10] + ["nan"] + L[5].split(",")[11:])),
            "animate.csv_nan"),
    "text_value": (lambda L: L.__setitem__(5, ",".join(L[5].split(",")[:10] + ["abc"] + L[5].split(",")[11:])),
                   "animate.csv_nan"),
    "bad_timecode": (lambda L: L.__setitem__(2, "10:23:61:00.000" + L[2][15:]), "animate.csv_timecode"),
    "time_backwards": (lambda L: L.__setitem__(6, L[2]), "animate.csv_timecode"),
    "header_only": (lambda L: L.__setitem__(slice(1, None), []), "animate.csv_empty"),
    "not_livelink": (lambda L: L.__setitem__(0, "Time,Count" + L[0][len("Timecode,BlendShapeCount"):]),
                     "animate.csv_missing_columns"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_csv_is_a_coded_error(tmp_path, case):
    fn, code = BAD[case]
    p = tmp_path / "bad.csv"
    p.write_text(_edit(_csv_text(), fn))
    with pytest.raises(AnimationError) as e:
        read_livelink_csv(p, fps=60)
    assert e.value.code == code, str(e.value)
    assert str(e.value)  # a message for people


def test_csv_frame_rate_needed_for_a_short_take():
    short = _random_take(n=10, fps=60.0, start="00:00:00:00")
    with pytest.raises(AnimationError) as e:
        parse_livelink_csv(format_livelink_csv(short))
    assert e.value.code == "animate.csv_fps" and "Pass the frame rate" in e.value.hint
    assert parse_livelink_csv(format_livelink_csv(short), fps=60).n_frames == 10
    with pytest.raises(AnimationError) as e:  # a label that cannot exist at the given rate
        parse_livelink_csv(format_livelink_csv(_random_take(n=70, fps=60.0)), fps=30)
    assert e.value.code == "animate.csv_fps"


def test_bad_gltf_is_a_coded_error(tmp_path, shared):
    src = (shared / "data" / "heads" / "facecap" / "facecap.glb").read_bytes()
    cases = {"truncated.glb": (src[: len(src) // 2], "animate.gltf_unreadable"),
             "text.glb": (b"hello, not a glTF", "animate.gltf_unreadable"),
             "still.gltf": (b'{"asset": {"version": "2.0"}, "nodes": [], "animations": []}',
                            "animate.gltf_no_animation")}
    for name, (data, code) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(AnimationError) as e:
            read_gltf_take(tmp_path / name)
        assert e.value.code == code, (name, str(e.value))
    with pytest.raises(AnimationError) as e:
        read_livelink_csv(tmp_path / "absent.csv")
    assert e.value.code == "animate.csv_unreadable"



def test_portrait_expression_record(tmp_path):
    import json

    from headforge.backend.animate.portrait import portrait_expression_take

    (tmp_path / "rig").mkdir()
    gaze = {"gaze_right_deg": [8.0, -12.0], "gaze_left_deg": [4.0, -11.0]}
    (tmp_path / "rig" / "rig.json").write_text(json.dumps({"fit": {"portrait_expression_arkit":
                                                                  {"jawOpen": 0.4, "mouthSmileLeft": 0.7},
                                                                  "portrait_gaze_deg": gaze}}))
    t = portrait_expression_take(tmp_path)
    assert t.n_frames == 1 and t.weight("jawOpen")[0] == 0.4 and t.weight("mouthSmileLeft")[0] == 0.7
    assert t.arkit_weights().sum() == pytest.approx(1.1)
    # the photo's gaze as eye rotations: the same turn as the rig's own pose of the eye bones (rig/build.py)
    from headforge.backend.animate.take import euler_to_matrix
    from headforge.backend.rig.build import eye_rotations, gaze_direction

    R = eye_rotations(gaze)
    for side, bone, key in (("eye_left", "eye_L", "gaze_left_deg"), ("eye_right", "eye_R", "gaze_right_deg")):
        M = euler_to_matrix(getattr(t, side)[0])
        assert np.allclose(M, R[bone], atol=1e-9)
        assert np.allclose(M @ [0.0, -1.0, 0.0], gaze_direction(*gaze[key]), atol=1e-9)  # ahead → the gaze
    for record, code in (({"fit": {"portrait_expression": [0.1]}}, "animate.no_portrait_expression"),
                         ({"fit": {"portrait_expression_arkit": {"jawOpn": 0.3}}}, "animate.no_portrait_expression")):
        (tmp_path / "rig" / "rig.json").write_text(json.dumps(record))
        with pytest.raises(AnimationError) as e:
            portrait_expression_take(tmp_path)
        assert e.value.code == code
    with pytest.raises(AnimationError) as e:
        portrait_expression_take(tmp_path / "nowhere")
    assert e.value.code == "animate.no_rig_record"
