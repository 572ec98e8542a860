"""The HeadForge sidebar tab: mode, photo (and more photos of the same person) or the views folder, Generate/Cancel,
progress, current stage and last message."""
import bpy


class HEADFORGE_UL_photos(bpy.types.UIList):
    """More photos of the same person: file name, the path editable."""

    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        layout.prop(item, "path", text="", emboss=False, icon="IMAGE_DATA")


class HEADFORGE_PT_main(bpy.types.Panel):
    bl_label = "HeadForge"
    bl_idname = "HEADFORGE_PT_main"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HeadForge"

    def draw(self, context):
        layout = self.layout
        settings, state = context.scene.headforge, context.window_manager.headforge
        layout.prop(settings, "mode", expand=True)
        if settings.mode == "views":
            layout.prop(settings, "views_folder")
        else:
            layout.prop(settings, "photo")
            draw_more_photos(layout, settings)
        if settings.mode == "auto" and state.mode_note:
            layout.label(text=state.mode_note, icon="INFO")
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
        if state.error:  # one short sentence from the typed error, never a traceback, and what fixes it
            box = layout.box()
            for i, line in enumerate(_wrap(state.error, 48)):
                box.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
            draw_fix(box, state.error_code, state.error_hint)
        elif state.message:
            layout.label(text=state.message, icon="INFO")
        if state.job_dir:
            layout.label(text=f"Job: {state.job_dir}", icon="FILE_FOLDER")


def draw_more_photos(layout, settings) -> None:
    """The list of more photos of the same person with its add/remove buttons (a closed header when empty)."""
    n = len(settings.more_photos)
    header = layout.row(align=True)
    header.label(text=f"More photos of this person: {n}" if n else "More photos of this person (¾, profile)",
                 icon="IMAGE_DATA")
    header.operator("headforge.photo_add", text="", icon="ADD")
    if not n:
        return
    row = layout.row()
    row.template_list("HEADFORGE_UL_photos", "", settings, "more_photos", settings, "more_photos_index", rows=2)
    col = row.column(align=True)
    col.operator("headforge.photo_add", text="", icon="ADD")
    col.operator("headforge.photo_remove", text="", icon="REMOVE")
    if settings.mode == "full":
        layout.label(text="Full mode uses the first photo; Instant fuses all", icon="INFO")


def draw_fix(layout, code: str, hint: str) -> None:
    """The button that fixes an error (a model to download, the preferences to open), else its hint."""
    import re

    from ..addon import ADDON_ID

    model = re.search(r"headforge models download ([\w.-]+)", hint or "")
    if code.startswith("model.") and model:
        from ..backend.models import registry

        asset = registry.ASSETS.get(model.group(1))
        if asset is not None:
            layout.operator("headforge.download_model", text=f"Download {asset.title}",
                            icon="IMPORT").model_id = asset.id
            return
    if code == "cancelled":
        hint = hint or "Generate resumes where it stopped."
    elif code.startswith(("model.", "external.", "dependency.")) or not hint:  # the doctor is there too
        layout.operator("preferences.addon_show", text="Open HeadForge Preferences",
                        icon="PREFERENCES").module = ADDON_ID
    if hint:
        for line in _wrap(hint.split(". ")[0].rstrip(".") + ".", 48):
            layout.label(text=line, icon="BLANK1")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


CLASSES = (HEADFORGE_UL_photos, HEADFORGE_PT_main)
