"""Run in a fresh Python with bpy (subprocess): the add-on registered, our rig imported and selected, then the
Animate from Video operator itself (bpy.ops.headforge.animate_video) on a rendered clip, as the panel runs it
in background mode (the worker runs to the end, then the take is keyed). Prints `FACTS {json}`: the operator's
results, the keyed shape-key values per frame (read back through the depsgraph), the head bone's rotation, the
CSV it wrote beside the video, and what a video without a face and a missing file do.

A third clip, the same face with frames where it is gone, is keyed too (its CSV cannot be written: a folder is in
the way): the tracker's warning ("No face in …") and the CSV's must reach the operator's report (Blender prints a
background operator's reports: `Warning: …`) and the panel's STATUS["warnings"].

A fourth, a still video of a real face whose open eyes the eye model reads as closed (the group photo's woman,
as tests/animate/test_track.py), brings the tracker's other warning (blinks, gaze and brows from the landmarks).

argv: WORK RIG_GLB VIDEO NO_FACE_VIDEO LOST_FRAMES_VIDEO UNLIKE_EYES_VIDEO
"""
import json
import sys
from pathlib import Path

import bpy  # noqa: F401  (first: Embree)

import headforge
from headforge.addon import animation, head_import
from headforge.operators.animate import STATUS

work, rig_glb, video, no_face, gaps, unlike = (Path(a) for a in sys.argv[1:7])
facts = {}
headforge.register()

bpy.ops.wm.read_homefile(use_empty=True)
sc = bpy.context.scene
sc.render.fps, sc.render.fps_base = 30, 1.0
objs = list(head_import.import_head(rig_glb)["meshes"]) + [bpy.data.objects["Armature"]]
for ob in objs:
    ob.select_set(True)
bpy.context.view_layer.objects.active = objs[0]
mesh = next(o for o in objs if o.type == "MESH" and o.data.shape_keys and len(o.data.shape_keys.key_blocks) > 50)


def call(**kw):
    try:
        return list(bpy.ops.headforge.animate_video(**kw))
    except RuntimeError as e:  # the operator reported an error (background mode raises it)
        return ["RuntimeError", str(e)]


facts["run"] = call(filepath=str(video), smoothing=0.0, write_csv=True)
keys = mesh.data.shape_keys
action = keys.animation_data.action if keys.animation_data else None
facts["action"] = action.name if action else None
facts["frame_range"] = [int(v) for v in action.frame_range] if action else None
names = {kb.name: animation._arkit_of(kb.name) for kb in keys.key_blocks[1:]}
arm = bpy.data.objects["Armature"]
values, head = {a: [] for a in names.values() if a}, []
for f in range(facts["frame_range"][0], facts["frame_range"][1] + 1) if action else []:
    sc.frame_set(f)
    for kb, a in names.items():
        if a:
            values[a].append(keys.key_blocks[kb].value)
    head.append(list(arm.pose.bones["head"].rotation_quaternion))
facts["keyed"] = values
facts["head_quat"] = head
facts["csv_written"] = video.with_suffix(".csv").is_file()

# a video without a face: a coded error, and the take keyed above stays the head's action
facts["no_face"] = call(filepath=str(no_face), smoothing=0.0, write_csv=False)
facts["action_after_no_face"] = keys.animation_data.action.name if keys.animation_data.action else None
facts["missing"] = call(filepath=str(work / "absent.mp4"))
# a face lost in some frames: keyed, and the tracker's warning told in the report
(gaps.with_suffix(".csv")).mkdir()  # the CSV cannot be written there: the take is keyed all the same, and told
facts["gaps"] = call(filepath=str(gaps), smoothing=0.0, write_csv=True)
facts["gaps_status"] = {k: STATUS[k] for k in ("message", "error", "warnings")}
facts["unlike"] = call(filepath=str(unlike), smoothing=0.0, write_csv=False)
facts["unlike_status"] = {k: STATUS[k] for k in ("message", "error", "warnings")}
print("WARNINGS_DONE", flush=True)
print("FACTS " + json.dumps(facts))
