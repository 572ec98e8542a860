"""Atomic file writes: a reader never sees a half-written artifact, a crash leaves the old one or none.

A write that fails (full disk, no permission) raises StorageError with a code; the temporary files a killed
process leaves (`.NAME.tmp-PID.EXT`) are removed by `remove_stale_temps` on the job's next run.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
from pathlib import Path

from .errors import StorageError

_TEMP = re.compile(r"^\..+\.tmp-\d+(\.[^.]*)?$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside `path`; on success rename it over `path`, on failure delete it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if not tmp.exists():
            raise StorageError(f"Nothing was written to {tmp}.", code="storage.nothing_written")
        os.replace(tmp, path)
    except OSError as e:
        raise storage_error(e, path) from e
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def storage_error(e: OSError, path) -> StorageError:
    """A coded error for a failed write of `path`."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageError(f"The disk is full: {path} could not be written. Free some space and run again "
                            "(finished stages are kept).", code="storage.full")
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorageError(f"{path} cannot be written ({e.strerror}); choose a folder you can write to.",
                            code="storage.denied")
    return StorageError(f"{path} could not be written: {e.strerror or e}.", code="storage.failed")


def remove_stale_temps(root) -> list[Path]:
    """Delete the temporary files of atomic writes under `root` (a killed run's leftovers); return them.
    Only call it while no other process writes under `root` (the job lock)."""
    removed = []
    for p in Path(root).rglob(".*.tmp-*"):
        if _TEMP.match(p.name) and p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                removed.append(p)
    return removed


def write_bytes(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_json(path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True, default=_json_default) + "\n").encode())


def write_image(path, image) -> None:
    """Save a PIL image atomically; the format comes from the suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format=_PIL_FORMATS.get(path.suffix.lower(), None))


def write_npy(path, array) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


_PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF"}


def _json_default(o):
    import numpy as np

    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path) -> str:
    """Hash of a file, or of a folder's files (relative names + contents, sorted); "" when absent."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    if not path.is_dir():
        return ""
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(str(p.relative_to(path)).encode() + b"\0" + sha256_file(p).encode())
    return h.hexdigest()


def save_torch_checkpoint(path, blob: dict, tensors) -> bool:
    """Write a torch checkpoint `blob` atomically, unless any of `tensors` holds NaN/inf (a diverged state never
    replaces the last good one). Returns whether it was written."""
    import torch  # lazily: only the torch stages checkpoint, and this module is imported everywhere

    if not all(torch.isfinite(t).all() for t in tensors):
        return False
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return True


def load_torch_checkpoint(path, device, key: str, value) -> dict | None:
    """The checkpoint at `path` (tensors only: weights_only) when it exists, loads and has blob[key] == value; else
    None (a missing, torn or foreign checkpoint means starting afresh)."""
    import torch

    if path is None or not Path(path).is_file():
        return None
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception:  # noqa: BLE001  (torn or foreign)
        return None
    return blob if isinstance(blob, dict) and blob.get(key) == value else None
