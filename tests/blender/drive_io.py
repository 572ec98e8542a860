"""Run in a fresh Python (subprocess): install the repo as an extension, drive HeadForge's import/export
operators and the job → results flow headless, print JSON facts.

argv: REPO WORK_DIR SPLAT_PLY HEAD_GLB PHOTO
"""
import importlib
import json
import shutil
import sys
import time
from pathlib import Path

import bpy  # noqa: E402  (first: Embree)
import extension_setup  # beside this script
import numpy as np

repo, work, ply, head_glb, photo = (Path(a) for a in sys.argv[1:6])
facts = {}
module = extension_setup.install(repo)
extension_setup.enable(module)
bpy.context.preferences.addons[module].preferences.jobs_root = str(work / "jobs")
facts["classes"] = sorted(n for n in dir(bpy.types) if n.startswith("HEADFORGE_"))


def fresh_scene():
    """An empty scene; the extension stays enabled (read_factory_settings would reset the preferences)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    assert hasattr(bpy.ops.headforge, "import_splat") and bpy.ops.headforge.import_splat.poll() is not None


def call(op, **kw):
    """Run an operator; (result, error text)."""
    try:
        return sorted(op(**kw)), ""
    except RuntimeError as e:
        return ["RuntimeError"], str(e)


def counts():
    return {"objects": len(bpy.data.objects), "meshes": len(bpy.data.meshes), "materials": len(bpy.data.materials),
            "node_groups": len(bpy.data.node_groups)}


# 1. Splat import through the operator, viewport subsampling, PLY round trip.
fresh_scene()
t = time.perf_counter()
facts["import_splat"] = call(bpy.ops.headforge.import_splat, filepath=str(ply), max_preview_splats=100)
facts["import_splat_s"] = round(time.perf_counter() - t, 3)
ob = bpy.context.active_object
me = ob.data
facts["splat"] = {"name": ob.name, "count": len(me.vertices),
                  "attributes": sorted(a.name for a in me.attributes if not a.name.startswith(".")),
                  "modifiers": [(m.type, m.node_group.name if m.node_group else None) for m in ob.modifiers],
                  "material": [s.material.name for s in ob.material_slots],
                  "render_method": ob.material_slots[0].material.surface_render_method}
depsgraph = bpy.context.evaluated_depsgraph_get()
facts["viewport_instances"] = sum(1 for i in depsgraph.object_instances if i.is_instance and i.parent
                                  and i.parent.original == ob)
pos = np.empty(len(me.vertices) * 3, np.float32)
me.attributes["position"].data.foreach_get("vector", pos)
facts["first_position"] = pos[:3].tolist()
out_ply = work / "roundtrip.ply"
facts["export_splat"] = call(bpy.ops.headforge.export_splat, filepath=str(out_ply))
facts["roundtrip_identical"] = out_ply.read_bytes() == ply.read_bytes()

res = call(bpy.ops.headforge.import_splat, filepath=str(ply), colour="SH", render_method="BLENDED")
hq = bpy.context.active_object
facts["import_splat_hq"] = {"result": res, "material": hq.material_slots[0].material.name,
                            "render_method": hq.material_slots[0].material.surface_render_method,
                            "nodes": len(hq.material_slots[0].material.node_tree.nodes)}

# 2. Bad PLYs: a typed error each, nothing created.
good = ply.read_bytes()
end = good.index(b"end_header\n") + len(b"end_header\n")
header, body = good[:end].decode(), good[end:]
n = int(header.split("element vertex ")[1].split("\n")[0])
stride = len(body) // n
bad = {
    "missing_property": header.replace("property float opacity\n", "").encode() + body[: n * (stride - 4)],
    "wrong_type": header.replace("property float opacity", "property uchar opacity").encode() + body,
    "truncated": good[: end + len(body) // 2],
    "zero_splats": header.replace(f"element vertex {n}", "element vertex 0").encode(),
    "ascii": header.replace("binary_little_endian", "ascii").encode() + b"0 0 0\n",
    "not_a_ply": b"hello world\n",
}
nan_body = bytearray(body)
nan_body[stride * 5: stride * 5 + 4] = np.array([np.nan], "<f4").tobytes()
bad["nan"] = good[:end] + bytes(nan_body)
facts["bad"] = {}
for name, data in bad.items():
    p = work / f"bad_{name}.ply"
    p.write_bytes(data)
    before = counts()
    res, err = call(bpy.ops.headforge.import_splat, filepath=str(p))
    facts["bad"][name] = {"result": res, "error": err, "created": counts() != before}

# 3. Rigged head import (facecap: 52 ARKit morph targets, no skin).
fresh_scene()
t = time.perf_counter()
facts["import_head"] = call(bpy.ops.headforge.import_head, filepath=str(head_glb))
facts["import_head_s"] = round(time.perf_counter() - t, 3)


def describe_head():
    colls = [c for c in bpy.data.collections if c.name.startswith("HeadForge")]
    roots = [o for o in bpy.data.objects if o.type == "EMPTY" and o.parent is None]
    shapes = {pb.custom_shape for a in bpy.data.objects if a.type == "ARMATURE" for pb in a.pose.bones}
    meshes = [o for o in bpy.data.objects if o.type == "MESH" and not o.get("headforge_splat") and o not in shapes]
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    keyed = [o for o in meshes if o.data.shape_keys]
    return {"collections": [c.name for c in colls],
            "collection_objects": sorted(o.name for c in colls for o in c.all_objects),
            "roots": [r.name for r in roots], "armatures": [a.name for a in arms],
            "bones": sorted(b.name for a in arms for b in a.data.bones),
            "modifiers": {o.name: [m.type for m in o.modifiers] for o in meshes},
            "armature_targets": {o.name: [m.object.name if m.object else None for m in o.modifiers] for o in meshes},
            "under_root": all(o.parent is not None for o in meshes + arms),
            "shape_keys": {o.name: [kb.name for kb in o.data.shape_keys.key_blocks[1:]] for o in keyed},
            "textured": sorted({s.material.name for o in meshes for s in o.material_slots if s.material and any(
                nd.type == "TEX_IMAGE" and nd.image and nd.image.size[0] > 0 for nd in s.material.node_tree.nodes)})}


facts["head"] = describe_head()
# Shape keys deform: jawOpen at 1 moves vertices, the Armature moves everything with the head bone.
keyed = next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys)
kb = keyed.data.shape_keys.key_blocks["jawOpen"]
co0 = np.array([v.co for v in kb.relative_key.data])
co1 = np.array([v.co for v in kb.data])
facts["jaw_open_max_move"] = float(np.linalg.norm(co1 - co0, axis=1).max())

# 4. Export: GLB (names as in Blender), GLB for Godot (Apple names), FBX for Unreal; FBX re-import.
arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
for o in bpy.context.selected_objects:
    o.select_set(False)
arm.select_set(True)
bpy.context.view_layer.objects.active = arm
t = time.perf_counter()
facts["export_glb"] = call(bpy.ops.headforge.export_head, filepath=str(work / "head.glb"), format="GLB")
facts["export_glb_s"] = round(time.perf_counter() - t, 3)
facts["export_godot"] = call(bpy.ops.headforge.export_game, filepath=str(work / "head_godot.glb"), target="GODOT")
facts["export_unreal"] = call(bpy.ops.headforge.export_game, filepath=str(work / "head_unreal.fbx"), target="UNREAL")
facts["names_after_export"] = [kb.name for kb in keyed.data.shape_keys.key_blocks[1:]]
fresh_scene()
bpy.ops.import_scene.fbx(filepath=str(work / "head_unreal.fbx"))
facts["fbx_reimport"] = {o.name: [kb.name for kb in o.data.shape_keys.key_blocks[1:]]
                         for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys}
facts["fbx_armatures"] = [sorted(b.name for b in o.data.bones) for o in bpy.data.objects if o.type == "ARMATURE"]

# 5. The exported (skinned) GLB imports back through import_head without building a new rig.
fresh_scene()
facts["reimport_glb"] = call(bpy.ops.headforge.import_head, filepath=str(work / "head.glb"))
facts["reimported_head"] = describe_head()

# 6. Job flow: Generate runs a job whose last stage "makes" a splat and a rigged head (copies of the test
# files) and reports two faces; the operator imports the results into one collection under one root.
hf = importlib.import_module(module)
job_mod = importlib.import_module(f"{module}.backend.job")
importlib.import_module(f"{module}.backend.stages")


def _results_stage_impl(ctx):
    (ctx.path("face")).mkdir(exist_ok=True)
    (ctx.path("face/analysis.json")).write_text(json.dumps({"faces": [{"size_px": 100}, {"size_px": 80}],
                                                             "chosen": 0}))
    ctx.path("splat").mkdir(exist_ok=True)
    ctx.path("rig").mkdir(exist_ok=True)
    shutil.copy(ply, ctx.path("splat/head.ply"))
    shutil.copy(head_glb, ctx.path("rig/head_rigged.glb"))
    ctx.progress(1.0, "results written", preview=ctx.path("input/portrait.png"))


job_mod.STAGES["iotest_results"] = job_mod.Stage("iotest_results", _results_stage_impl, ("input/portrait.png",),
                                                 ("splat/head.ply", "rig/head_rigged.glb"))
job_mod.PIPELINES["full"] = ("input", "iotest_results")
fresh_scene()
scene = bpy.context.scene
scene.headforge.photo = str(photo)
t = time.perf_counter()
facts["generate"] = call(bpy.ops.headforge.generate)
facts["generate_s"] = round(time.perf_counter() - t, 3)
state = bpy.context.window_manager.headforge
facts["state"] = {"message": state.message, "error": state.error, "faces": state.faces, "imported": state.imported,
                  "preview": state.preview, "progress": state.progress}
coll = bpy.data.collections.get(state.imported)
facts["job_collection"] = sorted((o.name, o.type, o.parent.name if o.parent else None)
                                 for o in (coll.all_objects if coll else []))
facts["generate_again"] = call(bpy.ops.headforge.generate)  # resumes: both stages skipped, re-imported in place
facts["collections_after_rerun"] = sorted(c.name for c in bpy.data.collections)
facts["objects_after_rerun"] = len(bpy.data.objects)

# 7. Responsiveness: a job whose stage works for ~3 s in the worker thread while the main thread ticks like the
# modal operator's 0.1 s timer (drain + apply events); the longest gap between ticks is measured.
runner = importlib.import_module(f"{module}.addon.runner")


def _busy_stage(ctx):
    rng = np.random.default_rng(0)
    t_end = time.perf_counter() + 3.0
    step = 0
    while time.perf_counter() < t_end:
        a = rng.normal(size=(300, 300))
        _ = np.linalg.svd(a @ a.T)  # numpy work, as a stage does
        s = 0.0
        for i in range(20000):  # and pure-Python work holding the GIL
            s += i * 0.5
        step += 1
        ctx.progress(min(step / 40, 0.99), f"step {step}")
    return {"steps": step}


job_mod.STAGES["iotest_busy"] = job_mod.Stage("iotest_busy", _busy_stage, (), ())
job_mod.PIPELINES["full"] = ("iotest_busy",)
r = runner.JobRunner(str(work / "busy_job"), mode="full").start()
gaps, events, last = [], 0, time.perf_counter()
while not r.finished.is_set():
    time.sleep(0.1)
    now = time.perf_counter()
    gaps.append(now - last - 0.1)
    last = now
    for e in r.drain():
        runner.apply_event(state, e)
        events += 1
facts["busy"] = {"max_stall_s": round(max(gaps), 4), "ticks": len(gaps), "events": events,
                 "error": str(r.error) if r.error else ""}

# 8. Cancel leaves the job resumable: cancel mid-stage, then re-run completes it.
r = runner.JobRunner(str(work / "cancel_job"), mode="full").start()
time.sleep(0.5)
r.cancel()
r.thread.join(10)
facts["cancelled"] = {"code": getattr(r.error, "code", None)}
r2 = runner.JobRunner(str(work / "cancel_job"), mode="full").run_blocking()
rec = json.loads((work / "cancel_job" / "job.json").read_text())
facts["resumed"] = {"error": str(r2.error) if r2.error else "", "status": rec["stages"]["iotest_busy"]["status"]}

extension_setup.disable(module)
facts["after_disable"] = sorted(n for n in dir(bpy.types) if n.startswith("HEADFORGE_"))
print("FACTS " + json.dumps(facts))
