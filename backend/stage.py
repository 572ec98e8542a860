"""What a pipeline stage is and sees: `Stage` (a function plus the job-relative paths it reads and writes, its options
and version), the `@stage(...)` decorator that describes a stage function, the `StageContext` it runs with, and the
checking of its options. The stages themselves are in backend/stages/ (their list: backend/stages/__init__.py); the
runner is backend/job.py.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import Cancelled, JobError
from .events import CancelToken, ProgressEvent


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[["StageContext"], dict | None]
    inputs: tuple[str, ...]  # job-relative files or folders read (hashed for resume)
    outputs: tuple[str, ...]  # job-relative files or folders written (must exist after a run)
    options: type | None = None  # a dataclass of options with defaults (field metadata: "range", "choices")
    version: str = "1"  # bump when the stage's results change for the same inputs
    # (job inputs, stage options) -> {name: path outside the job}: files whose contents the fingerprint covers
    external_inputs: Callable[[dict, dict], dict] | None = None
    optional_outputs: tuple[str, ...] = ()  # written in some cases only; removed when a run no longer writes them
    # new job inputs -> None, raising a coded error: cheap checks made before the inputs are saved
    check_inputs: Callable[[dict], None] | None = None

    def default_options(self) -> dict:
        return dataclasses.asdict(self.options()) if self.options else {}


def stage(name: str, *, inputs=(), outputs=(), options=None, version="1", external_inputs=None,
          optional_outputs=(), check_inputs=None):
    """Describe a stage function (decorator): the function is returned unchanged, its `Stage` as `fn.stage`."""

    def wrap(fn):
        fn.stage = Stage(name, fn, tuple(inputs), tuple(outputs), options, version, external_inputs,
                         tuple(optional_outputs), check_inputs)
        return fn

    return wrap


@dataclass
class StageContext:
    """What a stage function sees: its job, options, mode, and the progress/cancel plumbing."""

    job: Any  # backend.job.Job
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


def check_options(st: Stage, given: dict) -> dict:
    """`given` options of stage `st`, checked for name, type and range, with strings (from the command line)
    read as JSON for non-text options; returns the normalised values. Raises JobError job.bad_option."""
    if not given:
        return {}
    if st.options is None:
        raise JobError(f"Stage {st.name!r} takes no options (given: {', '.join(sorted(given))}).",
                       code="job.bad_option")
    fields = {f.name: f for f in dataclasses.fields(st.options)}
    defaults = st.default_options()
    out = {}
    for name, value in given.items():
        if name not in fields:
            raise JobError(f"Unknown option {st.name}.{name}. Known: {', '.join(sorted(fields))}.",
                           code="job.bad_option", hint=f"drop a saved one with --unset {st.name}.{name}")
        out[name] = _check_value(f"{st.name}.{name}", value, defaults[name], fields[name].metadata)
    return out


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "text"}


def _check_value(key: str, value, default, meta) -> Any:
    kind = type(default)

    def bad(why: str):
        return JobError(f"Option {key} {why}.", code="job.bad_option",
                        hint=f"`headforge stages` lists the options and their defaults; --unset {key} drops it")

    if isinstance(value, str) and kind is not str:
        try:
            value = json.loads(value)
        except ValueError:
            raise bad(f"must be {_KINDS.get(kind, kind.__name__)}, not {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    if type(value) is not kind:
        raise bad(f"must be {_KINDS.get(kind, kind.__name__)}, not {value!r}")
    if kind is float and not math.isfinite(value):
        raise bad(f"must be a finite number, not {value!r}")
    lo, hi = meta.get("range", (None, None))
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad(f"must be between {lo} and {hi}, not {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise bad(f"must be one of {', '.join(map(str, meta['choices']))}, not {value!r}")
    return value


def _make_options(st: Stage, given: dict) -> tuple[Any, dict]:
    checked = check_options(st, given)
    if st.options is None:
        return checked, checked
    obj = st.options(**checked)
    return obj, dataclasses.asdict(obj)


