"""The repository installs and runs as a Blender extension (bpy module, headless)."""
import json
import os
import subprocess
import sys
import textwrap
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


# --- The first run in Blender: Auto mode, the preferences' device and models folder, errors with their fix ----

DRIVER = textwrap.dedent('''
    import functools, importlib, json, os, sys
    from pathlib import Path
    import bpy
    import extension_setup  # tests/blender, on PYTHONPATH

    repo, photo, work = (Path(a) for a in sys.argv[1:4])
    facts = {}
    module = extension_setup.install(repo)
    extension_setup.enable(module)
    external = importlib.import_module(module + ".addon.external")
    panel = importlib.import_module(module + ".ui.panel")
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.jobs_root, prefs.models_dir = str(work / "jobs"), str(work / "models")
    scene, state = bpy.context.scene, bpy.context.window_manager.headforge
    facts["default_mode"] = scene.headforge.mode

    class Props:  # what layout.operator() returns: records the operator's properties
        def __init__(self, entry):
            object.__setattr__(self, "entry", entry)
        def __setattr__(self, name, value):
            self.entry[name] = value

    class Recorder:  # a layout that records labels and buttons in drawing order
        def __init__(self, log):
            self.log = log
        def label(self, text="", **kw):
            self.log.append(["label", text])
            return self
        def operator(self, idname, text="", **kw):
            entry = {"op": idname, "text": text}
            self.log.append(["operator", entry])
            return Props(entry)
        def __getattr__(self, name):
            return lambda *a, **kw: self

    class PrefsView:  # the preferences with a recording layout
        def __init__(self, layout):
            self.__dict__.update(layout=layout, bl_idname=module)
        def __getattr__(self, name):
            if name.startswith("_draw"):
                return functools.partial(getattr(type(prefs), name), self)
            return getattr(prefs, name)

    def draw_panel():
        log = []
        panel.HEADFORGE_PT_main.draw(type("V", (), {"layout": Recorder(log)})(), bpy.context)
        return log

    def generate():
        try:
            return list(bpy.ops.headforge.generate())
        except RuntimeError as e:  # an operator that reported {'ERROR'}
            return ["RuntimeError", str(e)]

    def record():
        return json.loads((Path(state.job_dir) / "job.json").read_text())

    def draw_prefs():
        log = []
        type(prefs).draw(PrefsView(Recorder(log)), bpy.context)
        return log

    facts["prefs_log_ict"] = draw_prefs()  # ICT-FaceKit given by $HEADFORGE_ICT

    # In-process, Device CPU, mode Auto: the device reaches the stages' options, Auto picks instant and says why.
    scene.headforge.photo, scene.headforge.until = str(photo), "input"
    prefs.device = "CPU"
    facts["cpu_run"] = generate()
    facts["cpu_record"] = {"mode": record()["mode"], "options": record()["options"]}
    facts["cpu_note"] = state.mode_note
    facts["cpu_panel"] = draw_panel()

    # External Python, Device CUDA: the child CLI records the device it was given; the models folder travels.
    prefs.backend_mode, prefs.external_python, prefs.device = "EXTERNAL", sys.executable, "CUDA"
    facts["ext_env"] = external.make_runner(prefs, str(work / "x")).env
    scene.headforge.mode = "instant"
    facts["ext_run"] = generate()
    facts["ext_record"] = {"mode": record()["mode"], "options": record()["options"]}
    scene.headforge.mode, prefs.device = "auto", "AUTO"
    facts["ext_auto_run"] = generate()
    facts["ext_auto_note"] = state.mode_note
    prefs.backend_mode = "IN_PROCESS"

    # No ICT-FaceKit anywhere the backend looks: refused at once, with a button that downloads it.
    os.environ.pop("HEADFORGE_ICT", None)
    scene.headforge.until = ""
    facts["noict_run"] = generate()
    facts["noict_state"] = {"error": state.error, "code": state.error_code, "running": state.running}
    facts["noict_panel"] = draw_panel()
    facts["prefs_log"] = draw_prefs()  # the first run: nothing downloaded
    facts["fixes"] = {}
    for code, hint in (("cancelled", ""), ("stage.crashed", ""), ("input.not_image", "Choose a JPEG or PNG. More."),
                       ("model.missing", "Download it with `headforge models download yunet`, or choose another.")):
        log = []
        panel.draw_fix(Recorder(log), code, hint)
        facts["fixes"][code] = log

    extension_setup.disable(module)
    print("FACTS " + json.dumps(facts, default=str))
''')


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, astronaut_path):
    tmp = tmp_path_factory.mktemp("first_run")
    driver = tmp / "drive_first_run.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp / "blender"), "PYTHONPATH": str(Path(__file__).parent)}
    proc = subprocess.run([sys.executable, str(driver), str(REPO), str(astronaut_path), str(tmp)],
                          capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][6:]), tmp


def test_preferences_walk_through_backend_then_ict_first(first_run):
    facts, _ = first_run
    log = facts["prefs_log"]
    ops = [entry for kind, entry in log if kind == "operator"]
    downloads = [op for op in ops if op["op"] == "headforge.download_model"]
    install = next(i for i, op in enumerate(ops) if op["op"] == "headforge.install_backend")
    assert install < ops.index(downloads[0])  # 1. the backend, 2. the head model
    assert downloads[0]["model_id"] == "ict-facekit" and downloads[0]["text"] == "Download"
    labels = [entry for kind, entry in log if kind == "label"]
    licence = next(i for i, t in enumerate(log) if t[0] == "label" and t[1].startswith("Licence: MIT"))
    assert licence < log.index(["operator", downloads[1]])  # its licence shows before any other model
    assert any("USC Institute for Creative Technologies" in t for t in labels)
    from headforge.backend.models import registry

    assert {op["model_id"] for op in downloads} <= set(registry.ASSETS)  # only what some code reads
    # With ICT-FaceKit already where the backend looks, step 2 says where instead of offering a download.
    ict_given = facts["prefs_log_ict"]
    assert not any(kind == "operator" and entry.get("model_id") == "ict-facekit" for kind, entry in ict_given)
    assert any(kind == "label" and entry.startswith("found: ") and entry.endswith("ict_face_light.npz")
               for kind, entry in ict_given)


def test_device_and_auto_mode_reach_the_in_process_job(first_run):
    facts, _ = first_run
    assert facts["default_mode"] == "auto"
    assert facts["cpu_run"] == ["FINISHED"]
    options = facts["cpu_record"]["options"]
    assert {s: options[s]["device"] for s in ("multiview", "splat", "mesh")} == dict.fromkeys(
        ("multiview", "splat", "mesh"), "cpu")
    assert facts["cpu_record"]["mode"] == "instant"  # Device CPU: full mode cannot run
    assert facts["cpu_note"] == "Auto: instant mode (the device is set to CPU)"
    assert ["label", facts["cpu_note"]] in facts["cpu_panel"]


def test_device_and_models_folder_reach_the_external_python(first_run):
    facts, tmp = first_run
    assert facts["ext_env"] == {"HEADFORGE_MODELS": str(tmp / "models")}
    assert facts["ext_run"] == ["FINISHED"]
    assert {s: facts["ext_record"]["options"][s]["device"] for s in ("multiview", "splat", "mesh")} == dict.fromkeys(
        ("multiview", "splat", "mesh"), "cuda")
    assert facts["ext_record"]["mode"] == "instant"
    assert facts["ext_auto_run"] == ["FINISHED"]
    assert facts["ext_auto_note"].startswith("Auto: instant mode (")  # this machine has no CUDA GPU


def test_missing_ict_is_one_sentence_and_a_download_button(first_run):
    facts, _ = first_run
    assert facts["noict_run"][0] == "RuntimeError" and "ICT-FaceKit Light is not downloaded." in facts["noict_run"][1]
    assert facts["noict_state"] == {"error": "ICT-FaceKit Light is not downloaded.", "code": "model.ict_missing",
                                    "running": False}
    buttons = [entry for kind, entry in facts["noict_panel"] if kind == "operator"]
    fix = [b for b in buttons if b["op"] == "headforge.download_model"]
    assert len(fix) == 1 and fix[0]["model_id"] == "ict-facekit" and fix[0]["text"].startswith("Download ICT-FaceKit")


def test_every_error_gets_a_fix(first_run):
    fixes = first_run[0]["fixes"]
    assert fixes["cancelled"] == [["label", "Generate resumes where it stopped."]]
    assert [kind for kind, _ in fixes["stage.crashed"]] == ["operator"]  # the preferences (doctor) button
    assert fixes["stage.crashed"][0][1]["op"] == "preferences.addon_show"
    assert fixes["input.not_image"] == [["label", "Choose a JPEG or PNG."]]
    assert fixes["model.missing"][0][0] == "operator" and fixes["model.missing"][0][1]["model_id"] == "yunet"
