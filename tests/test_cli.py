"""The `headforge` command as a user (or the add-on's external-Python mode) runs it."""
import json
import subprocess
import sys

from headforge.backend.events import ProgressEvent


def headforge(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "headforge.backend", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_run_json_lines_until_input_then_resume(tmp_path, astronaut_path):
    p = headforge("--json", "run", str(astronaut_path), "-o", str(tmp_path / "job"), "--until", "input")
    assert p.returncode == 0, p.stderr
    events = [ProgressEvent.from_json(line) for line in p.stdout.splitlines()]
    kinds = [e.kind for e in events]
    assert kinds[0] == "stage_start" and kinds[-2:] == ["stage_done", "job_done"]
    assert events[-2].data["metrics"]["width"] == 512
    assert any(e.preview and e.preview.endswith("input/portrait.png") for e in events)
    p = headforge("--json", "run", "-o", str(tmp_path / "job"), "--until", "input")  # resume: no photo needed
    assert [ProgressEvent.from_json(line).kind for line in p.stdout.splitlines()] == ["stage_skipped", "job_done"]


def test_bad_photo_exit_code_and_error_event(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    p = headforge("--json", "run", str(bad), "-o", str(tmp_path / "job"))
    assert p.returncode == 1
    last = ProgressEvent.from_json(p.stdout.splitlines()[-1])
    assert last.kind == "error" and last.data["code"].startswith("input.")
    p = headforge("run", str(bad), "-o", str(tmp_path / "job"))
    assert p.returncode == 1 and "error [input." in p.stderr


def test_unknown_stage_and_bad_set(tmp_path, astronaut_path):
    p = headforge("run", str(astronaut_path), "-o", str(tmp_path / "j"), "--until", "nope")
    assert p.returncode == 1 and "job.bad_stage" in p.stderr
    p = headforge("run", str(astronaut_path), "-o", str(tmp_path / "j"), "--set", "input")
    assert p.returncode == 1 and "STAGE.OPTION=VALUE" in p.stderr


def test_doctor_reports_each_check():
    p = headforge("--json", "doctor")
    checks = [json.loads(line) for line in p.stdout.splitlines()]
    names = {c["check"] for c in checks}
    assert {"python", "torch", "cuda", "gsplat", "bpy"} <= names
    assert p.returncode in (0, 2)
    assert (p.returncode == 2) == any(c["status"] == "error" and c["blocking"] for c in checks)


def test_stages_lists_modes():
    p = headforge("stages")
    listing = json.loads(p.stdout)
    assert [s["stage"] for s in listing["full"]][0] == "input"
    assert "instant" in listing


def test_face_shortcut_is_recorded_as_face_option(tmp_path, astronaut_path):
    p = headforge("run", str(astronaut_path), "-o", str(tmp_path / "j"), "--until", "input", "--face", "2")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "j/job.json").read_text())["options"]["face"] == {"face": 2}


def test_demo_runs_instant_mode_on_the_astronaut(tmp_path):
    p = headforge("--json", "demo", "-o", str(tmp_path / "demo"), "--mode", "instant", timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    events = [ProgressEvent.from_json(line) for line in p.stdout.splitlines() if line.startswith("{")]
    done = [e.stage for e in events if e.kind == "stage_done"]
    assert done == ["input", "face", "rig"] and events[-1].kind == "job_done"
    record = json.loads((tmp_path / "demo/job.json").read_text())
    assert record["inputs"]["photo"].endswith("astronaut.png") and record["mode"] == "instant"
    assert (tmp_path / "demo/rig/head_rigged.glb").stat().st_size > 100_000
