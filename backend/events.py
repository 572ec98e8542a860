"""Progress events: the one stream the CLI, the JSON-lines transport and Blender's panel all read."""
from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Callable


@dataclass
class ProgressEvent:
    """`kind` is "progress", "stage_start", "stage_done", "stage_skipped", "warning", "error" or "job_done".

    `fraction` is the stage's own progress in [0, 1]; `overall` is the job's.
    """

    kind: str
    stage: str
    fraction: float = 0.0
    overall: float = 0.0
    message: str = ""
    preview: str | None = None  # absolute path of an image showing the work so far
    data: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> "ProgressEvent":
        return cls(**json.loads(line))


EventCallback = Callable[[ProgressEvent], None]


class CancelToken:
    """A flag set from another thread (UI, signal handler) and checked by stages between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
