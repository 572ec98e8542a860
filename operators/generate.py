"""`headforge.generate` and `headforge.cancel`: run the job for the chosen photo (and the more photos of the same
person listed under it) or, in Views mode, for a views folder made elsewhere; or stop it. `headforge.photo_add` and
`headforge.photo_remove` edit the photo list."""
import hashlib
from pathlib import Path

import bpy

from ..addon import preferences, runner


def job_dir_for(photo: Path, jobs_root: str, more: tuple = ()) -> Path:
    """One folder per photo content (and the more photos', in order), so generating the same photos again resumes
    their job."""
    h = hashlib.sha256(photo.read_bytes())
    for p in more:
        h.update(b"\0" + hashlib.sha256(Path(p).read_bytes()).digest())
    return Path(bpy.path.abspath(jobs_root)) / f"{bpy.path.clean_name(photo.stem)}-{h.hexdigest()[:10]}"


def more_photo_paths(settings) -> list[Path]:
    """The panel's more photos (blank rows skipped), absolute."""
    return [Path(bpy.path.abspath(item.path)) for item in settings.more_photos if item.path.strip()]


def _redraw(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


class HEADFORGE_OT_generate(bpy.types.Operator):
    """Turn the chosen portrait into a 3D head (runs in the background; Cancel stops it, Generate resumes)"""

    bl_idname = "headforge.generate"
    bl_label = "Generate"
    bl_options = {"REGISTER"}

    _timer = None
    _runner = None

    @classmethod
    def poll(cls, context):
        return runner.active() is None

    def _photo_job(self, settings, state, prefs):
        """(job folder, job inputs) for the photo and the more photos of the same person, or the refusal."""
        photo = Path(bpy.path.abspath(settings.photo)) if settings.photo else None
        if photo is None or not photo.is_file():
            return self._refuse(state, "Choose a portrait photo first." if photo is None else
                                f"{photo.name} does not exist.", "input.no_photo", "Pick a photo in the Photo field.")
        more = more_photo_paths(settings)
        missing = [p for p in more if not p.is_file()]
        if missing:
            return self._refuse(state, f"{missing[0].name} (in More photos) does not exist.", "input.not_found",
                                "Fix or remove it in the More photos list.")
        inputs = {"photo": str(photo), "photos": [str(photo)] + [str(p) for p in more]}  # job.json: every photo
        return job_dir_for(photo, prefs.jobs_root, tuple(more)), inputs

    def _views_job(self, settings, state, prefs):
        """(job folder, None) for the chosen views folder, named by its content (the same views resume their job),
        or the refusal."""
        from ..backend.errors import HeadForgeError
        from ..backend.views import folder_views

        if not settings.views_folder.strip():
            return self._refuse(state, "Choose a views folder first.", "views.no_folder",
                                "Pick the folder with cameras.json and the view images in the Views field.")
        src = Path(bpy.path.abspath(settings.views_folder))
        try:
            _, digest = folder_views(src)
        except HeadForgeError as e:
            return self._refuse(state, e.message, e.code, e.hint or "Pick another folder in the Views field.")
        name = bpy.path.clean_name(src.resolve().name or "views")
        return Path(bpy.path.abspath(prefs.jobs_root)) / f"{name}-{digest[:10]}", None

    def _refuse(self, state, message: str, code: str, hint: str):
        """A problem found before the job starts: the panel shows it with its fix, the operator reports it."""
        runner.show_error(state, message, code, hint)
        state.message = ""
        self.report({"ERROR"}, f"{message} {hint}")
        return {"CANCELLED"}

    def execute(self, context):
        settings, state = context.scene.headforge, context.window_manager.headforge
        prefs = preferences.get(context)
        views = settings.mode == "views"
        found = self._views_job(settings, state, prefs) if views else self._photo_job(settings, state, prefs)
        if isinstance(found, set):
            return found
        job_dir, inputs = found
        options = preferences.job_options(prefs)
        rig = options["rig"]
        if rig["head_model"] == "flame" and not Path(rig["head_model_path"]).is_file():
            return self._refuse(state, "Head model FLAME needs your FLAME file.", "model.flame_missing",
                                "Choose it in Preferences → HeadForge → Models, or pick ICT-FaceKit there.")
        if rig["head_model"] == "ict" and settings.until in ("", "rig") and not _ict_installed():
            from ..backend.headmodel.ict import ICT_HINT

            return self._refuse(state, "ICT-FaceKit Light is not downloaded.", "model.ict_missing", ICT_HINT)
        if views:  # the job works on its own copy: the user's folder is never written to
            from ..backend.errors import HeadForgeError
            from ..backend.views import copy_views

            try:
                copy_views(Path(bpy.path.abspath(settings.views_folder)), job_dir / "views")
            except HeadForgeError as e:
                return self._refuse(state, e.message, e.code, e.hint or "")
            except OSError as e:
                return self._refuse(state, f"The views could not be copied into {job_dir} ({e.strerror}).",
                                    "storage.copy_failed", "Free disk space or choose another Jobs folder.")
        state.running, state.error, state.progress, state.message = True, "", 0.0, "Starting…"
        state.error_code = state.error_hint = state.mode_note = ""
        state.stage, state.preview, state.job_dir = "", "", str(job_dir)
        state.faces, state.imported = 0, ""
        if not views and _face_option_needed(job_dir, settings):
            options["face"] = {"face": settings.face_index}
        from ..addon import external

        self._runner = external.make_runner(prefs, str(job_dir), inputs=inputs, options=options,
                                            mode=settings.mode, until=settings.until or None)
        if bpy.app.background:  # timers never fire without a UI: run to the end right here
            self._runner.run_blocking()
            return self._finish(context)
        self._runner.start()
        self._timer = context.window_manager.event_timer_add(0.1, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        state = context.window_manager.headforge
        for e in self._runner.drain():
            runner.apply_event(state, e)
        _redraw(context)
        if not self._runner.finished.is_set():
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context)

    def _finish(self, context):
        state = context.window_manager.headforge
        for e in self._runner.drain():
            runner.apply_event(state, e)
        state.running = False
        err = self._runner.error
        from ..addon import results

        state.faces = len(results.job_faces(state.job_dir))
        if err is None:
            state.progress, state.message = 1.0, f"Done: {state.job_dir}"
            if context.scene.headforge.auto_import and any(results.artifacts_of(state.job_dir).values()):
                _import_results(self, context, state)
            self.report({"INFO"}, state.message)
            return {"FINISHED"}
        runner.show_error(state, err.message, err.code, err.hint or "")
        state.message = state.error
        self.report({"WARNING"} if err.code == "cancelled" else {"ERROR"}, f"[{err.code}] {err}")
        return {"CANCELLED"}


def _ict_installed() -> bool:
    """ICT-FaceKit Light is where the backend looks (the model store's root, or $HEADFORGE_ICT)."""
    from ..backend.headmodel.ict import default_ict_path

    return default_ict_path(convert=False) is not None


def _face_option_needed(job_dir: Path, settings) -> bool:
    """Pass the face choice when the user made one, or to reset an earlier choice recorded in the job."""
    if settings.face_index >= 0:
        return True
    try:
        import json

        return "face" in json.loads((job_dir / "job.json").read_text()).get("options", {})
    except (OSError, ValueError):
        return False


def _import_results(op, context, state) -> None:
    """Import the finished job's splat and head; a failure is reported, the job itself stays done."""
    from ..addon import results
    from ..backend.errors import HeadForgeError

    settings = context.scene.headforge
    try:
        out = results.import_job_results(state.job_dir, max_preview=settings.max_preview_splats,
                                         colour=settings.splat_colour)
    except HeadForgeError as e:
        runner.show_error(state, f"Job done, import failed: {e.message}", e.code, e.hint or "")
        state.message = state.error
        op.report({"WARNING"}, f"[{e.code}] {e}")
        return
    state.imported = out["collection"].name
    state.message = f"Done: imported {out['collection'].name} in {out['seconds']:.1f} s"


class HEADFORGE_OT_cancel(bpy.types.Operator):
    """Stop the running job after its current step (the job folder stays consistent; Generate resumes it)"""

    bl_idname = "headforge.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return runner.active() is not None

    def execute(self, context):
        runner.active().cancel()
        context.window_manager.headforge.message = "Cancelling…"
        return {"FINISHED"}


class HEADFORGE_OT_photo_add(bpy.types.Operator):
    """Add more photos of the same person (¾, profile) to fit one head to all of them"""

    bl_idname = "headforge.photo_add"
    bl_label = "Add Photos"
    bl_options = {"REGISTER", "UNDO"}

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")
    directory: bpy.props.StringProperty(subtype="DIR_PATH")
    files: bpy.props.CollectionProperty(type=bpy.types.OperatorFileListElement)
    filter_image: bpy.props.BoolProperty(default=True, options={"HIDDEN"})
    filter_folder: bpy.props.BoolProperty(default=True, options={"HIDDEN"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        settings = context.scene.headforge
        names = [f.name for f in self.files if f.name]
        paths = [str(Path(self.directory) / n) for n in names] if names and self.directory else [self.filepath]
        have = {Path(bpy.path.abspath(p.path)) for p in settings.more_photos}
        added = 0
        for p in paths:
            if p and Path(p) not in have and Path(p) != Path(bpy.path.abspath(settings.photo or "//")):
                settings.more_photos.add().path = p
                added += 1
        settings.more_photos_index = max(len(settings.more_photos) - 1, 0)
        self.report({"INFO"}, f"{added} photo(s) added; {len(settings.more_photos)} more photo(s) of this person")
        return {"FINISHED"}


class HEADFORGE_OT_photo_remove(bpy.types.Operator):
    """Remove the selected photo from the more photos of this person"""

    bl_idname = "headforge.photo_remove"
    bl_label = "Remove Photo"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.headforge.more_photos) > 0

    def execute(self, context):
        settings = context.scene.headforge
        i = min(settings.more_photos_index, len(settings.more_photos) - 1)
        settings.more_photos.remove(i)
        settings.more_photos_index = max(min(i, len(settings.more_photos) - 1), 0)
        return {"FINISHED"}


CLASSES = (HEADFORGE_OT_generate, HEADFORGE_OT_cancel, HEADFORGE_OT_photo_add, HEADFORGE_OT_photo_remove)
