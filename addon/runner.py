"""Runs a backend job off Blender's main thread and hands its events back through a queue.

The worker thread never touches Blender data: it only puts `ProgressEvent`s on `events`. The main thread
(a modal operator's timer, or the blocking loop in background mode) drains them with `drain()`.
"""
from __future__ import annotations

import queue
import threading

_active: "BackgroundTask | None" = None


class BackgroundTask:
    """Work done in a worker thread (or blocking) that reports only through `events`, a queue of ProgressEvents.

    Subclasses define `_work()`, which calls `_guarded(fn, crash_code)`: `fn` runs with the add-on's private
    dependency folder importable, a HeadForgeError lands in `error`, any other exception becomes one coded
    `crash_code`, and `finished` is set at the end.
    """

    thread_name = "headforge-task"

    def __init__(self):
        from ..backend.events import CancelToken

        self.events: queue.Queue = queue.Queue()
        self.cancel_token = CancelToken()
        self.thread: threading.Thread | None = None
        self.error = None  # a HeadForgeError once the work failed or was cancelled
        self.finished = threading.Event()
        self.deps = _private_deps_folder()  # resolved here: bpy is not to be called from the worker thread

    def _guarded(self, fn, crash_code: str) -> None:
        import contextlib

        from ..backend.errors import HeadForgeError, StageError
        from .installer import backend_path

        try:
            with backend_path(self.deps) if self.deps else contextlib.nullcontext():
                fn()
        except HeadForgeError as e:
            self.error = e
        except Exception as e:  # noqa: BLE001  (shown in the panel instead of dying silently in a thread)
            self.error = StageError(f"{type(e).__name__}: {e}", code=crash_code)
        finally:
            self.finished.set()

    def _activate(self) -> None:
        global _active
        _active = self

    def start(self):
        self._activate()
        self.thread = threading.Thread(target=self._work, name=self.thread_name, daemon=True)
        self.thread.start()
        return self

    def run_blocking(self):
        """Background mode (no timers fire there): run in this thread, events are drained afterwards."""
        self._activate()
        self._work()
        return self

    def drain(self) -> list:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def cancel(self) -> None:
        self.cancel_token.cancel()


class JobRunner(BackgroundTask):
    """The backend's `run_job` in this process."""

    thread_name = "headforge-job"

    def __init__(self, job_dir: str, *, inputs: dict | None = None, options: dict | None = None,
                 mode: str = "full", until: str | None = None):
        super().__init__()
        self.job_dir, self.inputs, self.options, self.mode, self.until = job_dir, inputs, options, mode, until

    def _work(self) -> None:
        def job():
            from ..backend.job import run_job

            run_job(self.job_dir, inputs=self.inputs, options=self.options, mode=self.mode, until=self.until,
                    on_event=self.events.put, cancel=self.cancel_token)

        self._guarded(job, "stage.crashed")


def _private_deps_folder():
    """The installer's dependency folder when it exists (None for a plain module install or no install)."""
    from . import ADDON_ID
    from .installer import deps_dir

    try:
        folder = deps_dir(ADDON_ID, create=False)
    except (ValueError, RuntimeError):  # not running as an extension: nothing private to add
        return None
    return folder if folder.is_dir() else None


def active() -> BackgroundTask | None:
    return _active if _active is not None and not _active.finished.is_set() else None


def cancel_active(wait: float = 5.0) -> None:
    runner = _active
    if runner is not None and not runner.finished.is_set():
        runner.cancel()
        if runner.thread is not None:
            runner.thread.join(wait)


def apply_event(state, event) -> None:
    """Copy one event into the window manager's job state (main thread only)."""
    if event.kind == "info" and event.data.get("mode"):  # mode auto: which mode runs, and why
        state.mode_note = mode_note(event.data["mode"], event.message)
    if event.stage:
        state.stage = event.stage
    state.progress = event.overall
    if event.message:
        state.message = event.message
    if event.preview:
        state.preview = event.preview
    if event.kind == "error":
        show_error(state, event.message, event.data.get("code", ""), event.data.get("hint") or "")


def mode_note(mode: str, why: str) -> str:
    """"Auto: instant mode (no CUDA GPU here)" from run_job's "mode auto → instant: no CUDA GPU here; …"."""
    reason = why.split(": ", 1)[-1].split(";")[0].strip().rstrip(".")
    return f"Auto: {mode} mode" + (f" ({reason})" if reason and mode != "full" else "")


def show_error(state, message: str, code: str = "", hint: str = "") -> None:
    """The panel's error: one short sentence (the message's first), its code (which fix button the panel
    offers) and the hint that fixes it."""
    first = message.strip().split(". ", 1)[0].rstrip(".")
    state.error, state.error_code, state.error_hint = first + ".", code, hint or ""
