"""Job folders and the stage runner: resume, cancel, progress, and a faithful `job.json`.

A stage is a plain function `run(ctx) -> dict | None` described by `@stage(...)` (backend/stage.py), declaring the
job-relative paths it reads (`inputs`) and writes (`outputs`, which must exist after a run; `optional_outputs`,
written only in some cases) and a dataclass of options. The runner takes its stages explicitly (`run_job(...,
stages=...)`); the default is the pipeline's own list, backend/stages/__init__.py. The runner skips a stage whose
recorded fingerprint (stage version + options + hashes of its inputs) is unchanged and whose outputs still hash to
what it wrote. One run at a time holds a job folder (`.headforge.lock`).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import socket
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Callable

from . import __version__
from .errors import Cancelled, HeadForgeError, JobError, StageError
from .events import CancelToken, EventCallback, ProgressEvent
from .fileio import remove_stale_temps, sha256_tree, write_json
from .idts import readiness
from .stage import Stage, StageContext, _make_options, check_options  # noqa: F401  (Stage, check_options: API)
from .stages import PIPELINES, STAGES

JOB_FORMAT = 1
LOCK_NAME = ".headforge.lock"
FULL_MODE_NEEDS = ("full mode also needs the HQ-Head weights: `headforge models download hqhead-stage1 "
                   "hqhead-stage2 --accept-terms`, then `python -m headforge.backend.idts.converter`")

MODES = ("auto", *PIPELINES)  # auto: full where it can run (idts.readiness.full_mode_readiness), else instant


def pipeline(mode: str = "full", stages: dict[str, Stage] | None = None) -> list[str]:
    """The names of the stages mode `mode` runs, in order, among `stages` (default: the pipeline's, STAGES)."""
    stages = STAGES if stages is None else stages
    if mode not in PIPELINES:
        raise JobError(f"Unknown mode {mode!r}; choose one of: {', '.join(MODES)}.", code="job.bad_mode")
    return [name for name in PIPELINES[mode] if name in stages]


def choose_mode(options: dict | None = None) -> tuple[str, str]:
    """Mode "auto": ("full", why) where full mode can run here, else ("instant", why and what full mode needs),
    as one line "mode auto → MODE: REASON; ...". `options` are the job's stage options (multiview.models_dir and
    multiview.device count)."""
    mv = (options or {}).get("multiview", {})
    ready, why = readiness.full_mode_readiness(mv.get("models_dir", ""), mv.get("device", "auto"))
    if ready:
        return "full", f"mode auto → full: {why}."
    needs = "" if "hqhead-stage1" in why else f"; {FULL_MODE_NEEDS}"  # the reason may name the weights' step
    return "instant", f"mode auto → instant: {why}{needs}."


class Job:
    """A job folder and its `job.json` (the single record of inputs, options, versions, stage states)."""

    def __init__(self, root: str | Path):
        if not str(root).strip():
            raise JobError("The job folder is an empty name; give one with -o FOLDER.", code="job.bad_folder")
        try:
            self.root = Path(root).expanduser().resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop
            raise JobError(f"The job folder {root} cannot be resolved ({e}).", code="job.bad_folder") from e
        if self.root == Path(self.root.anchor):
            raise JobError(f"{self.root} is a filesystem root; give a folder of its own for the job.",
                           code="job.bad_folder")
        self.record_path = self.root / "job.json"

    def path(self, rel: str) -> Path:
        return self.root / rel

    def load(self) -> dict:
        if self.root.exists() and not self.root.is_dir():
            raise JobError(f"{self.root} is a file, not a job folder; choose another -o.", code="job.not_a_folder")
        if not self.record_path.exists():
            return {"format": JOB_FORMAT, "created": _now(), "inputs": {}, "options": {}, "stages": {}}
        try:
            record = json.loads(self.record_path.read_bytes().decode("utf-8"))
        except (OSError, ValueError) as e:  # ValueError: undecodable bytes or bad JSON
            raise JobError(f"{self.record_path} is unreadable ({e}); remove it to start the job afresh.",
                           code="job.corrupt_record") from e
        if not isinstance(record, dict) or not all(isinstance(record.get(k, {}), dict)
                                                   for k in ("inputs", "options", "stages")):
            raise JobError(f"{self.record_path} is not a job record (it holds {type(record).__name__} "
                           f"{str(record)[:40]}); remove it to start the job afresh.", code="job.corrupt_record")
        if record.get("format") != JOB_FORMAT:
            raise JobError(f"{self.root} holds a job of format {record.get('format')!r}, not {JOB_FORMAT}.",
                           code="job.bad_format")
        for key in ("inputs", "options", "stages"):
            record.setdefault(key, {})
        return record

    def save(self, record: dict) -> None:
        write_json(self.record_path, record)

    def update(self, fn: Callable[[dict], None]) -> dict:
        record = self.load()
        fn(record)
        self.save(record)
        return record

    def stage_state(self, name: str) -> dict:
        return self.load().get("stages", {}).get(name, {})


class JobLock:
    """The one run allowed in a job folder at a time: an OS lock on `.headforge.lock` (holding the pid, host and
    start time of its run). The OS drops the lock when its process dies, so a killed run's lock is taken over."""

    def __init__(self, root: Path):
        self.path = root / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> "JobLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise JobError(f"{self.path.parent} is in use by another run: process {holder.get('pid', '?')} on "
                           f"{holder.get('host', '?')}, started {holder.get('started', '?')}. Wait for it to "
                           "finish, or stop that process.", code="job.locked") from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)  # (os.pwrite and os.pread do not exist on Windows)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


def _read_holder(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode())
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


try:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
except ImportError:  # Windows: lock one byte far past the holder record, which stays readable
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 1 << 20, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict:
    """Versions of the main dependencies, read from package metadata (importing torch here would cost seconds)."""
    v = {"headforge": __version__, "python": platform.python_version()}
    for dist in ("torch", "numpy", "diffusers", "gsplat"):
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # optional dependency absent: just not recorded
            pass
    return v


def _external_hashes(st: Stage, inputs: dict, options: dict, prev: dict | None = None) -> dict:
    """{name: {"path", "sha256"}} of the stage's files outside the job. A file that is gone since the stage last
    ran keeps its recorded hash: the job's own copy of what was made from it stands (e.g. a deleted photo)."""
    if not st.external_inputs:
        return {}
    before = (prev or {}).get("external", {})
    out = {}
    for name, p in sorted(st.external_inputs(inputs, options).items()):
        digest = sha256_tree(p)
        old = before.get(name) or {}
        if not digest and old.get("path") == str(p):
            digest = old.get("sha256", "")
        out[name] = {"path": str(p), "sha256": digest}
    return out


def _fingerprint(st: Stage, job: Job, options: dict, external: dict | None = None) -> str:
    if external is None:
        external = _external_hashes(st, job.load().get("inputs", {}), options)
    h = hashlib.sha256()
    h.update(json.dumps({"stage": st.name, "version": st.version, "options": options}, sort_keys=True).encode())
    for rel in st.inputs:
        h.update(rel.encode() + b"=" + sha256_tree(job.path(rel)).encode())
    for name, ext in sorted(external.items()):
        h.update(name.encode() + b"=" + ext["sha256"].encode())
    return h.hexdigest()


def _output_hashes(st: Stage, job: Job) -> dict:
    return {rel: sha256_tree(job.path(rel)) for rel in st.outputs + st.optional_outputs}


def _outputs_intact(st: Stage, job: Job, prev: dict) -> bool:
    """Every required output exists and every output still hashes as when the stage wrote it."""
    if not all(job.path(o).exists() for o in st.outputs):
        return False
    recorded = prev.get("outputs")
    if recorded is None:  # recorded before output hashes were kept: existence is all there is to check
        return True
    return _output_hashes(st, job) == {rel: recorded.get(rel, "") for rel in st.outputs + st.optional_outputs}


def merge_options(saved: dict, given: dict | None, unset=(), stages: dict[str, Stage] | None = None) -> dict:
    """The job's options after dropping `unset` ("STAGE.OPTION") and applying `given` ({stage: {option: v}}),
    every stage's options checked (JobError before anything is saved)."""
    stages = STAGES if stages is None else stages
    merged = {name: dict(opts) for name, opts in saved.items() if isinstance(opts, dict)}
    for key in unset:
        name, dot, opt = key.partition(".")
        if not dot or not opt:
            raise JobError(f"--unset {key!r}: expected STAGE.OPTION.", code="job.bad_option")
        merged.get(name, {}).pop(opt, None)
    for name, opts in (given or {}).items():
        if name not in stages:
            raise JobError(f"Options given for unknown stage {name!r}; stages: {', '.join(stages)}.",
                           code="job.bad_stage")
        merged.setdefault(name, {}).update(opts)
    for name in list(merged):
        if name in stages:  # options of a stage that is not available here stay as saved
            merged[name] = check_options(stages[name], merged[name])
        if not merged[name]:
            del merged[name]
    return merged


def run_job(job_dir: str | Path, *, inputs: dict | None = None, options: dict | None = None, unset=(),
            mode: str | None = None, until: str | None = None, force: tuple[str, ...] = (),
            on_event: EventCallback | None = None, cancel: CancelToken | None = None,
            stages: dict[str, Stage] | None = None) -> dict:
    """Run (or resume) the pipeline of `mode` in `job_dir`, returning the final job record.

    `mode` None keeps the job's recorded mode (a new job: "auto"). `inputs` are stored once in job.json (e.g.
    {"photo": "/path/to/portrait.jpg"}) and read by stages from `ctx.job.load()["inputs"]`. `options` maps stage
    name -> {option: value}; omitted options keep the value of the previous run of the job, then the stage's
    default; `unset` ("STAGE.OPTION", ...) drops saved ones. Everything is checked before anything is saved.
    `until` stops after that stage. `stages`: {name: Stage} the modes' stage names refer to (default: STAGES, the
    pipeline's own list in backend/stages/__init__.py).
    """
    stages = STAGES if stages is None else stages
    job, cancel = Job(job_dir), cancel or CancelToken()
    emit = on_event or (lambda e: None)
    # Everything is checked before the folder, its lock or its record is touched; again under the lock.
    mode, why, _, _ = _plan(job, inputs, options, unset, mode, until, stages)
    with JobLock(job.root):
        _, _, names, merged = _plan(job, inputs, options, unset, mode, until, stages)
        remove_stale_temps(job.root)  # left by a killed run: the lock says no other run is writing here

        def init(r):
            r["inputs"].update(inputs or {})
            r["mode"], r["options"] = mode, merged

        record = job.update(init)
        if why:
            emit(ProgressEvent("info", "", message=why, data={"mode": mode}))
        for i, name in enumerate(names):
            record = _run_stage(job, stages[name], i, len(names), record, mode, name in force, emit, cancel)
        emit(ProgressEvent("job_done", names[-1] if names else "", 1.0, 1.0, f"Job folder: {job.root}"))
        return job.load()


def _plan(job: Job, inputs, options, unset, mode, until, stages) -> tuple[str, str | None, list[str], dict]:
    """(mode, why "auto" chose it, the stages to run, the job's options after this run's changes), checked."""
    record = job.load()
    mode = mode or record.get("mode") or "auto"
    why = None
    if mode == "auto":
        mode, why = choose_mode(merge_options(record["options"], options, unset, stages))
    names = pipeline(mode, stages)
    if until is not None and until not in names:
        raise JobError(f"--until {until!r} is not a stage of mode {mode!r}; stages: {', '.join(names)}.",
                       code="job.bad_stage")
    if until is not None:
        names = names[: names.index(until) + 1]
    merged = merge_options(record["options"], options, unset, stages)
    for name in names:
        if inputs and stages[name].check_inputs:
            stages[name].check_inputs(inputs)
    return mode, why, names, merged


def _run_stage(job: Job, st: Stage, i: int, n: int, record: dict, mode: str, forced: bool, emit, cancel) -> dict:
    name = st.name
    opts_obj, opts = _make_options(st, record["options"].get(name, {}))
    prev = record["stages"].get(name, {})
    external = _external_hashes(st, record["inputs"], opts, prev)
    fp = _fingerprint(st, job, opts, external)
    if prev.get("status") == "done" and prev.get("fingerprint") == fp and not forced and _outputs_intact(st, job, prev):
        news = {"external": external} if external != prev.get("external") else {}  # same contents, another path
        if "outputs" not in prev:  # recorded before output hashes were kept: from now on they are
            news["outputs"] = _output_hashes(st, job)
        if news:
            record = job.update(lambda r: r["stages"][name].update(news))
        gone = [e["path"] for e in external.values() if not Path(e["path"]).exists()]
        emit(ProgressEvent("stage_skipped", name, 1.0, (i + 1) / n, "unchanged, kept" + (
            f" ({', '.join(gone)} is gone; the job keeps its own copy)" if gone else "")))
        return record
    overall = (lambda f: (i + f) / n)
    ctx = StageContext(job, name, opts_obj, mode, emit, cancel, overall)
    started = time.time()
    before = {rel: _identity(job.path(rel)) for rel in st.optional_outputs}
    job.update(lambda r: r["stages"].__setitem__(name, {
        "status": "running", "started": _now(), "options": opts, "version": st.version}))
    emit(ProgressEvent("stage_start", name, 0.0, overall(0.0), f"{name}: started"))
    try:
        ctx.check_cancel()
        metrics = st.run(ctx) or {}
        missing = [o for o in st.outputs if not job.path(o).exists()]
        if missing:
            raise StageError(f"Stage {name!r} finished without writing {', '.join(missing)}.",
                             code="stage.missing_output")
    except HeadForgeError as e:
        status = "cancelled" if isinstance(e, Cancelled) else "failed"
        _finish_quietly(job, name, status, started, ctx, error=e.to_dict())
        emit(ProgressEvent("error", name, 0.0, overall(0.0), e.message, data=e.to_dict()))
        raise
    except Exception as e:  # noqa: BLE001  (unexpected: recorded with its traceback, re-raised typed)
        err = StageError(f"Stage {name!r} crashed: {type(e).__name__}: {e}", code="stage.crashed")
        _finish_quietly(job, name, "failed", started, ctx, error={**err.to_dict(), "traceback": traceback.format_exc()})
        emit(ProgressEvent("error", name, 0.0, overall(0.0), err.message, data=err.to_dict()))
        raise err from e
    for rel, ident in before.items():  # an optional output this run did not write is a stale one
        if ident is not None and _identity(job.path(rel)) == ident:
            job.path(rel).unlink()
    record = _finish(job, name, "done", started, ctx, fingerprint=fp, metrics=metrics, external=external,
                     outputs=_output_hashes(st, job))
    emit(ProgressEvent("stage_done", name, 1.0, overall(1.0), f"{name}: done in {time.time() - started:.1f} s",
                       data={"metrics": metrics}))
    return record


def _identity(path: Path):
    """(inode, mtime) of a file, None when absent: atomic writes replace the file, so a written one changes."""
    try:
        s = path.stat()
    except OSError:
        return None
    return (s.st_ino, s.st_mtime_ns) if path.is_file() else None


def _finish_quietly(job: Job, name: str, status: str, started: float, ctx: StageContext, **extra) -> None:
    """Record a failure if job.json can be written (a full disk may be what failed): the error itself matters more."""
    try:
        _finish(job, name, status, started, ctx, **extra)
    except HeadForgeError:
        pass


def _finish(job: Job, name: str, status: str, started: float, ctx: StageContext, **extra) -> dict:
    def upd(r):
        s = r["stages"].setdefault(name, {})
        s.update(status=status, finished=_now(), seconds=round(time.time() - started, 3),
                 versions=_versions(), notes=list(ctx.notes), **extra)
        if status == "done":
            s.pop("error", None)
        if status != "done":
            s.pop("fingerprint", None)

    return job.update(upd)
