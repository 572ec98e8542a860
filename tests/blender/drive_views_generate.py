"""Driver (run by a bpy Python): the panel's Generate in Views mode on a views folder made elsewhere, as an artist
would press it — the extension installed into this process's Blender user folder, Mode = Views, the folder chosen.
The only thing the driver adds is small stage settings (splat steps, mesh sizes) to the job options the operator
passes, so a CPU test finishes in a minute; everything else is the operator's own path.

argv: REPO JOBS_ROOT VIEWS_FOLDER SMALL_OPTIONS_JSON. Prints one line "FACTS {json}"."""
import json
import sys
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extension_setup  # noqa: E402  (beside this script)

repo, jobs_root, views, small = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
module = extension_setup.install(Path(repo))
extension_setup.enable(module)
preferences = sys.modules[f"{module}.addon.preferences"]
own = preferences.job_options
preferences.job_options = lambda prefs: {k: {**small.get(k, {}), **v} for k, v in {**{k: {} for k in small},
                                                                                   **own(prefs)}.items()}
bpy.context.preferences.addons[module].preferences.jobs_root = jobs_root
s, st = bpy.context.scene.headforge, bpy.context.window_manager.headforge
s.mode, s.auto_import = "views", False


def generate() -> list:
    try:
        return list(bpy.ops.headforge.generate())
    except RuntimeError:  # an operator that reports an error raises here (the panel shows the error instead)
        return ["CANCELLED"]


facts = {"no_folder": generate(), "no_folder_code": st.error_code}
s.views_folder = str(Path(views).parent)  # a folder without cameras.json: refused, nothing made
facts["not_views"] = generate()
facts["not_views_code"], facts["jobs_after_refusals"] = st.error_code, sorted(p.name for p in Path(jobs_root).glob("*"))
s.views_folder = views
facts["generate"] = list(bpy.ops.headforge.generate())
facts.update(job_dir=st.job_dir, error=st.error, message=st.message)
print("FACTS " + json.dumps(facts))
