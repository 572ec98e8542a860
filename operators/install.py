"""Preferences actions: install/cancel/remove the backend's dependencies, download a model, run the doctor.

Long work (pip, downloads) runs in a worker thread; a modal timer copies its events into preferences.STATE on
the main thread. In background mode (no timers) the same work runs blocking.
"""
import threading

import bpy
from bpy.props import BoolProperty, StringProperty

from ..addon import installer, preferences


def _package() -> str:
    return preferences.HEADFORGE_AP_preferences.bl_idname


def _redraw(context) -> None:
    wm = context.window_manager if context else None
    for window in (wm.windows if wm else ()):
        for area in window.screen.areas:
            if area.type == "PREFERENCES":
                area.tag_redraw()


class _Modal:
    """Shared modal-timer loop for work running in a thread with `finished`, `drain()` and `error`."""

    _timer = None
    _work = None

    def _start_modal(self, context):
        if bpy.app.background or context.window is None:
            self._work.run_blocking()
            return self._finish(context)
        self._work.start()
        self._timer = context.window_manager.event_timer_add(0.2, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        self._apply(self._work.drain())
        _redraw(context)
        if not self._work.finished.is_set():
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        return self._finish(context)

    def _finish(self, context):
        self._apply(self._work.drain())
        _redraw(context)
        err = self._work.error
        if err is None:
            self.report({"INFO"}, self._done_message())
            return {"FINISHED"}
        self.report({"WARNING"} if err.code == "cancelled" else {"ERROR"}, f"[{err.code}] {err}")
        return {"CANCELLED"}


class HEADFORGE_OT_install_backend(_Modal, bpy.types.Operator):
    """Install the backend's Python packages (torch, diffusers, …) into HeadForge's own folder with Blender's
    Python; Blender's own packages are not touched"""

    bl_idname = "headforge.install_backend"
    bl_label = "Install Backend"

    requirements: StringProperty(options={"HIDDEN", "SKIP_SAVE"}, default="",
                                 description="Space-separated requirement list replacing the pinned one (tests)")

    @classmethod
    def poll(cls, context):
        return installer.active() is None

    def execute(self, context):
        prefs = preferences.get(context)
        wheels = bpy.path.abspath(prefs.wheel_folder) if prefs.wheel_folder else None
        if wheels is None and not getattr(bpy.app, "online_access", True):
            self.report({"ERROR"}, "Online access is off (Preferences → System → Network); allow it, or set "
                                   "'Offline wheels' to a folder of wheels.")
            return {"CANCELLED"}
        reqs = self.requirements.split() or installer.BACKEND_REQUIREMENTS
        target = installer.deps_dir(_package())
        gpu = installer.detect_nvidia()
        self._work = installer.Installer(target, reqs, find_links=wheels, no_index=wheels is not None, gpu=gpu)
        preferences.STATE["install"] = {"message": "Starting pip…", "fraction": 0.0, "log": self._work.log}
        return self._start_modal(context)

    def _apply(self, events):
        st = preferences.STATE["install"]
        for e in events:
            st["message"], st["fraction"] = e.message, e.fraction

    def _done_message(self):
        return f"Backend installed in {self._work.target}"


class HEADFORGE_OT_cancel_install(bpy.types.Operator):
    """Stop the running install; the previous install (or none) stays as it was"""

    bl_idname = "headforge.cancel_install"
    bl_label = "Cancel Install"

    @classmethod
    def poll(cls, context):
        return installer.active() is not None

    def execute(self, context):
        installer.active().cancel()
        preferences.STATE["install"]["message"] = "Cancelling…"
        return {"FINISHED"}


class HEADFORGE_OT_remove_backend(bpy.types.Operator):
    """Delete HeadForge's private Python packages (restart Blender to unload modules already imported)"""

    bl_idname = "headforge.remove_backend"
    bl_label = "Remove Backend"

    @classmethod
    def poll(cls, context):
        return installer.active() is None

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        target = installer.deps_dir(_package(), create=False)
        removed = installer.remove(target)
        preferences.STATE["install"] = {"message": "Backend removed." if removed else "Nothing was installed.",
                                        "fraction": 0.0, "log": []}
        self.report({"INFO"}, preferences.STATE["install"]["message"])
        return {"FINISHED"}


class _Download:
    """A model download in a thread, shaped like the runners (events, drain, finished, error)."""

    def __init__(self, model_id, *, from_folder, accept_terms, online):
        import queue

        from ..backend.events import CancelToken

        self.model_id, self.from_folder, self.accept_terms, self.online = model_id, from_folder, accept_terms, online
        self.events, self.cancel_token = queue.Queue(), CancelToken()
        self.finished, self.error, self.result = threading.Event(), None, None

    def _run(self):
        from ..backend.errors import HeadForgeError, ModelMissingError
        from ..backend.models import download

        try:
            self.result = download.download(self.model_id, from_folder=self.from_folder,
                                             accept_terms=self.accept_terms, on_event=self.events.put,
                                             cancel=self.cancel_token, online=self.online,
                                             offline_reason="Blender's online access is off")
        except HeadForgeError as e:
            self.error = e
        except OSError as e:
            self.error = ModelMissingError(f"Download failed: {e}", code="model.download_failed")
        finally:
            self.finished.set()

    def start(self):
        threading.Thread(target=self._run, name="headforge-download", daemon=True).start()

    def run_blocking(self):
        self._run()

    def drain(self):
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out


class HEADFORGE_OT_download_model(_Modal, bpy.types.Operator):
    """Download (or import from the 'Import models from' folder) one model, checking its hash"""

    bl_idname = "headforge.download_model"
    bl_label = "Download Model"

    model_id: StringProperty(name="Model", options={"SKIP_SAVE"})
    accept_terms: BoolProperty(name="I accept the licence terms", default=False, options={"SKIP_SAVE"})

    def invoke(self, context, event):
        from ..backend.models import registry

        asset = registry.get(self.model_id)
        if asset.accept_terms and not self.accept_terms:
            return context.window_manager.invoke_props_dialog(self, width=520, title=asset.title)
        return self.execute(context)

    def draw(self, context):
        from ..backend.models import registry

        asset = registry.get(self.model_id)
        col = self.layout.column()
        words, line = asset.licence.split(), ""
        for w in words:  # wrap the licence summary
            if len(line) + len(w) > 80:
                col.label(text=line)
                line = ""
            line += w + " "
        col.label(text=line)
        col.label(text=asset.licence_url)
        col.prop(self, "accept_terms")

    def execute(self, context):
        from ..backend.models import registry

        prefs = preferences.get(context)
        asset = registry.get(self.model_id)
        folder = bpy.path.abspath(prefs.model_folder_import) if prefs.model_folder_import else None
        if asset.accept_terms and not self.accept_terms and not folder:
            self.report({"ERROR"}, f"{asset.title}: accept its licence first ({asset.licence_url}).")
            return {"CANCELLED"}
        self._work = _Download(self.model_id, from_folder=folder, accept_terms=self.accept_terms,
                               online=getattr(bpy.app, "online_access", True))
        preferences.STATE["download"] = {"message": f"{self.model_id}: starting…", "fraction": 0.0,
                                         "id": self.model_id}
        return self._start_modal(context)

    def _apply(self, events):
        st = preferences.STATE["download"]
        for e in events:
            st["message"], st["fraction"] = f"{e.stage}: {e.message}", e.fraction
        if self._work.finished.is_set() and self._work.error is not None:
            st["message"] = f"{self.model_id}: {self._work.error}"

    def _done_message(self):
        return f"{self.model_id}: {self._work.result['status']} in {self._work.result['folder']}"


class HEADFORGE_OT_run_doctor(bpy.types.Operator):
    """Check Python, Blender, torch, CUDA, gsplat, the models and the folders; the report appears below"""

    bl_idname = "headforge.run_doctor"
    bl_label = "Run Doctor"

    def execute(self, context):
        from ..backend import doctor

        prefs = preferences.get(context)
        with installer.backend_path(installer.deps_dir(_package(), create=False)):
            checks = doctor.diagnose(bpy.path.abspath(prefs.models_dir) or None,
                                     bpy.path.abspath(prefs.jobs_root) or None,
                                     device=preferences.DEVICES[prefs.device])
        preferences.STATE["doctor"] = checks
        problems = [c for c in checks if c["status"] != "ok"]
        self.report({"INFO"}, f"Doctor: {len(checks)} checks, {len(problems)} to look at.")
        _redraw(context)
        return {"FINISHED"}


CLASSES = (HEADFORGE_OT_install_backend, HEADFORGE_OT_cancel_install, HEADFORGE_OT_remove_backend,
           HEADFORGE_OT_download_model, HEADFORGE_OT_run_doctor)
