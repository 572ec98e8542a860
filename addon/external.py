"""External-Python mode: run the job with another Python's `headforge` CLI and read its JSON-lines events.

`ExternalRunner` has runner.JobRunner's interface (events queue, start / run_blocking / drain / cancel,
`error`, `finished`), so the Generate operator can drive either. Cancel sends the CLI an interrupt (SIGINT,
or CTRL_BREAK on Windows); it stops after the current step and the job folder resumes next time.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from . import runner as _runner


def cli_command(executable: str) -> list[str]:
    """`headforge` (or headforge.exe) is run as is; any other file is taken for a Python with headforge installed."""
    exe = Path(executable).expanduser()
    if not exe.is_file():
        from ..backend.errors import DependencyError

        raise DependencyError(f"External Python {exe} does not exist.", code="external.missing",
                              hint="Set Preferences → HeadForge → External Python to a python or headforge file.")
    if exe.stem.lower().startswith("headforge"):
        return [str(exe)]
    return [str(exe), "-m", "headforge.backend.cli"]


def run_arguments(job_dir: str, inputs: dict | None, options: dict | None, mode: str, until: str | None) -> list[str]:
    args = ["--json", "run"]
    if inputs and inputs.get("photo"):  # every photo of the person, the main one first
        args += [str(p) for p in inputs.get("photos") or [inputs["photo"]]]
    args += ["-o", str(job_dir), "--mode", mode]
    if until:
        args += ["--until", until]
    for stage, opts in (options or {}).items():
        for key, value in opts.items():  # the CLI takes text as is and reads other values as JSON
            args += ["--set", f"{stage}.{key}={value if isinstance(value, str) else json.dumps(value)}"]
    return args


class ExternalRunner(_runner.BackgroundTask):
    """`headforge --json run ...` in a child process; the Generate/Cancel operators see it as the running job."""

    thread_name = "headforge-external"

    def __init__(self, job_dir: str, *, executable: str, inputs: dict | None = None, options: dict | None = None,
                 mode: str = "full", until: str | None = None, env: dict | None = None):
        super().__init__()
        self.job_dir, self.inputs, self.options, self.mode, self.until = job_dir, inputs, options, mode, until
        self.executable, self.env = executable, env
        self.stderr_tail: list[str] = []
        self._proc: subprocess.Popen | None = None

    def _work(self) -> None:
        from ..backend.errors import Cancelled, HeadForgeError, StageError
        from ..backend.events import ProgressEvent

        try:
            cmd = cli_command(self.executable) + run_arguments(self.job_dir, self.inputs, self.options, self.mode,
                                                               self.until)
            flags = subprocess.CREATE_NEW_PROCESS_GROUP if sys.platform == "win32" else 0
            env = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"}
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                          creationflags=flags)
            err_reader = threading.Thread(target=self._read_stderr, daemon=True)
            err_reader.start()
            if self.cancel_token.cancelled:
                self._interrupt()
            failure = None
            for line in self._proc.stdout:
                try:
                    event = ProgressEvent.from_json(line)
                except (json.JSONDecodeError, TypeError):
                    continue  # not ours (a library printing to stdout)
                if event.kind == "error":
                    code = event.data.get("code", "stage.failed")
                    failure = Cancelled(event.message) if code == "cancelled" else \
                        HeadForgeError(event.message, code=code, hint=event.data.get("hint"))
                self.events.put(event)
            rc = self._proc.wait()
            err_reader.join(5)
            if failure is not None:
                raise failure
            if rc != 0:
                if self.cancel_token.cancelled:
                    raise Cancelled()
                tail = " | ".join(self.stderr_tail[-3:]) or f"exit status {rc}"
                raise StageError(f"The external headforge failed: {tail}", code="external.failed")
        except HeadForgeError as e:
            self.error = e
        except OSError as e:
            self.error = StageError(f"Cannot start {self.executable}: {e}", code="external.failed")
        finally:
            self.finished.set()

    def _read_stderr(self) -> None:
        for line in self._proc.stderr:
            self.stderr_tail.append(line.rstrip())
            del self.stderr_tail[:-50]

    def _interrupt(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        if sys.platform == "win32":
            proc.send_signal(signal.CTRL_BREAK_EVENT)
        else:
            proc.send_signal(signal.SIGINT)

    def cancel(self) -> None:
        super().cancel()
        self._interrupt()


def make_runner(prefs, job_dir: str, **kw):
    """The runner the preferences ask for: in-process JobRunner, or ExternalRunner in External-Python mode.

    Both read models from the model store's root (the preferences' Models folder once preferences.get() ran):
    in-process through store.set_root, the external CLI through $HEADFORGE_MODELS. The device travels in the
    job options (preferences.job_options)."""
    if getattr(prefs, "backend_mode", "IN_PROCESS") == "EXTERNAL":
        from ..backend.models import store

        return ExternalRunner(job_dir, executable=prefs.external_python,
                              env={"HEADFORGE_MODELS": str(store.models_root())}, **kw)
    return _runner.JobRunner(job_dir, **kw)
