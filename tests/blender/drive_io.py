"""Run in a fresh Python (subprocess): install the repo as an extension, drive HeadForge's import/export
operators and the job → results flow headless, print JSON facts.

argv: REPO WORK_DIR SPLAT_PLY HEAD_GLB PHOTO [RIG_GLB]
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
from mathutils.kdtree import KDTree

repo, work, ply, head_glb, photo = (Path(a) for a in sys.argv[1:6])
rig_glb = Path(sys.argv[6]) if len(sys.argv) > 6 else None  # a HeadForge ICT rig (vertex-coloured parts)
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


def attr_values(data, name):
    """A point attribute as float32 [N, width] (width 1 flattened)."""
    a = data.attributes[name]
    width = {"FLOAT": 1, "FLOAT_VECTOR": 3, "FLOAT4": 4, "QUATERNION": 4, "FLOAT_COLOR": 4}[a.data_type]
    key = "value" if a.data_type in ("FLOAT", "QUATERNION") else "color" if a.data_type == "FLOAT_COLOR" else "vector"
    out = np.empty(len(a.data) * width, np.float32)
    a.data.foreach_get(key, out)
    return out.reshape(-1, width) if width > 1 else out


def n_splats(ob):
    return len(ob.data.attributes["position"].data)


def viewport_instances(ob):
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return sum(1 for i in depsgraph.object_instances if i.is_instance and i.parent and i.parent.original == ob)


def describe_splat(ob):
    mats = [s.material for s in ob.material_slots if s.material]
    return {"name": ob.name, "type": ob.type, "data_type": getattr(ob.data, "type", None), "count": n_splats(ob),
            "attributes": sorted(a.name for a in ob.data.attributes if not a.name.startswith(".")),
            "modifiers": [(m.type, m.node_group.name if m.node_group else None) for m in ob.modifiers],
            "material": [m.name for m in mats], "render_method": mats[0].surface_render_method if mats else None,
            "nodes": len(mats[0].node_tree.nodes) if mats else 0}


splat_import = importlib.import_module(f"{module}.addon.splat_import")
splat_material = importlib.import_module(f"{module}.addon.splat_material")
facts["blender"] = bpy.app.version_string
facts["native"] = native = splat_import.native_splats_available()

# 1. Splat import through the operator (native Gaussian splats where Blender has them), PLY round trip.
fresh_scene()
t = time.perf_counter()
facts["import_splat"] = call(bpy.ops.headforge.import_splat, filepath=str(ply), max_preview_splats=100)
facts["import_splat_s"] = round(time.perf_counter() - t, 3)
ob = bpy.context.active_object
facts["splat"] = describe_splat(ob)
out_ply = work / "roundtrip.ply"
facts["export_splat"] = call(bpy.ops.headforge.export_splat, filepath=str(out_ply))
facts["roundtrip_identical"] = out_ply.read_bytes() == ply.read_bytes()
if native:
    # The same file through Blender's own PLY importer: the attributes Blender renders must hold the same values.
    mine = {a.name: attr_values(ob.data, a.name) for a in ob.data.attributes if not a.name.startswith(".")}
    bpy.ops.wm.ply_import(filepath=str(ply))
    theirs = bpy.context.active_object
    facts["blender_ply_import"] = describe_splat(theirs)
    facts["native_vs_blender_max_diff"] = {
        a.name: float(np.abs(attr_values(theirs.data, a.name) - mine[a.name]).max()) if a.name in mine else None
        for a in theirs.data.attributes if not a.name.startswith(".")}
    facts["export_blender_native"] = call(bpy.ops.headforge.export_splat, filepath=str(work / "blender_native.ply"))
    # Blender's own PLY exporter on a Gaussian splat (what File > Export > PLY does)
    bpy.ops.object.select_all(action="DESELECT")
    theirs.select_set(True)
    try:
        bpy.ops.wm.ply_export(filepath=str(work / "blender_export.ply"), export_selected_objects=True)
    except RuntimeError as e:
        facts["blender_ply_export_error"] = str(e)

# The quad drawing (the only one before Blender 5.3; must work on 5.3 too): viewport subsampling, round trip.
fresh_scene()
quads = splat_import.import_splat(ply, method="QUADS", max_preview=100)
facts["quads"] = describe_splat(quads)
facts["viewport_instances"] = viewport_instances(quads)
splat_import.write_splat_ply(quads, work / "roundtrip_quads.ply")
facts["roundtrip_quads_identical"] = (work / "roundtrip_quads.ply").read_bytes() == ply.read_bytes()
hq = splat_import.import_splat(ply, colour="SH", render_method="BLENDED", method="QUADS")
facts["import_splat_hq"] = describe_splat(hq)
res = call(bpy.ops.headforge.import_splat, filepath=str(ply), colour="SH", render_method="BLENDED")
facts["import_splat_hq_operator"] = {"result": res, **describe_splat(bpy.context.active_object)}


def counts():
    return {k: len(getattr(bpy.data, k)) for k in ("objects", "meshes", "pointclouds", "materials", "node_groups",
                                                   "collections", "images")}


def inject_failure(owner, attr, after):
    """Make owner.attr raise on its (after+1)-th call: a failure midway through building the splat."""
    original, calls = getattr(owner, attr), [0]

    def failing(*a, **kw):
        calls[0] += 1
        if calls[0] > after:
            raise RuntimeError("injected failure")
        return original(*a, **kw)

    setattr(owner, attr, failing)
    return lambda: setattr(owner, attr, original)


# A failure midway: a typed error, and nothing half-built is left.
facts["failures"] = {}
cases = [("quads", splat_material, "add_splat_modifier", 0, "QUADS")]
if native:
    cases.append(("native", splat_import, "_set", 3, "AUTO"))
for case, owner, attr, after, method in cases:
    fresh_scene()
    before = counts()
    restore = inject_failure(owner, attr, after)
    try:
        if method == "AUTO":  # through the operator, as an artist meets it
            res, err = call(bpy.ops.headforge.import_splat, filepath=str(ply))
        else:
            try:
                splat_import.import_splat(ply, method=method)
                res, err = ["FINISHED"], ""
            except Exception as e:
                res, err = [type(e).__name__], f"[{getattr(e, 'code', '')}] {e}"
    finally:
        restore()
    facts["failures"][case] = {"result": res, "error": err, "created": {k: v - before[k] for k, v in counts().items()
                                                                        if v != before[k]}}

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


def world_points(ob):
    """An object's evaluated vertices (armature and shape keys applied) in world coordinates, (N, 3)."""
    ev = ob.evaluated_get(bpy.context.evaluated_depsgraph_get())
    me = ev.to_mesh()
    co = np.empty(len(me.vertices) * 3, np.float64)
    me.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    mw = np.array(ev.matrix_world)
    return co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3]


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
facts["reimport_again"] = call(bpy.ops.headforge.import_head, filepath=str(work / "head.glb"))
facts["after_two_imports"] = {"objects": sorted(o.name for o in bpy.data.objects),
                              "collections": sorted(c.name for c in bpy.data.collections)}

# 5b. Every material's colour survives export: HeadForge's ICT rig (eyes, mouth, gums, teeth coloured per
# vertex) → import → GLB and FBX → Blender's own importers; the colour each face shows, per material.
colours_mod = importlib.import_module("material_colours")  # beside this script
if rig_glb is not None:
    fresh_scene()
    facts["import_rig"] = call(bpy.ops.headforge.import_head, filepath=str(rig_glb))
    rig_meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    facts["rig_colours"] = {"imported": {o.name: colours_mod.face_colours(o) for o in rig_meshes}}
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    bpy.ops.object.select_all(action="DESELECT")
    arm.select_set(True)
    bpy.context.view_layer.objects.active = arm
    facts["export_rig"] = {fmt: call(bpy.ops.headforge.export_head, filepath=str(work / f"rig.{fmt}"),
                                     format=fmt.upper()) for fmt in ("glb", "fbx")}
    for fmt, importer in (("glb", bpy.ops.import_scene.gltf), ("fbx", bpy.ops.import_scene.fbx)):
        fresh_scene()
        importer(filepath=str(work / f"rig.{fmt}"))
        facts["rig_colours"][fmt] = {o.name: colours_mod.face_colours(o) for o in bpy.data.objects
                                     if o.type == "MESH" and not o.users_collection[0].name.startswith("glTF_not")}

# 5c. Views/full mode: rig.json's to_reconstruction places the head where the splat is. A job folder holds the
# facecap head as the rig (its frame) and a splat on its surface moved into a "reconstruction" frame.
fresh_scene()
results = importlib.import_module(f"{module}.addon.results")
ply_mod = importlib.import_module(f"{module}.backend.splat.ply")
head_import = importlib.import_module(f"{module}.addon.head_import")
plain = head_import.import_head(head_glb)
surface = np.concatenate([world_points(o) for o in plain["meshes"]])
angle = np.radians(25.0)
R = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
s_rec, t_rec = 0.602, np.array([0.01, -0.02, 0.03])
picked = surface[np.random.default_rng(0).choice(len(surface), 3000, replace=False)]
n_pick = len(picked)
align_job = work / "align_job"
(align_job / "rig").mkdir(parents=True)
(align_job / "splat").mkdir()
shutil.copy(head_glb, align_job / "rig" / "head_rigged.glb")
(align_job / "rig" / "rig.json").write_text(json.dumps({"to_reconstruction": {"scale": s_rec, "R": R.tolist(),
                                                                              "t": t_rec.tolist()}}))
ply_mod.write_ply(align_job / "splat" / "head.ply", {
    "means": (s_rec * picked @ R.T + t_rec).astype(np.float32), "quats": np.tile([1, 0, 0, 0], (n_pick, 1)),
    "log_scales": np.full((n_pick, 3), np.log(0.002)), "opacity_logits": np.zeros(n_pick),
    "sh": np.zeros((n_pick, 1, 3))})
fresh_scene()
imported = results.import_job_results(align_job)
coll = imported["collection"]
head_meshes = [o for o in coll.all_objects if o.type == "MESH"]
splat_ob = imported["splat"]
head_pts = np.concatenate([world_points(o) for o in head_meshes])
centres = attr_values(splat_ob.data, "position") @ np.array(splat_ob.matrix_world)[:3, :3].T + \
    np.array(splat_ob.matrix_world)[:3, 3]
tree = KDTree(len(head_pts))
for i, co in enumerate(head_pts):
    tree.insert(co, i)
tree.balance()
dist = np.array([tree.find(c)[2] for c in centres])
facts["align"] = {"median_mm": round(1000 * float(np.median(dist)), 3), "p95_mm": round(1000 * float(np.percentile(
    dist, 95)), 3), "same_collection": splat_ob.name in coll.all_objects and bool(head_meshes),
    "head_height_m": round(float(np.ptp(head_pts[:, 2])), 4), "splat_height_m": round(float(np.ptp(centres[:, 2])), 4)}
arm = next(o for o in coll.all_objects if o.type == "ARMATURE")
bpy.ops.object.select_all(action="DESELECT")
arm.select_set(True)
bpy.context.view_layer.objects.active = arm
facts["export_placed"] = call(bpy.ops.headforge.export_head, filepath=str(work / "placed.glb"), format="GLB")
fresh_scene()
bpy.ops.import_scene.gltf(filepath=str(work / "placed.glb"))
exported_pts = np.concatenate([world_points(o) for o in bpy.data.objects if o.type == "MESH"
                               and not o.users_collection[0].name.startswith("glTF_not")])
facts["export_placed_extent"] = {"rig_frame_m": [round(float(x), 4) for x in np.ptp(surface, 0)],
                                 "exported_m": [round(float(x), 4) for x in np.ptp(exported_pts, 0)]}

# 5b. Re-importing a job replaces its collection only once the new import is complete: a damaged splat leaves the
# first import as it was and nothing half-built.
fresh_scene()
first = results.import_job_results(align_job)
first_names = sorted(o.name for o in first["collection"].all_objects)
before = (sorted(o.name for o in bpy.data.objects), sorted(c.name for c in bpy.data.collections))
good_ply = (align_job / "splat" / "head.ply").read_bytes()
(align_job / "splat" / "head.ply").write_bytes(good_ply[:len(good_ply) // 2])  # truncated
try:
    results.import_job_results(align_job)
    code = None
except Exception as e:  # noqa: BLE001
    code = getattr(e, "code", type(e).__name__)
after = (sorted(o.name for o in bpy.data.objects), sorted(c.name for c in bpy.data.collections))
first_intact = sorted(o.name for o in first["collection"].all_objects) == first_names
(align_job / "splat" / "head.ply").write_bytes(good_ply)
again = results.import_job_results(align_job)
facts["reimport"] = {"failure_code": code, "scene_unchanged_by_failure": before == after,
                     "first_intact": first_intact,
                     "replaced": [c.name for c in bpy.data.collections if c.get("headforge_job")] ==
                     [again["collection"].name] == [f"HeadForge {align_job.name}"]}

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
scene.headforge.mode = "full"  # the patched pipeline (Auto would pick instant on a machine without a GPU)
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
    while time.perf_counter() < t_end or step < 20:  # at least 20 progress events, however loaded the machine
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
