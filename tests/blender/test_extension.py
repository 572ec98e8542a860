"""The repository installs and runs as a Blender extension (bpy module, headless)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, has_module

pytestmark = pytest.mark.skipif(not has_module("bpy"), reason="needs the bpy module")


@pytest.fixture(scope="module")
def facts(tmp_path_factory, astronaut_path):
    tmp = tmp_path_factory.mktemp("ext")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp / "blender")}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("install_and_drive.py")), str(REPO),
                           str(astronaut_path), str(tmp / "jobs")], capture_output=True, text=True, env=env,
                          timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][6:])


def test_enable_registers_everything(facts):
    assert facts["before"] == []
    assert {"HEADFORGE_PT_main", "HEADFORGE_OT_generate", "HEADFORGE_OT_cancel"} <= set(facts["enabled_classes"])
    assert facts["props_enabled"] == [True, True]
    assert facts["operators"] == [True, True]
    assert facts["prefs_device"] == "AUTO"


def test_generate_runs_the_job_blocking_in_background(facts):
    state = facts["state"]
    assert facts["generate"] == ["FINISHED"], state
    assert state["progress"] == 1.0 and not state["running"] and state["error"] == ""
    job = Path(state["job_dir"])
    assert (job / "input/portrait.png").is_file()
    record = json.loads((job / "job.json").read_text())
    assert record["stages"]["input"]["status"] == "done"
    assert record["stages"]["input"]["metrics"]["width"] == 512


def test_external_python_mode_runs_the_same_job(facts):
    # The job folder of this photo already has its input stage: the external CLI resumes it and finishes.
    assert facts["generate_external"] == ["FINISHED"], facts["external_state"]
    assert facts["external_state"]["progress"] == 1.0 and facts["external_state"]["error"] == ""


def test_bad_photo_reports_typed_error(facts):
    assert "not_image" in " ".join(facts["generate_bad"]) or "not an image" in facts["bad_error"]
    assert "not an image" in facts["bad_error"]
    assert facts["generate_flame_nofile"][0] == "RuntimeError" and "FLAME file" in facts["generate_flame_nofile"][1]
    assert facts["generate_flame"] == ["FINISHED"]
    assert facts["flame_options"]["head_model"] == "flame"
    assert facts["flame_options"]["head_model_path"].endswith("my_flame.pkl")


def test_disable_twice_leaves_nothing(facts):
    assert facts["after_disable"] == []
    assert facts["props_left"] == [False, False]
