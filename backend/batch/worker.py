"""One batch job in a worker: `run_one` runs an ordinary job folder with backend/job.py's run_job and answers
with a plain dict (picklable, JSON-able). A worker process runs many jobs one after another, so the models the
stages cache per process (face detectors, landmarkers, the head model) load once and stay warm."""
from __future__ import annotations

import os
import signal
import time
import traceback

from ..errors import Cancelled, HeadForgeError
from ..events import CancelToken, ProgressEvent

_JOBS_RUN = 0  # jobs this process has run: from the second one on, its models are warm


def run_one(task: dict, cancel: CancelToken | None = None, on_event=None) -> dict:
    """Run (or resume) the task's job: {name, job_dir, inputs, options, mode} → {name, status ("done", "failed" or
    "cancelled"), error, warnings, stages, seconds, stage_seconds, pid, warm}."""
    global _JOBS_RUN
    from ..job import run_job

    warnings: list[dict] = []
    done_stages: list[str] = []
    stage_seconds: dict[str, float] = {}
    starts: dict[str, float] = {}

    def listen(e: ProgressEvent) -> None:
        if e.kind == "warning":
            warnings.append({"stage": e.stage, "code": e.data.get("code", "warning"), "message": e.message})
        elif e.kind == "stage_start":
            starts[e.stage] = time.perf_counter()
        elif e.kind in ("stage_done", "stage_skipped"):
            done_stages.append(e.stage)
            stage_seconds[e.stage] = round(time.perf_counter() - starts.get(e.stage, time.perf_counter()), 3)
        if on_event is not None:
            on_event(e)

    warm = _JOBS_RUN > 0
    _JOBS_RUN += 1
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = {"name": task["name"], "pid": os.getpid(), "warm": warm, "warnings": warnings,
              "stages": done_stages, "stage_seconds": stage_seconds, "error": None}
    try:
        run_job(task["job_dir"], inputs=task.get("inputs"), options=task.get("options"), mode=task.get("mode"),
                on_event=listen, cancel=cancel or CancelToken())
        result["status"] = "done"
    except Cancelled as e:
        result.update(status="cancelled", error=e.to_dict())
    except HeadForgeError as e:
        result.update(status="failed", error=e.to_dict())
    except Exception as e:  # noqa: BLE001  (a bug: recorded with its traceback; the batch goes on)
        result.update(status="failed", error={"code": "internal.crash", "message": f"{type(e).__name__}: {e}",
                                              "hint": None, "traceback": traceback.format_exc()})
    result["seconds"] = round(time.perf_counter() - t0, 3)
    result["cpu_s"] = round(time.process_time() - cpu0, 3)  # every thread of the worker: spare cores at work
    return result


def local_worker_main(conn, env: dict, log_path: str | None) -> None:
    """A local engine's worker process: jobs arrive on `conn`, results go back; None ends it. SIGINT (Ctrl-C in
    the terminal, or the driver passing on a cancel) cancels the running job cleanly at its next step."""
    os.environ.update(env)
    if log_path:  # the libraries' own chatter (MediaPipe, TF Lite write to fds 1 and 2) goes to the batch's log:
        # the driver's stdout carries its bar or its JSON lines only
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    cancel = CancelToken()
    signal.signal(signal.SIGINT, lambda *a: cancel.cancel())
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        if cancel.cancelled:  # a cancel arrived between jobs: refuse the next one cleanly
            conn.send({"name": task["name"], "status": "cancelled", "pid": os.getpid(), "warm": False,
                       "error": Cancelled().to_dict(), "warnings": [], "stages": [], "stage_seconds": {},
                       "seconds": 0.0})
            continue
        conn.send(run_one(task, cancel))
