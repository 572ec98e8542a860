"""Job folders and the stage runner: resume, cancel, progress, and a faithful `job.json`.

A stage is a plain function `run(ctx) -> dict | None` registered with `@stage(...)`, declaring the job-relative
paths it reads (`inputs`) and writes (`outputs`) and a dataclass of options. The runner skips a stage whose
recorded fingerprint (stage version + options + hashes of its inputs) is unchanged and whose outputs exist.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import platform
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import __version__
from .errors import Cancelled, HeadForgeError, JobError, StageError
from .events import CancelToken, EventCallback, ProgressEvent
from .fileio import sha256_tree, write_json

JOB_FORMAT = 1

# Stage order of each mode. Stages not registered (not built yet, or their module failed to import) are absent.
PIPELINES: dict[str, tuple[str, ...]] = {
    "full": ("input", "face", "multiview", "splat", "mesh", "rig"),
    "instant": ("input", "face", "rig"),
    "views": ("splat", "mesh", "rig"),  # a job folder whose views/ already exist (render-views, external views)
}


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[["StageContext"], dict | None]
    inputs: tuple[str, ...]  # job-relative files or folders read (hashed for resume)
    outputs: tuple[str, ...]  # job-relative files or folders written (must exist after a run)
    options: type | None = None  # a dataclass of options with defaults
    version: str = "1"  # bump when the stage's results change for the same inputs
    # (job inputs, stage options) -> {name: path outside the job}: files whose contents the fingerprint covers
    external_inputs: Callable[[dict, dict], dict] | None = None

    def default_options(self) -> dict:
        return dataclasses.asdict(self.options()) if self.options else {}


STAGES: dict[str, Stage] = {}


def stage(name: str, *, inputs=(), outputs=(), options=None, version="1", external_inputs=None):
    """Register a stage function under `name` (decorator)."""

    def wrap(fn):
        STAGES[name] = Stage(name, fn, tuple(inputs), tuple(outputs), options, version, external_inputs)
        return fn

    return wrap


def pipeline(mode: str = "full") -> list[str]:
    from . import stages  # noqa: F401  (imports every stage module, which registers it)

    if mode not in PIPELINES:
        raise JobError(f"Unknown mode {mode!r}; choose one of: {', '.join(PIPELINES)}.", code="job.bad_mode")
    return [name for name in PIPELINES[mode] if name in STAGES]


class Job:
    """A job folder and its `job.json` (the single record of inputs, options, versions, stage states)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.record_path = self.root / "job.json"

    def path(self, rel: str) -> Path:
        return self.root / rel

    def load(self) -> dict:
        if not self.record_path.exists():
            return {"format": JOB_FORMAT, "created": _now(), "inputs": {}, "options": {}, "stages": {}}
        try:
            record = json.loads(self.record_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise JobError(f"{self.record_path} is unreadable ({e}); remove it to start the job afresh.",
                           code="job.corrupt_record") from e
        if record.get("format") != JOB_FORMAT:
            raise JobError(f"{self.root} holds a job of format {record.get('format')!r}, not {JOB_FORMAT}.",
                           code="job.bad_format")
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


@dataclass
class StageContext:
    """What a stage function sees: its job, options, mode, and the progress/cancel plumbing."""

    job: Job
    stage: str
    options: Any  # instance of the stage's options dataclass (or a dict when it declares none)
    mode: str
    _emit: Callable[[ProgressEvent], None]
    _cancel: CancelToken
    _overall: Callable[[float], float]
    notes: list[str] = field(default_factory=list)

    def path(self, rel: str) -> Path:
        return self.job.path(rel)

    def progress(self, fraction: float, message: str = "", preview: str | Path | None = None, **data) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        self._emit(ProgressEvent("progress", self.stage, fraction, self._overall(fraction), message,
                                 str(preview) if preview else None, data))
        self.check_cancel()

    def warn(self, message: str, code: str = "warning") -> None:
        """A non-fatal problem the user should see; also kept in job.json."""
        self.notes.append(message)
        self._emit(ProgressEvent("warning", self.stage, message=message, data={"code": code}))

    def note(self, message: str) -> None:
        """A remark for job.json (e.g. a documented limitation that applied to this run)."""
        self.notes.append(message)

    def check_cancel(self) -> None:
        if self._cancel.cancelled:
            raise Cancelled()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict:
    """Versions of the main dependencies, read from package metadata (importing torch here would cost seconds)."""
    from importlib import metadata

    v = {"headforge": __version__, "python": platform.python_version()}
    for dist in ("torch", "numpy", "diffusers", "gsplat"):
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:  # optional dependency absent: just not recorded
            pass
    return v


def _fingerprint(st: Stage, job: Job, options: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"stage": st.name, "version": st.version, "options": options}, sort_keys=True).encode())
    for rel in st.inputs:
        h.update(rel.encode() + b"=" + sha256_tree(job.path(rel)).encode())
    if st.external_inputs:
        for name, p in sorted(st.external_inputs(job.load().get("inputs", {}), options).items()):
            h.update(name.encode() + b"=" + sha256_tree(p).encode())
    return h.hexdigest()


def _make_options(st: Stage, given: dict) -> tuple[Any, dict]:
    if st.options is None:
        return dict(given), dict(given)
    names = {f.name for f in dataclasses.fields(st.options)}
    unknown = set(given) - names
    if unknown:
        raise JobError(f"Unknown option(s) for stage {st.name!r}: {', '.join(sorted(unknown))}. "
                       f"Known: {', '.join(sorted(names))}.", code="job.bad_option")
    obj = st.options(**given)
    return obj, dataclasses.asdict(obj)


def run_job(job_dir: str | Path, *, inputs: dict | None = None, options: dict | None = None,
            mode: str = "full", until: str | None = None, force: tuple[str, ...] = (),
            on_event: EventCallback | None = None, cancel: CancelToken | None = None) -> dict:
    """Run (or resume) the pipeline of `mode` in `job_dir`, returning the final job record.

    `inputs` are stored once in job.json (e.g. {"photo": "/path/to/portrait.jpg"}) and read by stages from
    `ctx.job.load()["inputs"]`. `options` maps stage name -> {option: value}; omitted options keep the value
    of the previous run of the job, then the stage's default. `until` stops after that stage.
    """
    job, cancel = Job(job_dir), cancel or CancelToken()
    emit = on_event or (lambda e: None)
    names = pipeline(mode)
    if until is not None and until not in names:
        raise JobError(f"--until {until!r} is not a stage of mode {mode!r}; stages: {', '.join(names)}.",
                       code="job.bad_stage")
    if until is not None:
        names = names[: names.index(until) + 1]
    job.root.mkdir(parents=True, exist_ok=True)

    def init(record):
        record["inputs"].update(inputs or {})
        record["mode"] = mode
        for name, opts in (options or {}).items():
            if name not in STAGES:
                raise JobError(f"Options given for unknown stage {name!r}.", code="job.bad_stage")
            record["options"].setdefault(name, {}).update(opts)

    record = job.update(init)
    for i, name in enumerate(names):
        st = STAGES[name]
        opts_obj, opts = _make_options(st, record["options"].get(name, {}))
        fp = _fingerprint(st, job, opts)
        prev = record["stages"].get(name, {})
        outputs_exist = all(job.path(o).exists() for o in st.outputs)
        if prev.get("status") == "done" and prev.get("fingerprint") == fp and outputs_exist and name not in force:
            emit(ProgressEvent("stage_skipped", name, 1.0, (i + 1) / len(names), "unchanged, kept"))
            continue
        overall = (lambda f, i=i: (i + f) / len(names))
        ctx = StageContext(job, name, opts_obj, mode, emit, cancel, overall)
        started = time.time()
        record = job.update(lambda r: r["stages"].__setitem__(name, {
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
            _finish(job, name, status, started, ctx, error=e.to_dict())
            emit(ProgressEvent("error", name, 0.0, overall(0.0), e.message, data=e.to_dict()))
            raise
        except Exception as e:  # noqa: BLE001  (unexpected: recorded with its traceback, re-raised typed)
            err = StageError(f"Stage {name!r} crashed: {type(e).__name__}: {e}", code="stage.crashed")
            _finish(job, name, "failed", started, ctx, error={**err.to_dict(), "traceback": traceback.format_exc()})
            emit(ProgressEvent("error", name, 0.0, overall(0.0), err.message, data=err.to_dict()))
            raise err from e
        record = _finish(job, name, "done", started, ctx, fingerprint=fp, metrics=metrics)
        emit(ProgressEvent("stage_done", name, 1.0, overall(1.0), f"{name}: done in {time.time() - started:.1f} s",
                           data={"metrics": metrics}))
    emit(ProgressEvent("job_done", names[-1] if names else "", 1.0, 1.0, f"Job folder: {job.root}"))
    return job.load()


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
