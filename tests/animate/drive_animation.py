"""Run in a fresh Python with bpy (subprocess): key takes onto heads, keep existing actions, export with
animation and re-import; print JSON facts (`FACTS {...}`) and write the exported files into WORK.

argv: WORK RIG_GLB FACECAP_GLB BAD_CSV
"""
import json
import sys
from dataclasses import replace
from pathlib import Path

import bpy  # noqa: F401  (first: Embree)
import numpy as np

from headforge.addon import animation, export, head_import
from headforge.backend.animate.take import AnimationError, euler_to_matrix
from headforge.backend.errors import HeadForgeError

work, rig_glb, facecap_glb, bad_csv = (Path(a) for a in sys.argv[1:5])
facts = {}


def fresh(fps=24):
    bpy.ops.wm.read_homefile(use_empty=True)
    sc = bpy.context.scene
    sc.render.fps, sc.render.fps_base = fps, 1.0
    sc.frame_start, sc.frame_end = 1, 50
    return sc


def head_mesh(objs):
    return next(o for o in objs if o.type == "MESH" and o.data.shape_keys and len(o.data.shape_keys.key_blocks) > 50)


def shape_key_error(keys, take_rs, start):
    """Max |keyed value − take value| over every frame and name, evaluated through the depsgraph."""
    sc = bpy.context.scene
    err = 0.0
    names = {animation._arkit_of(kb.name): kb.name for kb in keys.key_blocks[1:]}
    for i in range(0, take_rs.n_frames, 7):
        sc.frame_set(start + i)
        for a, kb in names.items():
            if a in take_rs.names:
                err = max(err, abs(keys.key_blocks[kb].value - take_rs.weight(a)[i]))
    return err


take = animation.read_take(facecap_glb)

# 1. our rig at 24 fps: every key matched, values and head/eye rotations as in the take (resampled)
sc = fresh(24)
objs = list(head_import.import_head(rig_glb)["meshes"]) + [bpy.data.objects["Armature"]]
mesh = head_mesh(objs)
keys = mesh.data.shape_keys
# an animation the artist already has: kept, not overwritten
keys.animation_data_create()
prev = bpy.data.actions.new("artist_blink")
keys.animation_data.action = prev
fc = prev.fcurve_ensure_for_datablock(keys, 'key_blocks["eyeBlink_L"].value')
fc.keyframe_points.insert(1, 0.0)
fc.keyframe_points.insert(10, 1.0)
rep = animation.apply_take(take, objs, scene=sc, frame_start=1)
facts["ours"] = {k: rep[k] for k in ("action", "fps", "frames", "frame_range", "missing", "bones", "kept", "resampled")}
facts["ours"]["matched"] = len(rep["matched"])
rs = take.resample(24)
facts["ours"]["shape_key_max_err"] = shape_key_error(keys, rs, 1)
arm = animation.find_armature(objs)
rot_err = {"head": 0.0, "eye_left": 0.0, "eye_right": 0.0}
rot_max = dict(rot_err)  # how far each bone turns: the errors mean something
for i in range(0, rs.n_frames, 11):
    sc.frame_set(1 + i)
    for r, b in (("head", "head"), ("eye_left", "eye_L"), ("eye_right", "eye_R")):
        pb = arm.pose.bones[b]
        rest = np.array(pb.bone.matrix_local.to_3x3().normalized())
        if r == "head":
            posed = np.array(pb.matrix.to_3x3().normalized())
            want = euler_to_matrix(rs.head[i])
        else:  # relative to the posed head
            hb = arm.pose.bones["head"]
            head_R = np.array(hb.matrix.to_3x3().normalized()) @ np.array(hb.bone.matrix_local.to_3x3().normalized()).T
            posed = head_R.T @ np.array(pb.matrix.to_3x3().normalized())
            want = euler_to_matrix(getattr(rs, r)[i])
        R = posed @ rest.T
        ang = np.degrees(np.arccos(np.clip((np.trace(R @ want.T) - 1) / 2, -1, 1)))
        rot_err[r] = max(rot_err[r], float(ang))
        rot_max[r] = max(rot_max[r], float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))))
facts["ours"]["rotation_max_err_deg"] = rot_err
facts["ours"]["rotation_max_deg"] = rot_max
facts["ours"]["nla_tracks"] = [t.name for t in keys.animation_data.nla_tracks]
facts["ours"]["prev_action_users"] = prev.users
facts["ours"]["scene_frame_end"] = sc.frame_end
# a second take: a second Action; the first stays (NLA), so takes can be mixed
rep2 = animation.apply_take(take, objs, scene=sc, frame_start=300, name="take2")
facts["ours"]["second"] = {"action": rep2["action"], "kept": rep2["kept"],
                           "actions": sorted(a.name for a in bpy.data.actions)}

# 2. a bad CSV leaves everything as it was
before = keys.animation_data.action.name
try:
    animation.apply_take(animation.read_take(bad_csv), objs, scene=sc)
    facts["bad_csv"] = "no error"
except AnimationError as e:
    facts["bad_csv"] = e.code
facts["bad_csv_action_kept"] = keys.animation_data.action.name == before and len(bpy.data.actions) == 3

# 3. export with the take (glTF and FBX) and re-import
sc = fresh(30)
objs = list(head_import.import_head(rig_glb)["meshes"]) + [bpy.data.objects["Armature"]]
short = take.resample(30)
short.times, short.weights = short.times[:60], short.weights[:60]
short.head, short.eye_left, short.eye_right = short.head[:60], short.eye_left[:60], short.eye_right[:60]
# an earlier take, kept in the NLA under the one exported: not in the glTF (only the take the head plays now)
decoy = replace(short, weights=short.weights[::-1].copy(), head=short.head[::-1].copy(), name="decoy")
facts["plays_take_before"] = export.plays_take(objs)  # the export operators' Animations default
animation.apply_take(decoy, objs, scene=sc, frame_start=1, name="decoy")
rep = animation.apply_take(short, objs, scene=sc, frame_start=1)
sc.frame_start, sc.frame_end = 1, 60
heads = [o for o in bpy.context.scene.objects if o.type in ("MESH", "ARMATURE")]
facts["plays_take_after"] = export.plays_take(heads)
facts["export_glb"] = export.export_head(heads, work / "take.glb", animations=True, arkit_names=True)["format"]
facts["export_fbx"] = export.export_head(heads, work / "take.fbx", animations=True, arkit_names=True)["format"]
want = {n: short.weight(n) for n in ("jawOpen", "eyeBlinkLeft", "mouthSmileRight", "browInnerUp")}
for fmt in ("glb", "fbx"):
    fresh(30)
    if fmt == "glb":
        bpy.ops.import_scene.gltf(filepath=str(work / "take.glb"))
    else:
        bpy.ops.import_scene.fbx(filepath=str(work / "take.fbx"))
    m = head_mesh(bpy.context.scene.objects)
    k = m.data.shape_keys
    facts[f"reimport_{fmt}_actions"] = len(bpy.data.actions)
    if fmt == "fbx":  # FBX carries every take ("Key|Armature|NAME"): the exported one compared
        act = next(a for a in bpy.data.actions if a.name.startswith("Key|") and a.name.endswith("|" + rep["action"]))
        k.animation_data.action = act
        k.animation_data.action_slot = act.slots[0]
    err = {}
    for n, w in want.items():
        vals = []
        for i in range(60):
            bpy.context.scene.frame_set(1 + i)
            vals.append(k.key_blocks[n].value)
        err[n] = float(np.abs(np.array(vals) - w).max())
    facts[f"reimport_{fmt}_err"] = err

# 4. a head with only some ARKit keys (another tool's names), no armature: matched by name, the rest reported
fresh(30)
bpy.ops.mesh.primitive_uv_sphere_add()
ob = bpy.context.active_object
ob.shape_key_add(name="Basis")
for n in ("EyeBlinkLeft", "jawOpen", "mouth_smile_left_custom", "MouthSmile_L"):
    ob.shape_key_add(name=n)
rep = animation.apply_take(take, [ob], scene=bpy.context.scene)
facts["partial"] = {"matched": rep["matched"], "missing": len(rep["missing"]), "bones": rep["bones"]}
bpy.ops.mesh.primitive_cube_add()
try:
    animation.apply_take(take, [bpy.context.active_object], scene=bpy.context.scene)
    facts["no_keys"] = "no error"
except HeadForgeError as e:
    facts["no_keys"] = e.code

# 5. the portrait's expression (rig.json of the rig stage) posed on the neutral rig: the evaluated mesh equals the
# head model with that expression
from scipy.spatial import cKDTree  # noqa: E402

from headforge.backend.animate.portrait import portrait_expression_take  # noqa: E402
from headforge.backend.headmodel import load_ict  # noqa: E402
from headforge.backend.headmodel.arkit import ict_weights_to_arkit  # noqa: E402

model = load_ict()
expr = np.zeros(model.n_expression)
for n, v in (("mouthSmile_L", 0.8), ("mouthSmile_R", 0.7), ("browInnerUp_L", 0.5), ("browInnerUp_R", 0.5),
             ("eyeBlink_L", 0.3), ("jawOpen", 0.25)):
    expr[model.expression_names.index(n)] = v
(work / "job" / "rig").mkdir(parents=True, exist_ok=True)
(work / "job" / "rig" / "rig.json").write_text(json.dumps(
    {"fit": {"portrait_expression_arkit": ict_weights_to_arkit(expr, model.expression_names)}}))
sc = fresh(30)
sc.frame_set(12)
objs = list(head_import.import_head(rig_glb)["meshes"]) + [bpy.data.objects["Armature"]]
rep = animation.apply_take(portrait_expression_take(work / "job"), objs, scene=sc, frame_start=12)
sc.frame_set(12)
mesh = head_mesh(objs)
ev = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
posed = np.array([mesh.matrix_world @ v.co for v in ev.vertices])
basis = np.array([mesh.matrix_world @ kb.co for kb in mesh.data.shape_keys.key_blocks[0].data])
d, idx = cKDTree(model.neutral.astype(np.float64)).query(basis)
want = model.vertices(expression=expr)[idx]
moved = np.linalg.norm(want - basis, axis=1)
sel = d < 1e-5
facts["portrait"] = {"frame_range": rep["frame_range"], "matched": len(rep["matched"]),
                     "matched_vertices": int(sel.sum()), "max_move_mm": float(moved[sel].max() * 1000),
                     "max_err_mm": float(np.linalg.norm(posed - want, axis=1)[sel].max() * 1000)}
# 6. the panel's Import Face Take operator on a Live Link Face CSV (the backend's writer), the head's root empty
# selected as after Import, the scene at 24 fps: the capture's blink on the frame of its time, with the CSV's value
import headforge  # noqa: E402
from headforge.backend.animate.livelink import read_livelink_csv, write_livelink_csv  # noqa: E402

headforge.register()
csv = read_livelink_csv(write_livelink_csv(take, work / "facecap.csv"))
sc = fresh(24)
root = head_import.import_head(rig_glb)["root"]
root.select_set(True)
bpy.context.view_layer.objects.active = root
result = sorted(bpy.ops.headforge.import_take(filepath=str(work / "facecap.csv")))
keys = head_mesh(root.children_recursive).data.shape_keys
blink_key = next(kb.name for kb in keys.key_blocks if animation._arkit_of(kb.name) == "eyeBlinkLeft")
i = int(np.argmax(csv.weight("eyeBlinkLeft")))
frame = 1 + int(round(csv.times[i] * 24))
sc.frame_set(frame)
facts["operator_csv"] = {"result": result, "blink_frame": frame, "range": list(keys.animation_data.action.frame_range),
                         "keyed": keys.key_blocks[blink_key].value, "csv_peak": float(csv.weight("eyeBlinkLeft")[i]),
                         "csv_at_frame": float(np.interp((frame - 1) / 24, csv.times, csv.weight("eyeBlinkLeft")))}
print("FACTS " + json.dumps(facts, default=str))
