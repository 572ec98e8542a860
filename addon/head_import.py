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

import json
import re
import time
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..backend.errors import HeadForgeError
from ..backend.headmodel.arkit import ARKIT_52, ict_to_arkit_name

BONE_ROLES = ("root", "neck", "head", "jaw", "eye_L", "eye_R")
PLACED_KEY = "headforge_to_reconstruction"  # armature property: the 4×4 (row-major) applied from rig.json
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


def role_of_bone(name: str) -> str | None:
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
    placed = to_reconstruction(path)  # checked before anything is imported
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
    _remove_bone_shapes([ob for ob in new if ob.type == "ARMATURE"])
    new = [ob for ob in bpy.data.objects if ob not in before]
    meshes = [ob for ob in new if ob.type == "MESH"]
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
    if placed is not None:  # the rig frame → the reconstruction's frame, where the job's splat lives
        mw = placed @ mw
        arm[PLACED_KEY] = [x for row in placed for x in row]  # exports take the head back to the rig frame
    arm.parent = root
    arm.matrix_world = mw
    root["headforge_head"] = str(path.resolve())
    baked = [m for ob in meshes for m in bake_vertex_colours(ob)]

    keys = [kb.name for ob in meshes if ob.data.shape_keys for kb in ob.data.shape_keys.key_blocks[1:]]
    bones = {b.name for b in arm.data.bones}
    roles = {r: sorted(b for b in bones if role_of_bone(b) == r) for r in BONE_ROLES}
    facts = {"meshes": [ob.name for ob in meshes], "armature": arm.name, "built_armature": built,
             "bones": sorted(bones), "missing_bones": [r for r, b in roles.items() if not b],
             "shape_keys": len(keys), "arkit_keys": len({arkit_name(k) for k in keys} - {None}),
             "textured_materials": sorted({s.material.name for ob in meshes for s in ob.material_slots
                                           if s.material and _has_texture(s.material)}),
             "baked_vertex_colours": sorted(baked), "to_reconstruction": placed is not None,
             "seconds": {"gltf": round(t_gltf - t0, 3), "total": round(time.perf_counter() - t0, 3)}}
    return {"collection": collection, "root": root, "armature": arm, "meshes": meshes, "facts": facts}


def to_reconstruction(glb: Path) -> Matrix | None:
    """The similarity rig frame → reconstruction frame from the rig.json beside a HeadForge rig (full and views
    modes fit the head model to the reconstructed mesh: x_rec = s·R·x + t), None when there is none."""
    p = glb.with_name("rig.json")
    try:
        record = json.loads(p.read_text()) if p.is_file() else {}
    except (OSError, ValueError) as e:
        raise HeadImportError(f"{p} cannot be read: {e}", code="head.bad_rig_json") from e
    tr = record.get("to_reconstruction")
    if not tr:
        return None
    try:
        s, R, t = float(tr["scale"]), np.asarray(tr["R"], np.float64), np.asarray(tr["t"], np.float64)
        ok = R.shape == (3, 3) and t.shape == (3,) and s > 0 and np.allclose(R @ R.T, np.eye(3), atol=1e-4) \
            and np.linalg.det(R) > 0 and np.isfinite([s, *R.ravel(), *t]).all()
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise HeadImportError(f"{p}: to_reconstruction is not a similarity (scale > 0, rotation R, translation t).",
                              code="head.bad_rig_json")
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = s * R, t
    return Matrix(M.tolist())


def _remove_bone_shapes(armatures) -> None:
    """The glTF importer's bone display shapes (an `Icosphere` in a hidden `glTF_not_exported` collection) pile up
    with every import: drop them (bones draw as octahedra)."""
    shapes = {pb.custom_shape for arm in armatures for pb in arm.pose.bones if pb.custom_shape is not None}
    for arm in armatures:
        for pb in arm.pose.bones:
            pb.custom_shape = None
    for ob in shapes:
        colls, data = list(ob.users_collection), ob.data
        bpy.data.objects.remove(ob)
        if data is not None and data.users == 0:
            bpy.data.meshes.remove(data)
        for coll in colls:
            if coll.name.startswith("glTF_not_exported") and not coll.all_objects and not coll.children:
                bpy.data.collections.remove(coll)


_SRGB_BREAK = 0.0031308


def _linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= _SRGB_BREAK, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def _colour_source(mat):
    """(Principled BSDF, the node feeding its Base Color from a colour attribute, the attribute's name or "" for
    the active one) or None when the colour is not a bare colour attribute. Blender's glTF importer uses a
    Color Attribute node up to 5.2 and an Attribute node from 5.3."""
    if mat is None or mat.node_tree is None:
        return None
    for node in mat.node_tree.nodes:
        if node.type == "BSDF_PRINCIPLED":
            links = node.inputs["Base Color"].links
            src = links[0].from_node if links else None
            if src is not None and src.type == "VERTEX_COLOR":
                return node, src, src.layer_name
            if src is not None and src.type == "ATTRIBUTE" and src.attribute_type == "GEOMETRY" and \
                    links[0].from_socket.name == "Color":
                return node, src, src.attribute_name
    return None


def bake_vertex_colours(ob) -> list[str]:
    """Materials coloured by a colour attribute (the rig's eyes, mouth, teeth; FLAME's skin) get that colour as
    a small image instead: FBX keeps no such link (the parts came back white) and engines differ on vertex
    colours. Each face's colour (the mean of its corners) is one texel, and the face's corners map to that
    texel's centre in the UV map (faces of these materials have no texture coordinates of their own), so the
    exported texture shows exactly the per-face colour. Returns the names of the materials changed."""
    me = ob.data
    slots = [(i, s.material, _colour_source(s.material)) for i, s in enumerate(ob.material_slots)]
    slots = [(i, m, src) for i, m, src in slots if src is not None]
    if not slots or not len(me.polygons):
        return []
    n_faces, n_loops = len(me.polygons), len(me.loops)
    mat_index = np.zeros(n_faces, np.int32)
    me.polygons.foreach_get("material_index", mat_index)
    loop_start = np.zeros(n_faces, np.int64)
    me.polygons.foreach_get("loop_start", loop_start)
    loop_total = np.zeros(n_faces, np.int64)
    me.polygons.foreach_get("loop_total", loop_total)
    uv_layer = me.uv_layers.active or me.uv_layers.new(name="UVMap")
    uv = np.zeros(n_loops * 2, np.float32)
    uv_layer.uv.foreach_get("vector", uv)
    uv = uv.reshape(-1, 2)
    done = []
    for i, mat, (bsdf, node, attr_name) in slots:
        attr = me.color_attributes.get(attr_name) if attr_name else \
            me.color_attributes.active_color or (me.color_attributes[0] if me.color_attributes else None)
        if attr is None:
            continue
        col = np.zeros(len(attr.data) * 4, np.float32)
        attr.data.foreach_get("color", col)  # linear RGBA for both byte and float attributes
        col = col.reshape(-1, 4)[:, :3]
        if attr.domain == "POINT":
            vi = np.zeros(n_loops, np.int32)
            me.loops.foreach_get("vertex_index", vi)
            col = col[vi]
        faces = np.nonzero(mat_index == i)[0]
        if not len(faces):
            continue
        face_col = np.add.reduceat(col, loop_start)[faces] / loop_total[faces, None]
        side = int(np.ceil(np.sqrt(len(faces))))
        img = bpy.data.images.new(f"{mat.name} colours", side, side, alpha=False)
        px = np.ones((side * side, 4), np.float32)
        px[: len(faces), :3] = _linear_to_srgb(face_col)
        img.pixels.foreach_set(px.ravel())
        img.pack()
        img.filepath_raw = f"//{bpy.path.clean_name(img.name)}.png"  # the name exporters embed it under
        slot_uv = (np.stack([np.arange(len(faces)) % side, np.arange(len(faces)) // side], 1) + 0.5) / side
        loops = np.repeat(np.arange(len(faces)), loop_total[faces])
        starts = np.repeat(loop_start[faces], loop_total[faces])
        offsets = np.arange(len(loops)) - np.repeat(np.cumsum(loop_total[faces]) - loop_total[faces], loop_total[faces])
        uv[starts + offsets] = slot_uv[loops]
        if mat.users > 1:  # another object keeps the original
            mat = mat.copy()
            ob.material_slots[i].material = mat
            bsdf, node, _ = _colour_source(mat)
        nt = mat.node_tree
        tex = nt.nodes.new("ShaderNodeTexImage")
        tex.image, tex.interpolation, tex.location = img, "Closest", node.location
        nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        nt.nodes.remove(node)
        done.append(mat.name)
    uv_layer.uv.foreach_set("vector", uv.ravel())
    return done


def _has_texture(mat) -> bool:
    return mat.node_tree is not None and any(n.type == "TEX_IMAGE" and n.image is not None and n.image.size[0] > 0
                                             for n in mat.node_tree.nodes)


def _remove(objects) -> None:
    for ob in objects:
        bpy.data.objects.remove(ob)
