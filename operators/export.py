"""`headforge.export_head` (glTF/GLB/FBX) and `headforge.export_game` (Export for Game Engines)."""
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

FORMATS = [("GLB", "glTF Binary (.glb)", ""), ("GLTF_SEPARATE", "glTF Separate (.gltf + .bin + textures)", ""),
           ("FBX", "FBX (.fbx)", "")]
SUFFIX = {"GLB": ".glb", "GLTF_SEPARATE": ".gltf", "FBX": ".fbx"}


def _run(op, context, fmt: str, arkit_names: bool, animations: bool):
    from ..addon import export
    from ..backend.errors import HeadForgeError

    path = str(Path(bpy.path.abspath(op.filepath)).with_suffix(SUFFIX[fmt]))
    try:
        out = export.export_head(export.head_objects(context), path, fmt=fmt, arkit_names=arkit_names,
                                 animations=animations)
    except HeadForgeError as e:
        op.report({"ERROR"}, f"[{e.code}] {e}")
        return {"CANCELLED"}
    op.report({"INFO"}, f"Wrote {out['path']} in {out['seconds']:.2f} s")
    return {"FINISHED"}


def _animations_by_default(op, context) -> None:
    """Animations on when the head plays a take (a performance keyed onto it), unless the caller chose."""
    from ..addon import export

    if not op.properties.is_property_set("animations"):
        op.animations = export.plays_take(export.head_objects(context))


class HEADFORGE_OT_export_head(bpy.types.Operator, ExportHelper):
    """Export the HeadForge head (armature, meshes, shape keys, textures) as glTF/GLB or FBX"""

    bl_idname = "headforge.export_head"
    bl_label = "Export Rigged Head"

    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb;*.gltf;*.fbx", options={"HIDDEN"})
    format: EnumProperty(name="Format", items=FORMATS, default="GLB")
    arkit_names: BoolProperty(name="Apple ARKit Names", default=False,
                              description="Write eyeBlinkLeft for eyeBlink_L etc. (Blender keeps its names)")
    animations: BoolProperty(name="Animations", default=False, description="Include actions (shape keys, bones); "
                             "on by default when the head plays a take")

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT"

    def invoke(self, context, event):
        _animations_by_default(self, context)
        return ExportHelper.invoke(self, context, event)

    def execute(self, context):
        return _run(self, context, self.format, self.arkit_names, self.animations)


class HEADFORGE_OT_export_game(bpy.types.Operator, ExportHelper):
    """Export the head for a game engine: deforming armature, ARKit-named shape keys, embedded textures"""

    bl_idname = "headforge.export_game"
    bl_label = "Export for Game Engines"

    filename_ext = ".fbx"
    filter_glob: StringProperty(default="*.glb;*.fbx", options={"HIDDEN"})
    target: EnumProperty(name="Engine", default="UNREAL", items=[
        ("UNREAL", "Unreal Engine", "FBX, ARKit names (Live Link Face), no leaf bones, scale applied"),
        ("UNITY", "Unity", "FBX, ARKit names, no leaf bones, scale applied"),
        ("GODOT", "Godot", "GLB with morph targets and skin"),
        ("WEB", "Web (three.js, Babylon.js)", "GLB with morph targets and skin")])
    arkit_names: BoolProperty(name="Apple ARKit Names", default=True,
                              description="Engines' ARKit mappings match Apple's spelling (eyeBlinkLeft)")
    animations: BoolProperty(name="Animations", default=False)

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT"

    def invoke(self, context, event):
        _animations_by_default(self, context)
        return ExportHelper.invoke(self, context, event)

    def execute(self, context):
        from ..addon.export import GAME_TARGETS

        return _run(self, context, GAME_TARGETS[self.target]["format"], self.arkit_names, self.animations)


def menu_export(self, context):
    self.layout.operator(HEADFORGE_OT_export_head.bl_idname, text="Rigged Head (.glb/.fbx) — HeadForge")
    self.layout.operator(HEADFORGE_OT_export_game.bl_idname, text="Head for Game Engines — HeadForge")


CLASSES = (HEADFORGE_OT_export_head, HEADFORGE_OT_export_game)
