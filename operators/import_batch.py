"""`headforge.import_batch`: a batch folder's chosen finished jobs (OUT/batch.json) as a grid of heads, each job
in its own collection (addon/results.py import_job_results) under one collection for the batch."""
import os

import bpy
from bpy.props import BoolProperty, CollectionProperty, FloatProperty, IntProperty, StringProperty


class HEADFORGE_PG_batch_job(bpy.types.PropertyGroup):
    name: StringProperty()
    use: BoolProperty(name="Import", default=True)


class HEADFORGE_OT_import_batch(bpy.types.Operator):
    """Import the finished jobs of a `headforge batch` folder as a grid of heads, one collection per job"""

    bl_idname = "headforge.import_batch"
    bl_label = "Import Batch"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(subtype="DIR_PATH")
    jobs: StringProperty(name="Jobs", description="comma-separated job names to import (empty: the ticked ones, "
                         "or every finished job)")
    columns: IntProperty(name="Columns", default=0, min=0, max=100, description="heads per row (0: a square grid)")
    spacing: FloatProperty(name="Spacing", default=0.45, min=0.05, max=10.0, unit="LENGTH",
                           description="distance between neighbouring heads")
    items: CollectionProperty(type=HEADFORGE_PG_batch_job)
    listed_from: StringProperty(options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def _refresh(self) -> bool:
        """List the finished jobs of the folder chosen in the file browser (ticked by default)."""
        from ..backend.batch.state import finished_jobs

        folder = bpy.path.abspath(self.directory)
        if folder == self.listed_from:
            return False
        self.listed_from = folder
        self.items.clear()
        for name in finished_jobs(folder):
            self.items.add().name = name
        return True

    def check(self, context):
        return self._refresh()

    def draw(self, context):
        self._refresh()
        layout = self.layout
        layout.prop(self, "columns")
        layout.prop(self, "spacing")
        if not self.items:
            layout.label(text="No finished batch jobs in this folder")
        for item in self.items:
            layout.prop(item, "use", text=item.name)

    def execute(self, context):
        from ..addon import results
        from ..backend.batch.state import finished_jobs, grid_positions
        from ..backend.errors import HeadForgeError

        folder = bpy.path.abspath(self.directory)
        done = finished_jobs(folder)
        if self.jobs.strip():
            chosen = [n.strip() for n in self.jobs.split(",") if n.strip()]
            unknown = [n for n in chosen if n not in done]
            if unknown:
                self.report({"ERROR"}, f"[batch.unknown_job] not finished jobs of {folder}: {', '.join(unknown)}")
                return {"CANCELLED"}
        elif self.items and self.listed_from == folder:
            chosen = [it.name for it in self.items if it.use]
        else:
            chosen = done
        if not chosen:
            self.report({"ERROR"}, f"[batch.nothing] {folder} has no finished batch jobs to import")
            return {"CANCELLED"}
        settings = context.scene.headforge
        batch = bpy.data.collections.new(f"HeadForge batch {os.path.basename(os.path.normpath(folder))}")
        context.scene.collection.children.link(batch)
        imported, failed = 0, []
        for name, location in zip(chosen, grid_positions(len(chosen), self.columns, self.spacing)):
            try:
                out = results.import_job_results(os.path.join(folder, name), max_preview=settings.max_preview_splats,
                                                 colour=settings.splat_colour)
            except HeadForgeError as e:
                failed.append(f"{name} [{e.code}]")
                continue
            coll = out["collection"]
            context.scene.collection.children.unlink(coll)
            batch.children.link(coll)
            out["root"].location = location
            imported += 1
        if failed:
            self.report({"WARNING"}, f"Imported {imported} heads; not imported: {', '.join(failed)}")
        else:
            self.report({"INFO"}, f"Imported {imported} heads into {batch.name}")
        return {"FINISHED"} if imported else {"CANCELLED"}


def menu_import(self, context):
    self.layout.operator(HEADFORGE_OT_import_batch.bl_idname, text="HeadForge Batch (folder)")


CLASSES = (HEADFORGE_PG_batch_job, HEADFORGE_OT_import_batch)
