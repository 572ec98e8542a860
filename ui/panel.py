"""The HeadForge sidebar tab: photo, Generate/Cancel, progress, current stage and last message."""
import bpy


class HEADFORGE_PT_main(bpy.types.Panel):
    bl_label = "HeadForge"
    bl_idname = "HEADFORGE_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HeadForge"

    def draw(self, context):
        layout = self.layout
        settings, state = context.scene.headforge, context.window_manager.headforge
        layout.prop(settings, "photo")
        layout.prop(settings, "mode", expand=True)
        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("headforge.generate", icon="OUTLINER_OB_ARMATURE")
        row.operator("headforge.cancel", icon="CANCEL", text="")
        if state.running or state.progress > 0:
            text = f"{state.stage or '…'}  {state.progress * 100:.0f}%"
            if hasattr(layout, "progress"):
                layout.progress(factor=state.progress, type="BAR", text=text)
            else:
                layout.label(text=text)
        if state.error:  # the typed error's message, never a traceback
            box = layout.box()
            for i, line in enumerate(_wrap(state.error, 48)):
                box.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
        elif state.message:
            layout.label(text=state.message, icon="INFO")
        if state.job_dir:
            layout.label(text=f"Job: {state.job_dir}", icon="FILE_FOLDER")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


CLASSES = (HEADFORGE_PT_main,)
