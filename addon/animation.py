"""Takes (backend/animate) → Blender: one new Action per take, keyed on ARKit-named shape keys and on the rig's
head and eye bones, at the scene's frame rate.

- Shape keys are matched by ARKit name on every mesh given (Apple's spelling, any case, or our `_L`/`_R`
  aliases): ours, FaceBuilder's, VRoid or ReadyPlayerMe heads alike. Names of the take no mesh has are reported.
- Head rotation keys the `head` bone, eye rotations the `eye_L` (the subject's left) and `eye_R` bones (found by
  role, like head_import), as quaternions in each bone's rest frame.
- The take is resampled to the scene's frame rate (its duration kept) and starts at `frame_start`.
- One Action holds the take, with one slot per animated datablock (each mesh's shape-key datablock and the
  armature object), so it can be pushed into the NLA and mixed with other takes. An Action already on a
  datablock is never overwritten: it is kept as an NLA strip under the new take (or replaced, when asked, and
  still kept in the file with a fake user).
"""
from __future__ import annotations

import bpy
import numpy as np

from ..backend.animate.take import Take, euler_to_matrix
from ..backend.errors import HeadForgeError
from ..backend.headmodel.arkit import ARKIT_52
from .head_import import role_of_bone, arkit_name

BONE_FOR = {"head": "head", "eye_left": "eye_L", "eye_right": "eye_R"}


class AnimationApplyError(HeadForgeError):
    code = "animate.apply_failed"


def scene_fps(scene) -> float:
    return scene.render.fps / scene.render.fps_base


def _arkit_of(name: str) -> str | None:
    a = arkit_name(name)
    if a:
        return a
    low = {n.lower(): n for n in ARKIT_52}
    return low.get(name.lower()) or low.get(name.lower().replace("_", "").replace(".", ""))


def shape_key_targets(meshes) -> dict:
    """{Key datablock: {ARKit name: key block name}} for the meshes' shape keys."""
    out = {}
    for ob in meshes:
        keys = ob.data.shape_keys if ob.type == "MESH" else None
        if keys is None or keys in out:
            continue
        m = {}
        for kb in keys.key_blocks[1:]:
            a = _arkit_of(kb.name)
            if a and a not in m:
                m[a] = kb.name
        if m:
            out[keys] = m
    return out


def find_armature(objects):
    for ob in objects:
        if ob.type == "ARMATURE":
            return ob
    for ob in objects:
        for md in getattr(ob, "modifiers", []):
            if md.type == "ARMATURE" and md.object is not None:
                return md.object
        if ob.parent is not None and ob.parent.type == "ARMATURE":
            return ob.parent
    return None


def _bone_by_role(arm, role: str):
    names = sorted(b.name for b in arm.data.bones if role_of_bone(b.name) == role)
    if not names:
        return None
    exact = [n for n in names if n == role]
    return (exact or names)[0]


def _keep_existing(ad, replace: bool, kept: list) -> None:
    """Keep the datablock's current action: an NLA strip under the new take, or (replace) a fake user."""
    old = ad.action
    if old is None:
        return
    if replace:
        old.use_fake_user = True
        kept.append({"action": old.name, "kept_as": "fake_user"})
    else:
        track = ad.nla_tracks.new()
        track.name = f"HF {old.name}"
        start = int(old.frame_range[0])
        strip = track.strips.new(old.name, start, old)
        if ad.action_slot is not None and hasattr(strip, "action_slot"):
            strip.action_slot = ad.action_slot
        kept.append({"action": old.name, "kept_as": f"NLA track {track.name}"})
    ad.action = None


def _fcurve(action, datablock, path: str, index: int, frames: np.ndarray, values: np.ndarray):
    fc = action.fcurve_ensure_for_datablock(datablock, path, index=index)
    fc.keyframe_points.clear()
    fc.keyframe_points.add(len(frames))
    co = np.empty(2 * len(frames), np.float32)
    co[0::2], co[1::2] = frames, values
    fc.keyframe_points.foreach_set("co", co)
    fc.keyframe_points.foreach_set("interpolation", np.full(len(frames), 1, np.int32))  # LINEAR (enum index 1)
    fc.update()
    return fc


def _quat_track(R_world: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(T, 4) w, x, y, z pose quaternions: world-axis rotations R (T, 3, 3) about a bone whose rest frame in
    armature space is B (3, 3); signs kept continuous."""
    from scipy.spatial.transform import Rotation

    local = np.einsum("ji,tjk,kl->til", B, R_world, B)  # Bᵀ R B
    q = Rotation.from_matrix(local).as_quat()[:, [3, 0, 1, 2]]
    for i in range(1, len(q)):
        if np.dot(q[i], q[i - 1]) < 0:
            q[i] = -q[i]
    return q


def apply_take(take: Take, objects, *, scene=None, frame_start: int | None = None, replace: bool = False,
               name: str | None = None) -> dict:
    """Key `take` onto `objects` (meshes with ARKit shape keys and/or their armature); returns a report dict:
    action, fps, frames, frame_range, matched / missing ARKit names, bones keyed, actions kept."""
    scene = scene or bpy.context.scene
    objects = [ob for ob in objects if ob is not None]
    arm = find_armature(objects)
    meshes = [ob for ob in objects if ob.type == "MESH"]
    if arm is not None:
        meshes += [ob for ob in arm.children_recursive if ob.type == "MESH" and ob not in meshes]
    targets = shape_key_targets(meshes)
    if not targets and arm is None:
        raise AnimationApplyError("Nothing to animate: select a head with ARKit-named shape keys or its armature.",
                                  code="animate.no_target")
    if take.n_frames == 0:
        raise AnimationApplyError("The take has no frames.", code="animate.empty")
    fps = scene_fps(scene)
    t = take if abs(take.fps - fps) < 1e-9 else take.resample(fps)
    start = scene.frame_current if frame_start is None else int(frame_start)
    frames = start + np.round(t.times * fps).astype(np.float64)
    action = bpy.data.actions.new(name or take.name or "Take")
    kept: list = []
    matched: set = set()
    take_names = set(t.names)
    for keys, mapping in targets.items():
        used = {a: kb for a, kb in mapping.items() if a in take_names}
        if not used:
            continue
        ad = keys.animation_data or keys.animation_data_create()
        _keep_existing(ad, replace, kept)
        ad.action = action
        for a, kb in sorted(used.items()):
            _fcurve(action, keys, f'key_blocks["{bpy.utils.escape_identifier(kb)}"].value', 0, frames, t.weight(a))
            matched.add(a)
    bones = {}
    if arm is not None:
        rot_tracks = {r: getattr(t, r) for r in BONE_FOR if getattr(t, r) is not None}
        if rot_tracks:
            Aw = np.array(arm.matrix_world.to_3x3().normalized())
            for r, ypr in rot_tracks.items():
                bname = _bone_by_role(arm, BONE_FOR[r])
                if bname is None:
                    continue
                B = np.array(arm.data.bones[bname].matrix_local.to_3x3().normalized())
                R_arm = np.einsum("ji,tjk,kl->til", Aw, euler_to_matrix(ypr), Aw)  # world axes → armature axes
                q = _quat_track(R_arm, B)
                if not bones:
                    ad = arm.animation_data or arm.animation_data_create()
                    _keep_existing(ad, replace, kept)
                    ad.action = action
                arm.pose.bones[bname].rotation_mode = "QUATERNION"
                path = f'pose.bones["{bpy.utils.escape_identifier(bname)}"].rotation_quaternion'
                for c in range(4):
                    _fcurve(action, arm, path, c, frames, q[:, c])
                bones[r] = bname
    if not matched and not bones:
        bpy.data.actions.remove(action)
        raise AnimationApplyError("None of the take's shape keys or rotations matched the selected head.",
                                  code="animate.nothing_matched",
                                  hint="The meshes need ARKit-named shape keys (eyeBlinkLeft, jawOpen, …).")
    action.use_frame_range = True
    action.frame_start, action.frame_end = float(frames[0]), float(frames[-1])
    if frames[-1] > scene.frame_end:
        scene.frame_end = int(frames[-1])
    missing = [n for n in t.names if n not in matched]
    return {"action": action.name, "fps": fps, "frames": int(len(frames)),
            "frame_range": (int(frames[0]), int(frames[-1])), "matched": sorted(matched), "missing": missing,
            "bones": bones, "kept": kept, "resampled": t is not take}


def read_take(path, fps: float | None = None) -> Take:
    """A take from a Live Link Face CSV or a glTF/GLB morph-weight animation, by extension."""
    from pathlib import Path

    from ..backend.animate.gltf_take import read_gltf_take
    from ..backend.animate.livelink import read_livelink_csv
    from ..backend.animate.take import AnimationError

    p = Path(path)
    ext = p.suffix.lower()
    if ext == ".csv":
        return read_livelink_csv(p, fps=fps)
    if ext in (".glb", ".gltf"):
        return read_gltf_take(p)
    raise AnimationError(f"{p.name}: takes are read from Live Link Face .csv or glTF .glb/.gltf files.",
                         code="animate.bad_format")


def sample_shape_keys(keys, frames) -> dict:
    """{key block name: (len(frames),) values} evaluated from the animation (tests, reports)."""
    out = {}
    ad = keys.animation_data
    if ad is None or ad.action is None:
        return out
    from bpy_extras import anim_utils

    bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
    for fc in (bag.fcurves if bag else []):
        if fc.data_path.startswith("key_blocks["):
            kb = fc.data_path.split('"')[1]
            out[kb] = np.array([fc.evaluate(f) for f in frames])
    return out

