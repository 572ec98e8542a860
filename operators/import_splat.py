"""`headforge.import_splat` / `headforge.export_splat`: a 3DGS PLY in and out of Blender (File > Import/Export)."""
import time

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

COLOUR_ITEMS = [("SH0", "Base colour", "Degree-0 colour (fast)"),
                ("SH", "View-dependent", "Spherical harmonics up to the file's degree (≤ 3)")]
RENDER_ITEMS = [("DITHERED", "Dithered", "EEVEE's dithered transparency: fast, slightly grainy"),
                ("BLENDED", "Blended (high quality)", "EEVEE's sorted blending: smoother, slower")]


class HEADFORGE_OT_import_splat(bpy.types.Operator, ImportHelper):
    """Import a 3D Gaussian splat (standard 3DGS PLY) drawn with Geometry Nodes quads"""

    bl_idname = "headforge.import_splat"
    bl_label = "Import Gaussian Splat"
    bl_options = {"REGISTER", "UNDO", "PRESET"}

    filename_ext = ".ply"
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})
    max_preview_splats: IntProperty(name="Max Preview Splats", default=200_000, min=0,
                                    description="The viewport draws at most about this many splats (renders draw all)")
    colour: EnumProperty(name="Colour", items=COLOUR_ITEMS, default="SH0")
    render_method: EnumProperty(name="EEVEE Transparency", items=RENDER_ITEMS, default="DITHERED")

    def execute(self, context):
        from ..addon import splat_import
        from ..backend.errors import HeadForgeError

        t0 = time.perf_counter()
        try:
            ob = splat_import.import_splat(self.filepath, max_preview=self.max_preview_splats, colour=self.colour,
                                           render_method=self.render_method)
        except HeadForgeError as e:
            self.report({"ERROR"}, f"[{e.code}] {e}")
            return {"CANCELLED"}
        for other in context.selected_objects:
            other.select_set(False)
        ob.select_set(True)
        context.view_layer.objects.active = ob
        n = len(ob.data.attributes["position"].data)  # a mesh (quads) or a Gaussian splat point cloud (5.3+)
        self.report({"INFO"}, f"Imported {n:,} splats in {time.perf_counter() - t0:.2f} s")
        return {"FINISHED"}


class HEADFORGE_OT_export_splat(bpy.types.Operator, ExportHelper):
    """Write the active splat back as a standard 3DGS PLY"""

    bl_idname = "headforge.export_splat"
    bl_label = "Export Gaussian Splat"

    filename_ext = ".ply"
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})

    @classmethod
    def poll(cls, context):
        from ..addon import splat_import

        return splat_import.splat_info(context.active_object) is not None

    def execute(self, context):
        from ..addon import splat_import
        from ..backend.errors import HeadForgeError

        try:
            n = splat_import.write_splat_ply(context.active_object, self.filepath)
        except HeadForgeError as e:
            self.report({"ERROR"}, f"[{e.code}] {e}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {n:,} splats to {self.filepath}")
        return {"FINISHED"}


class HEADFORGE_FH_splat(bpy.types.FileHandler):
    """Drag a .ply onto the viewport to import it as a Gaussian splat."""

    bl_idname = "HEADFORGE_FH_splat"
    bl_label = "Gaussian Splat (HeadForge)"
    bl_import_operator = "headforge.import_splat"
    bl_file_extensions = ".ply"

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == "VIEW_3D"


def menu_import(self, context):
    self.layout.operator(HEADFORGE_OT_import_splat.bl_idname, text="Gaussian Splat (.ply) — HeadForge")


def menu_export(self, context):
    self.layout.operator(HEADFORGE_OT_export_splat.bl_idname, text="Gaussian Splat (.ply) — HeadForge")


CLASSES = (HEADFORGE_OT_import_splat, HEADFORGE_OT_export_splat, HEADFORGE_FH_splat)
