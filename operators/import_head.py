"""`headforge.import_head` (a rigged head glb) and `headforge.import_results` (a finished job folder)."""
import bpy
from bpy.props import StringProperty
from bpy_extras.io_utils import ImportHelper


class HEADFORGE_OT_import_head(bpy.types.Operator, ImportHelper):
    """Import a rigged head (glb with skin and ARKit shape keys) into its own collection under a root empty"""

    bl_idname = "headforge.import_head"
    bl_label = "Import Rigged Head"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".glb"
    filter_glob: StringProperty(default="*.glb;*.gltf", options={"HIDDEN"})

    def execute(self, context):
        from ..addon import head_import
        from ..backend.errors import HeadForgeError

        try:
            result = head_import.import_head(self.filepath)
        except HeadForgeError as e:
            self.report({"ERROR"}, f"[{e.code}] {e}")
            return {"CANCELLED"}
        f = result["facts"]
        msg = f"Imported {len(f['meshes'])} mesh(es), {f['shape_keys']} shape keys ({f['arkit_keys']} ARKit)"
        if f["missing_bones"]:
            self.report({"WARNING"}, f"{msg}; no bone for: {', '.join(f['missing_bones'])}")
        else:
            self.report({"INFO"}, f"{msg} in {f['seconds']['total']:.2f} s")
        return {"FINISHED"}


class HEADFORGE_OT_import_results(bpy.types.Operator):
    """Import a job folder's splat and head (e.g. one made by the headforge CLI on another machine)"""

    bl_idname = "headforge.import_results"
    bl_label = "Import Job Results"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(subtype="DIR_PATH")

    def invoke(self, context, event):
        self.directory = context.window_manager.headforge.job_dir or self.directory
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        from ..addon import results
        from ..backend.errors import HeadForgeError

        settings = context.scene.headforge
        try:
            job_dir = bpy.path.abspath(self.directory or context.window_manager.headforge.job_dir)
            out = results.import_job_results(job_dir,
                                             max_preview=settings.max_preview_splats, colour=settings.splat_colour)
        except HeadForgeError as e:
            self.report({"ERROR"}, f"[{e.code}] {e}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Imported {out['collection'].name} in {out['seconds']:.2f} s")
        return {"FINISHED"}


def menu_import(self, context):
    self.layout.operator(HEADFORGE_OT_import_head.bl_idname, text="Rigged Head (.glb) — HeadForge")


CLASSES = (HEADFORGE_OT_import_head, HEADFORGE_OT_import_results)
