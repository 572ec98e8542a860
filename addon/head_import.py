"""Rigged head glb → Blender: meshes with ARKit shape keys, an armature, textured materials, one collection.

The rig stage writes mesh + skin + morph targets; Blender's glTF importer makes the armature, the shape keys
(names from `extras.targetNames`, kept exactly) and the materials. Afterwards, per DESIGN.md:
- every mesh is deformed by the armature and the Armature modifier is its only modifier;
- a glb without a skin (a plain blendshape head such as the facecap test asset) gets a minimal rig:
  root → neck → head, jaw, eye_L/eye_R bones placed from the meshes' bounds, each mesh bound rigidly
  (eye meshes to their eye bone, everything else to `head`); transforms are baked into the meshes (shape keys
  included) so the meshes sit at identity under the armature;
- everything goes into one collection under one root empty (the splat joins it: `results.py`).
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..backend.errors import HeadForgeError
from ..backend.headmodel.arkit import ARKIT_52, ict_to_arkit_name

BONE_ROLES = ("root", "neck", "head", "jaw", "eye_L", "eye_R")
_LEFT = re.compile(r"(left|_l$|\.l$|_l_|l_eye)", re.I)
_RIGHT = re.compile(r"(right|_r$|\.r$|_r_|r_eye)", re.I)


class HeadImportError(HeadForgeError):
    """A rigged head file cannot be imported (missing, not glTF, no mesh)."""

    code = "head.bad_file"


def arkit_name(name: str) -> str | None:
    """The ARKit name a shape key stands for (Apple's spelling or the `_L`/`_R` alias), else None."""
    if name in ARKIT_52:
        return name
    alias = ict_to_arkit_name(name)
    return alias if alias in ARKIT_52 else None


def _world_vertices(ob) -> np.ndarray:
    me = ob.data
    co = np.empty(len(me.vertices) * 3, np.float64)
    me.vertices.foreach_get("co", co)
    mw = np.array(ob.matrix_world)
    return co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3]


def _role_of_bone(name: str) -> str | None:
    low = name.lower()
    if "eye" in low:
        return "eye_L" if _LEFT.search(name) else "eye_R" if _RIGHT.search(name) else None
    for role in ("jaw", "neck", "head", "root"):
        if role in low:
            return role
    return None


def _build_armature(name: str, meshes: list, collection) -> tuple[bpy.types.Object, dict]:
    """A minimal head rig from the meshes' world bounds; returns (armature, mesh → bone to bind rigidly).

    Eye meshes (named "eye…") get the eye bone of their side by position: +X is the subject's left."""
    is_eye = {m: "eye" in m.name.lower() for m in meshes}
    body = [m for m in meshes if not is_eye[m]] or meshes
    v = np.concatenate([_world_vertices(m) for m in body])
    lo, hi = v.min(0), v.max(0)
    c, size = (lo + hi) / 2, hi - lo
    eyes = {m: (("eye_L" if _world_vertices(m).mean(0)[0] > c[0] else "eye_R") if is_eye[m] else None)
            for m in meshes}
    h = float(size[2])
    eye_centres = {}
    for m, side in eyes.items():
        if side:
            eye_centres[side] = _world_vertices(m).mean(0)
    for side, sx in (("eye_L", 1.0), ("eye_R", -1.0)):  # +X is the subject's left
        eye_centres.setdefault(side, np.array([c[0] + sx * 0.17 * size[0], lo[1] + 0.15 * size[1], lo[2] + 0.62 * h]))

    arm_data = bpy.data.armatures.new(f"{name}_rig")
    arm = bpy.data.objects.new(f"{name}_rig", arm_data)
    collection.objects.link(arm)
    view_layer = bpy.context.view_layer
    prev_active = view_layer.objects.active
    view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    eb = arm_data.edit_bones

    def bone(bname, head, tail, parent=None):
        b = eb.new(bname)
        b.head, b.tail = Vector(head), Vector(tail)
        if parent is not None:
            b.parent = parent
            b.use_connect = (b.head - parent.tail).length < 1e-6
        return b

    base = np.array([c[0], c[1], lo[2]])
    root = bone("root", base, base + [0, 0.1 * h, 0])
    neck = bone("neck", base, base + [0, 0, 0.3 * h], root)
    head = bone("head", neck.tail, base + [0, 0, h], neck)
    jaw_pivot = np.array([c[0], c[1] + 0.1 * size[1], lo[2] + 0.45 * h])
    bone("jaw", jaw_pivot, [c[0], lo[1], lo[2] + 0.08 * h], head)
    for side in ("eye_L", "eye_R"):
        e = eye_centres[side]
        bone(side, e, e - [0, 0.15 * h, 0], head)
    bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = prev_active
    return arm, {m: eyes[m] or "head" for m in meshes}


def _bind_rigid(ob, arm, bone_name: str) -> None:
    vg = ob.vertex_groups.new(name=bone_name)
    vg.add(range(len(ob.data.vertices)), 1.0, "REPLACE")


def import_head(path, *, name: str | None = None, collection=None, root=None) -> dict:
    """Import a rigged head glb; returns {collection, root, armature, meshes, facts}. Raises HeadImportError.

    `collection`/`root`: where to put it (default: a new "HeadForge <name>" collection and root empty)."""
    t0 = time.perf_counter()
    path = Path(path)
    if not path.is_file():
        raise HeadImportError(f"{path} does not exist.", code="head.not_found")
    if path.suffix.lower() not in (".glb", ".gltf"):
        raise HeadImportError(f"{path.name}: a rigged head is a .glb or .gltf file.", code="head.bad_format")
    name = name or path.stem
    before = set(bpy.data.objects)
    if bpy.context.object is not None and bpy.context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    try:
        result = bpy.ops.import_scene.gltf(filepath=str(path), import_shading="NORMALS")
    except RuntimeError as e:
        _remove(set(bpy.data.objects) - before)
        raise HeadImportError(f"{path.name} could not be read as glTF: {str(e).strip().splitlines()[-1]}",
                              code="head.bad_gltf") from e
    new = [ob for ob in bpy.data.objects if ob not in before]
    bone_shapes = {pb.custom_shape for ob in new if ob.type == "ARMATURE" for pb in ob.pose.bones}
    meshes = [ob for ob in new if ob.type == "MESH" and ob not in bone_shapes]
    if result != {"FINISHED"} or not meshes:
        _remove(set(new))
        raise HeadImportError(f"{path.name} holds no mesh.", code="head.no_mesh")
    t_gltf = time.perf_counter()

    if collection is None:
        collection = bpy.data.collections.new(f"HeadForge {name}")
        bpy.context.scene.collection.children.link(collection)
    armatures = [ob for ob in new if ob.type == "ARMATURE"]
    node_names = {}
    for ob in meshes:  # unskinned meshes: bake their transform (shape keys too), name them after their node
        if ob.parent is not None and ob.parent.type == "EMPTY" and re.fullmatch(r"Mesh(_\d+)?(\.\d+)?", ob.name):
            node_names[ob] = ob.parent.name
        if not any(m.type == "ARMATURE" for m in ob.modifiers):
            mw = ob.matrix_world.copy()
            ob.parent = None
            ob.data.transform(mw, shape_keys=True)
            if mw.determinant() < 0:
                ob.data.flip_normals()
            ob.matrix_world = Matrix.Identity(4)
    for ob in [o for o in new if o.type == "EMPTY"]:  # the glTF node hierarchy: no longer needed
        for child in list(ob.children):
            mw = child.matrix_world.copy()
            child.parent = None
            child.matrix_world = mw
        bpy.data.objects.remove(ob)
    for ob, node_name in node_names.items():
        ob.name = node_name
    built = False
    if armatures:
        arm = armatures[0]
    else:
        arm, binding = _build_armature(name, meshes, collection)
        for ob, bone_name in binding.items():
            _bind_rigid(ob, arm, bone_name)
        built = True
    for ob in meshes:
        for mod in [m for m in ob.modifiers if m.type != "ARMATURE"]:
            ob.modifiers.remove(mod)
        mods = [m for m in ob.modifiers if m.type == "ARMATURE"]
        for extra in mods[1:]:
            ob.modifiers.remove(extra)
        mod = mods[0] if mods else ob.modifiers.new("Armature", "ARMATURE")
        mod.object = arm
        if ob.parent is not arm:
            mw = ob.matrix_world.copy()
            ob.parent = arm
            ob.matrix_world = mw

    if root is None:
        root = bpy.data.objects.new(f"{name}_root", None)
        root.empty_display_type, root.empty_display_size = "PLAIN_AXES", 0.1
    kept = [ob for ob in bpy.data.objects if ob in set(meshes) | {arm}]
    for ob in kept + ([root] if collection not in root.users_collection else []):
        for coll in list(ob.users_collection):
            coll.objects.unlink(ob)
        collection.objects.link(ob)
    mw = arm.matrix_world.copy()
    arm.parent = root
    arm.matrix_world = mw
    root["headforge_head"] = str(path.resolve())

    keys = [kb.name for ob in meshes if ob.data.shape_keys for kb in ob.data.shape_keys.key_blocks[1:]]
    bones = {b.name for b in arm.data.bones}
    roles = {r: sorted(b for b in bones if _role_of_bone(b) == r) for r in BONE_ROLES}
    facts = {"meshes": [ob.name for ob in meshes], "armature": arm.name, "built_armature": built,
             "bones": sorted(bones), "missing_bones": [r for r, b in roles.items() if not b],
             "shape_keys": len(keys), "arkit_keys": len({arkit_name(k) for k in keys} - {None}),
             "textured_materials": sorted({s.material.name for ob in meshes for s in ob.material_slots
                                           if s.material and _has_texture(s.material)}),
             "seconds": {"gltf": round(t_gltf - t0, 3), "total": round(time.perf_counter() - t0, 3)}}
    return {"collection": collection, "root": root, "armature": arm, "meshes": meshes, "facts": facts}


def _has_texture(mat) -> bool:
    return mat.node_tree is not None and any(n.type == "TEX_IMAGE" and n.image is not None and n.image.size[0] > 0
                                             for n in mat.node_tree.nodes)


def _remove(objects) -> None:
    for ob in objects:
        bpy.data.objects.remove(ob)
