"""OUT/batch.json: every job of a batch with its status, attempts, error, warnings and timings.

Written atomically (backend/fileio.py) after every change, so a crash of the driver loses nothing: on the next
run a job recorded as "running" goes back to "pending" and its job folder resumes where its stages stopped.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from pathlib import Path

from ..errors import HeadForgeError
from ..fileio import write_json

STATE_NAME = "batch.json"
STATE_FORMAT = 1
PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
# Failures that are the photo's (or the row's) fault: running the same job again gives the same answer.
NOT_RETRIED = ("input.", "face.", "job.bad_option", "job.bad_stage", "job.bad_mode", "cli.", "batch.bad_row")


def retryable(code: str) -> bool:
    """Whether a failure with this error code may go away on another attempt (a crash, a lost worker, a full disk
    freed, a model file restored), as opposed to the photo's or the options' fault."""
    return not any(code == p or (p.endswith(".") and code.startswith(p)) for p in NOT_RETRIED)


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def signature(photo: str, mode: str | None, options: dict) -> str:
    """What makes a job's result: the photo (path, size, modification time), the mode, the options. A finished
    job whose signature changed runs again (its job folder re-runs only the stages that changed)."""
    try:
        st = os.stat(photo)
        stamp = [st.st_size, st.st_mtime_ns]
    except OSError:
        stamp = None
    blob = json.dumps({"photo": photo, "stat": stamp, "mode": mode, "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class BatchState:
    """The batch record in OUT/batch.json (one writer: the batch's driver)."""

    def __init__(self, out: Path, record: dict):
        self.out, self.record = out, record

    @property
    def path(self) -> Path:
        return self.out / STATE_NAME

    @property
    def jobs(self) -> dict[str, dict]:
        return self.record["jobs"]

    @classmethod
    def open(cls, out: str | Path) -> "BatchState":
        out = Path(out).expanduser().resolve()
        if out.exists() and not out.is_dir():
            raise HeadForgeError(f"{out} is a file; give a folder for the batch with -o.", code="batch.bad_output")
        p = out / STATE_NAME
        if not p.exists():
            return cls(out, {"format": STATE_FORMAT, "created": now(), "jobs": {}, "runs": []})
        try:
            record = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise HeadForgeError(f"{p} is unreadable ({e}).", code="batch.corrupt_state",
                                 hint="remove it: finished job folders are kept and skipped stage by stage") from e
        if not isinstance(record, dict) or record.get("format") != STATE_FORMAT or not isinstance(
                record.get("jobs"), dict):
            raise HeadForgeError(f"{p} is not a HeadForge batch record of format {STATE_FORMAT}.",
                                 code="batch.corrupt_state")
        record.setdefault("runs", [])
        for job in record["jobs"].values():  # the driver that ran them is gone: they resume
            if job.get("status") == RUNNING:
                job["status"] = PENDING
        return cls(out, record)

    def save(self) -> None:
        self.record["updated"] = now()
        write_json(self.path, self.record)

    def job_finished(self, name: str) -> bool:
        """Recorded done, and its job folder still says every stage it ran is done."""
        job = self.jobs.get(name)
        if not job or job.get("status") != DONE:
            return False
        try:
            stages = json.loads((self.out / name / "job.json").read_text()).get("stages", {})
        except (OSError, ValueError):
            return False
        ran = job.get("stages") or []
        return bool(ran) and all(stages.get(s, {}).get("status") == "done" for s in ran)


def finished_jobs(out) -> list[str]:
    """Names of the batch's finished jobs, in the batch's order ([] when `out` holds no batch.json)."""
    out = Path(out)
    try:
        record = json.loads((out / STATE_NAME).read_text(encoding="utf-8"))
        jobs = record["jobs"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    order = [n for n in record.get("order", jobs) if n in jobs]
    return [n for n in order if jobs[n].get("status") == DONE and (out / n).is_dir()]


def grid_positions(n: int, columns: int = 0, spacing: float = 0.45) -> list[tuple[float, float, float]]:
    """Blender locations (x, y, z) of n heads in a grid facing −Y: columns along +X, rows downward along −Z,
    centred on x = 0; `columns` 0 chooses a near-square grid."""
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    return [((i % cols - (min(n, cols) - 1) / 2) * spacing, 0.0, -(i // cols) * spacing) for i in range(n)]
