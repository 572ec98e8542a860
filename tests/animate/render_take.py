"""Ground-truth face video: a HeadForge rig driven by a take (Live Link Face CSV), rendered by Blender.

Run in a Python with bpy (subprocess): the rig is imported with head_import, keyed with addon.animation (shape
keys + head and eye bones), filmed by a pinhole camera in front of it (yaw degrees about the head), rendered
with Workbench (studio light, the rig's vertex colours: irises, mouth, teeth) straight into an H.264 MP4.

argv: RIG_GLB TAKE_CSV OUT_MP4 FRAMES WIDTH HEIGHT [CAMERA_YAW_DEG] [FOCAL_MM]
Prints `FACTS {json}`: frames, fps, camera K (3×3 OpenCV) and w2c (4×4 world → OpenCV camera).
"""
import json
import math
import sys
from pathlib import Path

import bpy  # noqa: F401  (first: Embree)
import numpy as np

from headforge.addon import animation, head_import
from headforge.backend.animate.livelink import read_livelink_csv

rig_glb, take_csv, out_mp4 = sys.argv[1:4]
frames, width, height = (int(a) for a in sys.argv[4:7])
yaw = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
focal_mm = float(sys.argv[8]) if len(sys.argv) > 8 else 50.0

SKIN, BROW, LIP = (0.72, 0.56, 0.47), (0.16, 0.11, 0.08), (0.55, 0.25, 0.25)


def paint_face(ob) -> dict:
    """A plain face painting in the vertex colours (the rig has no skin texture): skin tone, dark eyebrows where
    the brow shapes move the surface most, red lips where the lip shapes do. Irises, mouth and teeth keep their
    baked colours."""
    me = ob.data
    attr = me.color_attributes.active_color
    if attr is None or attr.domain != "CORNER":
        return {}
    kbs = me.shape_keys.key_blocks
    n = len(me.vertices)
    base = np.empty(n * 3)
    kbs[0].data.foreach_get("co", base)

    def motion(names):
        out = np.zeros(n)
        for name in names:
            co = np.empty(n * 3)
            kbs[name].data.foreach_get("co", co)
            out += np.linalg.norm((co - base).reshape(-1, 3), axis=1)
        return out

    brow = motion([k.name for k in kbs if k.name.lower().startswith("brow")])
    lips = motion([k.name for k in kbs if k.name in ("mouthFunnel", "mouthPucker", "mouthRollLower",
                                                     "mouthRollUpper")])
    col = np.empty(len(attr.data) * 4)
    attr.data.foreach_get("color", col)
    col = col.reshape(-1, 4)
    loops = np.empty(len(me.loops), np.int64)
    me.loops.foreach_get("vertex_index", loops)
    skin = np.all(np.isclose(col[:, :3], col[:1, :3]), axis=1) | (col[:, :3].std(axis=1) < 0.02)
    v = base.reshape(-1, 3)
    eye_z = 0.036  # ICT's eye centres (world metres; the rig keeps the model's frame)
    band = (v[:, 2] > eye_z + 0.012) & (v[:, 2] < eye_z + 0.022) & (np.abs(v[:, 0]) > 0.01) \
        & (np.abs(v[:, 0]) < 0.058) & (v[:, 2] < eye_z + 0.026 - 0.12 * np.maximum(np.abs(v[:, 0]) - 0.035, 0))
    is_brow = (band & (brow > 0.25 * brow.max()))[loops]
    is_lip = lips[loops] > 0.6 * lips.max()
    col[skin, :3] = SKIN
    col[skin & is_brow, :3] = BROW
    col[skin & is_lip & ~is_brow, :3] = LIP
    attr.data.foreach_set("color", col.ravel())
    return {"brow_corners": int((skin & is_brow).sum()), "lip_corners": int((skin & is_lip).sum())}


bpy.ops.wm.read_homefile(use_empty=True)
sc = bpy.context.scene
head_import.import_head(rig_glb)
painted = {o.name: paint_face(o) for o in sc.objects if o.type == "MESH" and o.data.shape_keys}
take = read_livelink_csv(take_csv)
sc.render.fps, sc.render.fps_base = int(round(take.fps)), 1.0
rep = animation.apply_take(take, [o for o in sc.objects if o.type in ("MESH", "ARMATURE")], scene=sc, frame_start=1)
sc.frame_start, sc.frame_end = 1, min(frames, rep["frames"])

cam_data = bpy.data.cameras.new("camera")
cam_data.lens, cam_data.sensor_fit, cam_data.sensor_width = focal_mm, "HORIZONTAL", 36.0
cam = bpy.data.objects.new("camera", cam_data)
sc.collection.objects.link(cam)
sc.camera = cam
target = np.array([0.0, 0.0, 0.03])  # between the eyes and the mouth of the ICT head (metres)
dist = 0.62 * focal_mm / 50.0  # the head fills the same part of the picture whatever the lens
a = math.radians(yaw)
cam.location = tuple(target + dist * np.array([math.sin(a), -math.cos(a), 0.0]))
cam.rotation_euler = (math.pi / 2, 0.0, a)
sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = width, height, 100
sc.render.engine = "BLENDER_WORKBENCH"
sc.display.shading.light = "STUDIO"
sc.display.shading.color_type = "VERTEX"  # the baked iris, mouth and teeth colours
sc.display.render_aa = "8"
sc.world = sc.world or bpy.data.worlds.new("world")
sc.world.color = (0.35, 0.38, 0.42)
ims = sc.render.image_settings
ims.media_type = "VIDEO"
ims.file_format = "FFMPEG"
sc.render.ffmpeg.format, sc.render.ffmpeg.codec = "MPEG4", "H264"
sc.render.ffmpeg.constant_rate_factor = "PERC_LOSSLESS"
sc.render.filepath = str(Path(out_mp4).with_suffix("")) + "_"
bpy.ops.render.render(animation=True)
written = sorted(Path(out_mp4).parent.glob(Path(out_mp4).stem + "_*.mp4"))[-1]
written.replace(out_mp4)

# OpenCV intrinsics and extrinsics of the camera (world → camera: x right, y down, z forward)
f_px = focal_mm / 36.0 * width
K = [[f_px, 0, (width - 1) / 2], [0, f_px, (height - 1) / 2], [0, 0, 1]]
c2w = np.array(cam.matrix_world)
c2w[:3, 1:3] *= -1  # Blender camera (−Z forward, +Y up) → OpenCV
print("FACTS " + json.dumps({"frames": sc.frame_end, "fps": take.fps, "K": K, "w2c": np.linalg.inv(c2w).tolist(),
                             "matched": len(rep["matched"]), "bones": rep["bones"], "painted": painted}))
