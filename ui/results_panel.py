"""Sub-panels of the HeadForge tab: live preview, face chooser, results (import, splat display, export)."""
import os

import bpy

from . import previews


class _Sub:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HeadForge"
    bl_parent_id = "HEADFORGE_PT_main"


class HEADFORGE_PT_preview(_Sub, bpy.types.Panel):
    bl_label = "Preview"
    bl_idname = "HEADFORGE_PT_preview"

    @classmethod
    def poll(cls, context):
        return bool(context.window_manager.headforge.preview)

    def draw(self, context):
        state = context.window_manager.headforge
        icon = previews.icon_for(state.preview)
        if icon:
            self.layout.template_icon(icon_value=icon, scale=10.0)
        self.layout.label(text=os.path.basename(state.preview), icon="IMAGE_DATA")


class HEADFORGE_PT_faces(_Sub, bpy.types.Panel):
    bl_label = "Faces"
    bl_idname = "HEADFORGE_PT_faces"

    @classmethod
    def poll(cls, context):
        return context.window_manager.headforge.faces > 1

    def draw(self, context):
        state, settings = context.window_manager.headforge, context.scene.headforge
        layout = self.layout
        layout.label(text=f"{state.faces} faces in the photo (numbered left to right)", icon="USER")
        icon = previews.icon_for(os.path.join(state.job_dir, "face", "faces.png"))
        if icon:
            layout.template_icon(icon_value=icon, scale=8.0)
        row = layout.row(align=True)
        row.prop(settings, "face_index", text="Face (-1: largest)")
        row.operator("headforge.generate", text="Use This Face", icon="FILE_REFRESH")


class HEADFORGE_PT_results(_Sub, bpy.types.Panel):
    bl_label = "Results"
    bl_idname = "HEADFORGE_PT_results"

    def draw(self, context):
        layout = self.layout
        settings, state = context.scene.headforge, context.window_manager.headforge
        layout.prop(settings, "auto_import")
        row = layout.row(align=True)
        row.prop(settings, "max_preview_splats")
        row.prop(settings, "splat_colour", text="")
        if state.imported:
            layout.label(text=f"In scene: {state.imported}", icon="OUTLINER_COLLECTION")
        col = layout.column(align=True)
        col.operator("headforge.import_results", icon="IMPORT")
        col.operator("headforge.import_splat", icon="POINTCLOUD_DATA")
        col.operator("headforge.import_head", icon="ARMATURE_DATA")
        col = layout.column(align=True)
        col.operator("headforge.export_head", icon="EXPORT")
        col.operator("headforge.export_game", icon="EXPORT")
        col.operator("headforge.export_splat", icon="EXPORT")


CLASSES = (HEADFORGE_PT_preview, HEADFORGE_PT_faces, HEADFORGE_PT_results)
