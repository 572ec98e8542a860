"""`headforge.import_take` (Live Link Face CSV / glTF morph-weight animation) and `headforge.animate_video`
(face video → take, tracked in a worker thread with progress and cancel) onto the selected head."""
from pathlib import Path

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..addon import runner

# The video operator's live state for the panel (the window manager's property group belongs to the job).
STATUS = {"running": False, "progress": 0.0, "message": "", "error": "", "warnings": []}


def head_targets(context) -> list:
    obs = list(context.selected_objects) or ([context.active_object] if context.active_object else [])
    out = []
    for ob in obs:
        if ob.type == "EMPTY":  # the head's root empty: everything under it
            out += [c for c in ob.children_recursive if c.type in ("MESH", "ARMATURE")]
        elif ob.type in ("MESH", "ARMATURE"):
            out.append(ob)
    return out


def _alive(ob) -> bool:
    """False for an object deleted since it was picked (the user may delete it while the video is tracked)."""
    try:
        return ob.name is not None
    except ReferenceError:
        return False


def _report_applied(op, rep: dict, what: str) -> None:
    msg = (f"{what}: Action '{rep['action']}', {rep['frames']} frames at {rep['fps']:g} fps "
           f"(frames {rep['frame_range'][0]}–{rep['frame_range'][1]}), {len(rep['matched'])} shape keys, "
           f"bones {', '.join(rep['bones'].values()) or 'none'}")
    if rep["kept"]:  # one line per Action (the shape keys' and the bones' keep the same one)
        kept = dict.fromkeys(f"{k['action']} ({k['kept_as']})" for k in rep["kept"])
        msg += "; kept " + ", ".join(kept)
    if rep["missing"]:
        op.report({"WARNING"}, f"{msg}; not on this head: {', '.join(rep['missing'])}")
    else:
        op.report({"INFO"}, msg)


class HEADFORGE_OT_import_take(bpy.types.Operator, ImportHelper):
    """Key a face capture (Live Link Face CSV, or a glTF/GLB with ARKit morph-weight animation) onto the
    selected head as a new Action, resampled to the scene's frame rate"""

    bl_idname = "headforge.import_take"
    bl_label = "Import Face Take"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".csv"
    filter_glob: StringProperty(default="*.csv;*.glb;*.gltf", options={"HIDDEN"})
    csv_fps: FloatProperty(name="CSV Frame Rate", default=0.0, min=0.0, max=120.0,
                           description="Frame rate of a Live Link Face CSV (0: read it from the timecodes)")
    replace: BoolProperty(name="Replace Current Action", default=False,
                          description="Off: the head's current action is kept as an NLA strip under the take. "
                                      "On: it is replaced (still kept in the file)")

    @classmethod
    def poll(cls, context):
        return bool(head_targets(context))

    def execute(self, context):
        from ..addon import animation
        from ..backend.errors import HeadForgeError

        try:
            take = animation.read_take(self.filepath, fps=self.csv_fps or None)
            rep = animation.apply_take(take, head_targets(context), scene=context.scene, replace=self.replace)
        except HeadForgeError as e:
            self.report({"ERROR"}, f"[{e.code}] {e}")
            return {"CANCELLED"}
        _report_applied(self, rep, Path(self.filepath).name)
        return {"FINISHED"}


class VideoTask(runner.BackgroundTask):
    """backend.animate.track.track_video in a worker thread; the take lands in `take`."""

    thread_name = "headforge-animate"

    def __init__(self, video: str, csv_out: str | None, smoothing: float):
        super().__init__()
        self.video, self.csv_out, self.smoothing = video, csv_out, smoothing
        self.take = None
        self.csv_error = None  # the CSV could not be written: the take is keyed all the same

    def _work(self) -> None:
        def track():  # OpenCV and MediaPipe come from the add-on's private dependency folder
            from ..backend.animate.livelink import write_livelink_csv
            from ..backend.animate.track import track_video
            from ..backend.errors import HeadForgeError

            self.take = track_video(self.video, smoothing=self.smoothing, on_event=self.events.put,
                                    cancel=self.cancel_token)
            if self.csv_out:
                try:
                    write_livelink_csv(self.take, self.csv_out)
                except HeadForgeError as e:  # a read-only folder must not cost the tracked take
                    self.csv_error = e

        self._guarded(track, "animate.crashed")


class HEADFORGE_OT_animate_video(bpy.types.Operator, ImportHelper):
    """Track a face video (per-frame landmarks, head-model fit of the 52 ARKit weights, head pose and gaze) and
    key the selected head with it; optionally also write a Live Link Face CSV"""

    bl_idname = "headforge.animate_video"
    bl_label = "Animate from Video"
    bl_options = {"REGISTER"}

    filter_glob: StringProperty(default="*.mp4;*.mov;*.avi;*.mkv;*.webm;*.m4v", options={"HIDDEN"})
    smoothing: FloatProperty(name="Smoothing", default=0.5, min=0.0, max=1.0,
                             description="Temporal smoothing strength (0: none); blinks are kept")
    write_csv: BoolProperty(name="Also Write CSV", default=True,
                            description="Write VIDEO.csv (Live Link Face) beside the video")
    replace: BoolProperty(name="Replace Current Action", default=False)

    _timer = None
    _task = None

    @classmethod
    def poll(cls, context):
        return bool(head_targets(context)) and not STATUS["running"]

    def execute(self, context):
        video = Path(bpy.path.abspath(self.filepath))
        if not video.is_file():
            self.report({"ERROR"}, f"[animate.video_missing] {video.name} does not exist.")
            return {"CANCELLED"}
        self._targets = head_targets(context)
        self._warnings = []
        STATUS.update(running=True, progress=0.0, message="Tracking…", error="", warnings=[])
        self._task = VideoTask(str(video), str(video.with_suffix(".csv")) if self.write_csv else None,
                               self.smoothing)
        if bpy.app.background:  # timers never fire without a UI
            self._task.run_blocking()
            return self._finish(context)
        self._task.start()
        self._timer = context.window_manager.event_timer_add(0.2, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type == "ESC":
            self._task.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        self._drain()
        for area in context.screen.areas if context.screen else []:
            area.tag_redraw()
        if not self._task.finished.is_set():
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context)

    def _drain(self):
        for e in self._task.drain():
            if e.kind == "warning":  # told once the take is keyed (lost frames, blinks from the landmarks)
                self._warnings.append(e.message)
                continue
            STATUS["progress"] = e.fraction
            if e.message:
                STATUS["message"] = e.message

    def _finish(self, context):
        from ..addon import animation
        from ..backend.errors import HeadForgeError

        self._drain()
        STATUS["running"] = False
        err = self._task.error
        if err is None:
            try:
                rep = animation.apply_take(self._task.take, [ob for ob in self._targets if _alive(ob)],
                                           scene=context.scene, replace=self.replace)
            except HeadForgeError as e:
                err = e
            else:
                lost = self._task.take.info.get("lost_frames", [])
                STATUS["message"] = f"Keyed {rep['frames']} frames" + (f"; face lost in {len(lost)}" if lost else "")
                _report_applied(self, rep, Path(self.filepath).name)
                if self._task.csv_error is not None:
                    e = self._task.csv_error
                    self._warnings.append(f"The take is keyed but {Path(self._task.csv_out).name} was not written: "
                                          f"[{e.code}] {e}")
                for message in self._warnings:
                    self.report({"WARNING"}, message)
                STATUS["warnings"] = list(self._warnings)  # the panel keeps showing them after the run
                return {"FINISHED"}
        STATUS["error"] = f"[{err.code}] {err}"
        self.report({"WARNING"} if err.code == "cancelled" else {"ERROR"}, STATUS["error"])
        return {"CANCELLED"}


class HEADFORGE_OT_cancel_animate(bpy.types.Operator):
    """Stop the running video tracking (nothing is keyed)"""

    bl_idname = "headforge.cancel_animate"
    bl_label = "Cancel Tracking"

    @classmethod
    def poll(cls, context):
        return STATUS["running"]

    def execute(self, context):
        task = runner.active()
        if isinstance(task, VideoTask):
            task.cancel()
        return {"FINISHED"}


class HEADFORGE_OT_portrait_expression(bpy.types.Operator):
    """Pose the neutral rig with the expression the instant fit found in the portrait (a new one-frame Action at
    the current frame; the rig's Basis stays neutral)"""

    bl_idname = "headforge.portrait_expression"
    bl_label = "Portrait Expression"
    bl_options = {"REGISTER", "UNDO"}

    directory: StringProperty(subtype="DIR_PATH", name="Job Folder")

    @classmethod
    def poll(cls, context):
        return bool(head_targets(context))

    def execute(self, context):
        from ..addon import animation
        from ..backend.animate.portrait import portrait_expression_take
        from ..backend.errors import HeadForgeError

        job = bpy.path.abspath(self.directory or context.window_manager.headforge.job_dir)
        try:
            take = portrait_expression_take(job)
            rep = animation.apply_take(take, head_targets(context), scene=context.scene,
                                       frame_start=context.scene.frame_current)
        except HeadForgeError as e:
            self.report({"ERROR"}, f"[{e.code}] {e}")
            return {"CANCELLED"}
        context.scene.frame_set(context.scene.frame_current)
        _report_applied(self, rep, "Portrait expression")
        return {"FINISHED"}


def menu_import(self, context):
    self.layout.operator(HEADFORGE_OT_import_take.bl_idname, text="Face Take (.csv, .glb) — HeadForge")


CLASSES = (HEADFORGE_OT_import_take, HEADFORGE_OT_animate_video, HEADFORGE_OT_cancel_animate,
           HEADFORGE_OT_portrait_expression)
