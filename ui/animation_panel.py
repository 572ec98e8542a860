"""HeadForge tab → Animation: key the selected head from a face capture (CSV / glTF) or a video."""
import bpy

from ..operators.animate import STATUS, head_targets


class HEADFORGE_PT_animation(bpy.types.Panel):
    bl_label = "Animation"
    bl_idname = "HEADFORGE_PT_animation"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "HeadForge"
    bl_parent_id = "HEADFORGE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        ob = context.active_object
        layout.label(text=f"Target: {ob.name}" if ob else "Select the head (armature or meshes)",
                     icon="ARMATURE_DATA" if ob else "INFO")
        col = layout.column(align=True)
        col.operator("headforge.import_take", icon="IMPORT")
        col.operator("headforge.animate_video", icon="FILE_MOVIE")
        col.operator("headforge.portrait_expression", icon="SHAPEKEY_DATA")
        scene = context.scene
        layout.label(text=f"Scene: {scene.render.fps / scene.render.fps_base:g} fps, "
                          f"frames {scene.frame_start}–{scene.frame_end}")
        if STATUS["running"]:
            layout.progress(factor=STATUS["progress"], text=STATUS["message"] or "Tracking…")
            layout.operator("headforge.cancel_animate", icon="CANCEL")
        elif STATUS["error"]:
            layout.label(text=STATUS["error"], icon="ERROR")
        elif STATUS["message"]:
            layout.label(text=STATUS["message"], icon="CHECKMARK")
        if not STATUS["running"]:
            for message in STATUS.get("warnings", []):  # the tracker's warnings of the last video, kept in sight
                layout.label(text=message, icon="ERROR")
        # the take on the selected head: its shape keys' Action (the root empty or the armature selected, too)
        heads = [o for o in head_targets(context) if o.type == "MESH" and o.data.shape_keys is not None]
        keys = heads[0].data.shape_keys if heads else None
        ad = (keys.animation_data if keys else None) or (ob.animation_data if ob else None)
        if ad is not None and ad.action is not None:
            layout.label(text=f"Action: {ad.action.name} (+{len(ad.nla_tracks)} NLA tracks)", icon="ACTION")


CLASSES = (HEADFORGE_PT_animation,)
