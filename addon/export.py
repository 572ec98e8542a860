"""Export the rigged head (armature + meshes with shape keys) to glTF/GLB and FBX through Blender's exporters.

Shape keys survive because the meshes' only modifier is the Armature and modifiers are not applied on export.
A head placed onto its job's splat (rig.json's to_reconstruction) is exported in the rig's own frame and size.
`arkit_names=True` writes Apple's spelling for keys stored under an alias (`eyeBlink_L` → `eyeBlinkLeft`):
what game engines' ARKit/LiveLink face mappings match by name. The Blender data keeps its names.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

import bpy

from ..backend.errors import HeadForgeError
from mathutils import Matrix

from .head_import import PLACED_KEY, arkit_name

# Presets of the "Export for game engines" operator: file format and FBX/glTF choices per engine.
GAME_TARGETS = {
    "UNREAL": {"format": "FBX", "label": "Unreal Engine (FBX)"},
    "UNITY": {"format": "FBX", "label": "Unity (FBX)"},
    "GODOT": {"format": "GLB", "label": "Godot (GLB)"},
    "WEB": {"format": "GLB", "label": "three.js / Babylon.js / web (GLB)"},
}


class ExportError(HeadForgeError):
    code = "export.failed"


def plays_take(objects) -> bool:
    """Whether the head plays a take: an Action on one of `objects` or on their shape keys."""
    owners = [o for ob in objects for o in (ob, getattr(getattr(ob, "data", None), "shape_keys", None)) if o]
    return any(o.animation_data is not None and o.animation_data.action is not None for o in owners)


def head_objects(context) -> list:
    """The head to export: armatures and meshes deformed by them, from the selection or the active object's
    HeadForge collection (splats and other objects are left out)."""
    obs = list(context.selected_objects) or ([context.active_object] if context.active_object else [])
    if obs and obs[0] is not None and obs[0].type == "EMPTY" and obs[0].get("headforge_head"):
        obs = list(obs[0].children_recursive)
    arms = {ob for ob in obs if ob.type == "ARMATURE"}
    arms |= {m.object for ob in obs if ob.type == "MESH" for m in ob.modifiers if m.type == "ARMATURE" and m.object}
    meshes = {ob for arm in arms for ob in arm.children_recursive if ob.type == "MESH"}
    meshes |= {ob for ob in obs if ob.type == "MESH" and not ob.get("headforge_splat")}
    return sorted(arms | meshes, key=lambda o: o.name)


@contextlib.contextmanager
def arkit_spelling(objects, enabled: bool = True):
    """Temporarily rename alias-named shape keys to Apple's ARKit names (restored afterwards)."""
    renamed = []
    if enabled:
        for ob in objects:
            keys = ob.data.shape_keys if ob.type == "MESH" else None
            if keys is None:
                continue
            taken = {kb.name for kb in keys.key_blocks}
            for kb in keys.key_blocks[1:]:
                apple = arkit_name(kb.name)
                if apple and apple != kb.name and apple not in taken:
                    renamed.append((kb, kb.name))
                    kb.name = apple
    try:
        yield len(renamed)
    finally:
        for kb, old in renamed:
            kb.name = old


@contextlib.contextmanager
def rig_frame(objects):
    """Temporarily undo the placement onto the reconstruction (rig.json's to_reconstruction, a similarity with
    scale ≠ 1) so that an exported head has the rig's true size (metres) and frame."""
    moved = []
    for ob in objects:
        placed = ob.get(PLACED_KEY) if ob.type == "ARMATURE" else None
        if placed is not None and len(placed) == 16:
            M = Matrix([placed[i:i + 4] for i in range(0, 16, 4)])
            moved.append((ob, ob.matrix_world.copy()))
            ob.matrix_world = M.inverted() @ ob.matrix_world
    try:
        yield len(moved)
    finally:
        for ob, mw in moved:
            ob.matrix_world = mw


@contextlib.contextmanager
def _selected(objects):
    view_layer = bpy.context.view_layer
    before = list(bpy.context.selected_objects), view_layer.objects.active
    if bpy.context.object is not None and bpy.context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    for ob in before[0]:
        ob.select_set(False)
    for ob in objects:
        ob.hide_set(False)
        ob.select_set(True)
    view_layer.objects.active = objects[0]
    try:
        yield
    finally:
        for ob in objects:
            ob.select_set(False)
        for ob in before[0]:
            if ob.name in view_layer.objects:
                ob.select_set(True)
        view_layer.objects.active = before[1]


def export_head(objects, path, *, fmt: str | None = None, arkit_names: bool = False,
                animations: bool = False, takes: str = "ACTIVE") -> dict:
    """Write `objects` (armature + meshes) as GLB/glTF or FBX; returns {path, format, seconds, renamed}.

    With `animations`, glTF gets, for `takes` = "ACTIVE", the take the head plays now (each datablock's current
    Action, one glTF animation; takes kept in the NLA under it are left out); "ALL": every Action, one glTF
    animation each (a reader that merges a file's animations, as capture apps' files need, then mixes the takes).
    FBX always carries every Action as its own take (Blender's FBX round trip of the scene's single baked take
    lands one frame late: measured on the instant-mode head, 2026-12-07)."""
    t0 = time.perf_counter()
    path = Path(path)
    objects = [ob for ob in objects if ob is not None]
    if not any(ob.type == "MESH" for ob in objects):
        raise ExportError("Nothing to export: select the HeadForge head (its armature or meshes).",
                          code="export.nothing_selected")
    fmt = fmt or {".glb": "GLB", ".gltf": "GLTF_SEPARATE", ".fbx": "FBX"}.get(path.suffix.lower())
    if fmt not in ("GLB", "GLTF_SEPARATE", "FBX"):
        raise ExportError(f"{path.name}: export writes .glb, .gltf or .fbx.", code="export.bad_format")
    if takes not in ("ACTIVE", "ALL"):
        raise ExportError(f"takes must be ACTIVE or ALL, not {takes!r}.", code="export.bad_option")
    path.parent.mkdir(parents=True, exist_ok=True)
    every = takes == "ALL"
    with _selected(objects), rig_frame(objects), arkit_spelling(objects, arkit_names) as renamed:
        if fmt == "FBX":
            res = bpy.ops.export_scene.fbx(
                filepath=str(path), use_selection=True, object_types={"ARMATURE", "MESH"}, use_mesh_modifiers=False,
                add_leaf_bones=False, use_armature_deform_only=False, bake_anim=animations,
                apply_scale_options="FBX_SCALE_ALL", path_mode="COPY", embed_textures=True,
                mesh_smooth_type="FACE")
        else:
            res = bpy.ops.export_scene.gltf(
                filepath=str(path), export_format=fmt, use_selection=True, export_morph=True, export_skins=True,
                export_apply=False, export_animations=animations, export_yup=True, export_morph_normal=True,
                export_animation_mode="ACTIONS" if every else "ACTIVE_ACTIONS",
                export_leaf_bone=False)
    if res != {"FINISHED"} or not path.is_file():
        raise ExportError(f"Blender's exporter did not write {path}.")
    return {"path": str(path), "format": fmt, "renamed": renamed, "seconds": round(time.perf_counter() - t0, 3)}
