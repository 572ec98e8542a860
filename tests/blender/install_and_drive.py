"""Run in a fresh Python (subprocess): install the repo as an extension in bpy, drive it, print JSON facts.

argv: REPO PHOTO JOBS_ROOT
"""
import json
import sys
from pathlib import Path

import bpy  # noqa: E402  (must come before anything that loads Embree)

import extension_setup  # beside this script

repo, photo, jobs_root = (Path(a) for a in sys.argv[1:4])
facts = {}
module = extension_setup.install(repo)


def ours():
    return sorted(n for n in dir(bpy.types) if n.startswith("HEADFORGE_"))


before = ours()
extension_setup.enable(module)
facts["enabled_classes"] = ours()
facts["props_enabled"] = [hasattr(bpy.types.Scene, "headforge"), hasattr(bpy.types.WindowManager, "headforge")]
facts["operators"] = [hasattr(bpy.ops.headforge, n) for n in ("generate", "cancel")]
prefs = bpy.context.preferences.addons[module].preferences
prefs.jobs_root = str(jobs_root)
facts["prefs_device"] = prefs.device

scene = bpy.context.scene
scene.headforge.photo = str(photo)
scene.headforge.until = "input"
facts["generate"] = list(bpy.ops.headforge.generate())
state = bpy.context.window_manager.headforge
facts["state"] = {"progress": state.progress, "message": state.message, "job_dir": state.job_dir,
                  "error": state.error, "running": state.running}

# External-Python mode: the same operator runs the job through `headforge --json run` in a child process.
prefs.backend_mode, prefs.external_python = "EXTERNAL", sys.executable
scene.headforge.photo = str(photo)
facts["generate_external"] = list(bpy.ops.headforge.generate())
st = bpy.context.window_manager.headforge
facts["external_state"] = {"progress": st.progress, "error": st.error, "message": st.message}
prefs.backend_mode = "IN_PROCESS"

# Head model FLAME: refused without the user's file; with one, the rig options reach the job record.
prefs.head_model, prefs.flame_file = "FLAME", ""
try:
    facts["generate_flame_nofile"] = list(bpy.ops.headforge.generate())
except RuntimeError as e:
    facts["generate_flame_nofile"] = ["RuntimeError", str(e)]
flame_file = jobs_root / "my_flame.pkl"
flame_file.write_bytes(b"not read before the rig stage")
prefs.flame_file = str(flame_file)
facts["generate_flame"] = list(bpy.ops.headforge.generate())
facts["flame_options"] = json.loads((Path(bpy.context.window_manager.headforge.job_dir) / "job.json")
                                    .read_text())["options"].get("rig")
prefs.head_model = "ICT"

# A bad photo: the operator reports the backend's typed error and the state says why.
bad = jobs_root / "not_a_photo.jpg"
bad.write_text("hello")
scene.headforge.photo = str(bad)
try:
    facts["generate_bad"] = list(bpy.ops.headforge.generate())
except RuntimeError as e:  # operator errors reported with {'ERROR'} surface as RuntimeError in bpy.ops
    facts["generate_bad"] = ["RuntimeError", str(e)]
facts["bad_error"] = bpy.context.window_manager.headforge.error

extension_setup.disable(module)
extension_setup.disable(module)
facts["after_disable"] = ours()
facts["before"] = before
facts["props_left"] = [hasattr(bpy.types.Scene, "headforge"), hasattr(bpy.types.WindowManager, "headforge")]
print("FACTS " + json.dumps(facts))
