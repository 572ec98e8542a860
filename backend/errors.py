"""Typed errors. Every error the user can see carries a stable code and a plain-language message."""
from __future__ import annotations


# The `headforge` command's exit statuses: a coded error, a cancel (as for SIGINT), a blocking doctor check.
EXIT_ERROR, EXIT_CANCELLED, EXIT_BLOCKING = 1, 130, 2


class HeadForgeError(Exception):
    """Base of all expected failures: `code` is stable (tests, CLI exit, UI), `message` is for people."""

    code = "headforge.error"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "hint": self.hint, "type": type(self).__name__}

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputImageError(HeadForgeError):
    """The photo cannot be used (corrupt, empty, too small, ...)."""

    code = "input.invalid"


class FaceError(HeadForgeError):
    """The face stage refused the photo (no face, face too small, ...)."""

    code = "face.invalid"


class ModelMissingError(HeadForgeError):
    """A model file the stage needs is absent, incomplete or fails its hash check."""

    code = "model.missing"


class StageError(HeadForgeError):
    """A stage failed for a reason that is not the user's input."""

    code = "stage.failed"


class JobError(HeadForgeError):
    """The job folder or its options are inconsistent (unknown stage, foreign folder, ...)."""

    code = "job.invalid"


class StorageError(HeadForgeError):
    """A file could not be written: a full disk (`storage.full`), no permission, a read-only folder."""

    code = "storage.failed"


class DependencyError(HeadForgeError):
    """An optional dependency (bpy, CUDA, gsplat kernels, ...) is missing for the requested action."""

    code = "dependency.missing"


class Cancelled(HeadForgeError):
    """The user cancelled; the job folder is consistent and the next run resumes."""

    code = "cancelled"

    def __init__(self, message: str = "Cancelled by the user; run again to resume."):
        super().__init__(message)
