"""An artist's first run, in a fresh Blender Python that has only what Blender bundles (subprocess of
test_first_run.py): install the extension into the empty user folder, install the backend with the preferences'
operator from a local wheel folder, download ICT-FaceKit Light with the preferences' operator (its archive served
on 127.0.0.1), press Generate on a photo, print JSON facts about the imported head.

Then a views-mode job folder made by the CLI (`headforge run --mode views`: the panel's Generate offers Auto, Full
and Instant) is imported with the Import Job Results operator: how far the head lies from its splat.

argv: REPO WHEELS REQUIREMENTS(space-separated) ICT_URL PHOTO VIEWS_JOB
"""
import json
import sys
import time
from pathlib import Path

T0 = time.perf_counter()

import bpy  # noqa: E402

import extension_setup  # noqa: E402  (beside this script)

repo, wheels, requirements, ict_url, photo, views_job = sys.argv[1:7]
facts = {"python": list(sys.version_info[:2]), "blender": bpy.app.version_string}


def call(op, **kw):
    try:
        return list(op(**kw))
    except RuntimeError as e:  # an operator that reported {'ERROR'}
        return ["RuntimeError", str(e)]


def importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


facts["bare_python"] = {n: importable(n) for n in ("cv2", "scipy", "skimage", "mediapipe", "headforge")}
module = extension_setup.install(Path(repo))
extension_setup.enable(module)
prefs = bpy.context.preferences.addons[module].preferences
facts["models_dir"], facts["jobs_root"] = prefs.models_dir, prefs.jobs_root
facts["device"] = prefs.device

# 1. the backend, from the wheel folder the preferences point at
prefs.wheel_folder = wheels
t = time.perf_counter()
facts["install"] = call(bpy.ops.headforge.install_backend, requirements=requirements)
facts["install_s"] = round(time.perf_counter() - t, 1)
installer = sys.modules[module + ".addon.installer"]
deps = installer.deps_dir(module, create=False)
facts["deps_marker"] = installer.installed_info(deps)
facts["deps_packages"] = sorted(p.name for p in deps.iterdir() if p.is_dir()) if deps.is_dir() else []

# 2. ICT-FaceKit Light through the real download path; only its address is this test's server
from dataclasses import replace  # noqa: E402

registry = sys.modules[module + ".backend.models.registry"]
asset = registry.ASSETS["ict-facekit"]
registry.ASSETS["ict-facekit"] = replace(asset, files=(replace(asset.files[0], url=ict_url),))
generate_mod = sys.modules[module + ".operators.generate"]
facts["ict_before"] = generate_mod._ict_installed()
bpy.context.scene.headforge.photo = photo
facts["generate_without_ict"] = call(bpy.ops.headforge.generate)
facts["error_without_ict"] = {"code": bpy.context.window_manager.headforge.error_code,
                              "hint": bpy.context.window_manager.headforge.error_hint}
facts["download_offline"] = call(bpy.ops.headforge.download_model, model_id="ict-facekit")
bpy.context.preferences.system.use_online_access = True  # Preferences → System → Network (off by default)
t = time.perf_counter()
facts["download"] = call(bpy.ops.headforge.download_model, model_id="ict-facekit")
facts["download_s"] = round(time.perf_counter() - t, 1)
facts["ict_after"] = generate_mod._ict_installed()

# 3. Generate, mode as the panel offers it (Auto)
scene = bpy.context.scene
before_objects = {ob.name for ob in bpy.data.objects}
before_collections = {c.name for c in bpy.data.collections}
facts["mode_setting"] = scene.headforge.mode
t = time.perf_counter()
facts["generate"] = call(bpy.ops.headforge.generate)
facts["generate_s"] = round(time.perf_counter() - t, 1)
facts["first_run_s"] = round(time.perf_counter() - T0, 1)
state = bpy.context.window_manager.headforge
facts["state"] = {"error": state.error, "error_code": state.error_code, "message": state.message,
                  "mode_note": state.mode_note, "imported": state.imported, "job_dir": state.job_dir}
job = json.loads((Path(state.job_dir) / "job.json").read_text()) if state.job_dir else {}
facts["job_mode"], facts["job_stages"] = job.get("mode"), sorted(job.get("stages", {}))

import importlib  # noqa: E402

head_import = importlib.import_module(module + ".addon.head_import")
new_objects = [ob for ob in bpy.data.objects if ob.name not in before_objects]
facts["new_collections"] = sorted(c.name for c in bpy.data.collections if c.name not in before_collections)
facts["new_objects"] = [{"name": ob.name, "type": ob.type, "collections": [c.name for c in ob.users_collection],
                         "keys": [kb.name for kb in ob.data.shape_keys.key_blocks[1:]]
                         if ob.type == "MESH" and ob.data.shape_keys else []} for ob in new_objects]
facts["arkit_keys"] = sorted({head_import.arkit_name(k) for o in facts["new_objects"] for k in o["keys"]} - {None})
facts["orphan_meshes"] = sorted(m.name for m in bpy.data.meshes if m.users == 0)
facts["deps_on_path_after"] = str(deps) in sys.path

# 4. a views-mode job's results: the head on its splat
import numpy as np  # noqa: E402


def world_vertices(ob):
    ev = ob.evaluated_get(bpy.context.evaluated_depsgraph_get())
    me = ev.to_mesh()
    co = np.empty(len(me.vertices) * 3, np.float64)
    me.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    mw = np.array(ev.matrix_world)
    return co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3]


before_collections = {c.name for c in bpy.data.collections}
facts["import_views"] = call(bpy.ops.headforge.import_results, directory=views_job)
new = [c for c in bpy.data.collections if c.name not in before_collections]
facts["views_collections"] = [c.name for c in new]
if new:
    coll = new[0]
    splat = next(ob for ob in coll.all_objects if ob.name.endswith("_splat"))
    pos = splat.data.attributes["position"]
    centres = np.empty(len(pos.data) * 3, np.float32)
    pos.data.foreach_get("vector", centres)
    mw = np.array(splat.matrix_world)
    centres = centres.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3]
    face = [ob for ob in coll.all_objects if ob.type == "MESH" and ob is not splat and ob.data.shape_keys]
    head = np.concatenate([world_vertices(ob) for ob in face])
    from mathutils.kdtree import KDTree

    tree = KDTree(len(centres))
    for i, co in enumerate(centres):
        tree.insert(co, i)
    tree.balance()
    dist = np.array([tree.find(co)[2] for co in head])  # head vertex → nearest splat centre
    facts["views_align"] = {"median_mm": round(1000 * float(np.median(dist)), 2),
                            "p90_mm": round(1000 * float(np.percentile(dist, 90)), 2),
                            "head_vertices": len(head), "splats": len(centres),
                            "objects": sorted(ob.type for ob in coll.all_objects)}
print("FACTS " + json.dumps(facts, default=str))
