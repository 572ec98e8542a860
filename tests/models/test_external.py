"""External-Python mode: the project's own CLI in a subprocess, its JSON lines turned back into events."""
import json
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import has_module

pytestmark = pytest.mark.skipif(not has_module("bpy"), reason="the add-on package imports bpy")


@pytest.mark.slow
def test_external_runner_result_error_and_cancel(tmp_path, astronaut_path):
    """Three CLI subprocesses at once (each start-up imports the whole backend): a good photo, a bad photo,
    and a run cancelled once its first stage has started."""
    from headforge.addon import runner
    from headforge.addon.external import ExternalRunner

    bad = tmp_path / "not_a_photo.jpg"
    bad.write_text("hello")
    good = ExternalRunner(str(tmp_path / "good"), executable=sys.executable, inputs={"photo": str(astronaut_path)},
                          mode="full", until="input").start()
    wrong = ExternalRunner(str(tmp_path / "bad"), executable=sys.executable, inputs={"photo": str(bad)},
                           until="input").start()
    stopped = ExternalRunner(str(tmp_path / "cancel"), executable=sys.executable,
                             inputs={"photo": str(astronaut_path)}, until="face").start()
    deadline, seen = time.time() + 240, []
    while time.time() < deadline and not stopped.finished.is_set():  # cancel once the CLI has started a stage
        seen += stopped.drain()
        if any(e.kind == "stage_start" for e in seen):
            stopped.cancel()
            break
        time.sleep(0.02)
    for r in (good, wrong, stopped):
        assert r.finished.wait(240)

    events = good.drain()
    assert good.error is None, (good.error, good.stderr_tail)
    kinds = [e.kind for e in events]
    assert kinds[0] == "stage_start" and events[0].stage == "input" and "job_done" in kinds
    assert events[-1].overall == pytest.approx(1.0)
    record = json.loads((tmp_path / "good/job.json").read_text())
    assert record["stages"]["input"]["status"] == "done"
    assert (tmp_path / "good/input/portrait.png").is_file()

    assert wrong.error is not None and wrong.error.code.startswith("input.") and "not an image" in wrong.error.message
    assert any(e.kind == "error" for e in wrong.drain())

    assert stopped.error is not None and stopped.error.code == "cancelled", (stopped.error, stopped.stderr_tail)
    assert runner.active() is None  # all finished: Generate is enabled again


def test_missing_external_python_is_a_typed_error(tmp_path):
    from headforge.addon.external import ExternalRunner

    r = ExternalRunner(str(tmp_path / "job"), executable=str(tmp_path / "nope" / "python")).run_blocking()
    assert r.error.code == "external.missing"


def test_headforge_executable_is_run_directly(tmp_path):
    from headforge.addon.external import cli_command, run_arguments

    exe = Path(sys.executable).with_name("headforge")
    assert cli_command(str(exe)) == [str(exe)]
    assert cli_command(sys.executable)[1:] == ["-m", "headforge.backend.cli"]
    args = run_arguments("J", {"photo": "p.png"}, {"face": {"detector": "yunet", "face": 2},
                                                   "rig": {"head_model_path": ""}}, "instant", "face")
    assert args == ["--json", "run", "p.png", "-o", "J", "--mode", "instant", "--until", "face",
                    "--set", "face.detector=yunet", "--set", "face.face=2", "--set", "rig.head_model_path="]
    # several photos of one person reach the CLI as they reach an in-process job: all of them, the main one first
    args = run_arguments("J", {"photo": "a.png", "photos": ["a.png", "b.png", "c.png"]}, {}, "instant", None)
    assert args == ["--json", "run", "a.png", "b.png", "c.png", "-o", "J", "--mode", "instant"]
