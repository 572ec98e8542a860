"""External-Python mode: the project's own CLI in a subprocess, its JSON lines turned back into events."""
import json
import sys
import time
from pathlib import Path

import pytest

from conftest import has_module

pytestmark = pytest.mark.skipif(not has_module("bpy"), reason="the add-on package imports bpy")


def test_external_runner_runs_the_cli_and_relays_events(tmp_path, astronaut_path):
    from headforge.addon import runner
    from headforge.addon.external import ExternalRunner

    job = tmp_path / "job"
    r = ExternalRunner(str(job), executable=sys.executable, inputs={"photo": str(astronaut_path)}, mode="full",
                       until="input").run_blocking()
    events = r.drain()
    assert r.error is None, (r.error, r.stderr_tail)
    kinds = [e.kind for e in events]
    assert kinds[0] == "stage_start" and events[0].stage == "input" and "job_done" in kinds
    assert events[-1].overall == pytest.approx(1.0)
    record = json.loads((job / "job.json").read_text())
    assert record["stages"]["input"]["status"] == "done"
    assert (job / "input/portrait.png").is_file()
    assert runner.active() is None  # finished: Generate is enabled again


def test_external_runner_typed_error_from_bad_photo(tmp_path):
    from headforge.addon.external import ExternalRunner

    bad = tmp_path / "not_a_photo.jpg"
    bad.write_text("hello")
    r = ExternalRunner(str(tmp_path / "job"), executable=sys.executable, inputs={"photo": str(bad)},
                       until="input").start()
    assert r.finished.wait(120)
    assert r.error is not None and r.error.code.startswith("input.") and "not an image" in r.error.message
    assert any(e.kind == "error" for e in r.drain())


def test_external_runner_cancel(tmp_path, astronaut_path):
    from headforge.addon.external import ExternalRunner

    r = ExternalRunner(str(tmp_path / "job"), executable=sys.executable, inputs={"photo": str(astronaut_path)},
                       until="face").start()
    deadline = time.time() + 120
    seen = []
    while time.time() < deadline and not r.finished.is_set():  # cancel once the CLI has started a stage
        seen += r.drain()
        if any(e.kind == "stage_start" for e in seen):
            r.cancel()
            break
        time.sleep(0.02)
    assert r.finished.wait(120)
    assert r.error is not None and r.error.code == "cancelled", (r.error, r.stderr_tail)


def test_missing_external_python_is_a_typed_error(tmp_path):
    from headforge.addon.external import ExternalRunner

    r = ExternalRunner(str(tmp_path / "job"), executable=str(tmp_path / "nope" / "python")).run_blocking()
    assert r.error.code == "external.missing"


def test_headforge_executable_is_run_directly(tmp_path):
    from headforge.addon.external import cli_command, run_arguments

    exe = Path(sys.executable).with_name("headforge")
    assert cli_command(str(exe)) == [str(exe)]
    assert cli_command(sys.executable)[1:] == ["-m", "headforge.backend.cli"]
    args = run_arguments("J", {"photo": "p.png"}, {"face": {"detector": "yunet"}}, "instant", "face")
    assert args == ["--json", "run", "p.png", "-o", "J", "--mode", "instant", "--until", "face",
                    "--set", 'face.detector="yunet"']
