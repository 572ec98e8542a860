"""The tracker's learned models on disk (eye_openness, eye_keys, brow_keys): float32 arrays in an .npz with a SHA-256
digest of them, so a tampered, truncated or foreign file is refused with a coded error, never used."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .take import AnimationError


def array_digest(*arrays) -> str:
    """SHA-256 of the arrays' float32 bytes, in order."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, np.float32).tobytes())
    return h.hexdigest()


def save_model_file(path: Path, arrays: dict, meta: dict, info: dict) -> Path:
    """Write `arrays` (as float32, digested in this order), `meta` (version, keys, patch size: checked on load as
    they are) and `info` (training notes) to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays, **meta, digest=np.array(array_digest(*arrays.values())),
                        **{f"info_{k}": np.asarray(v) for k, v in info.items()})
    tmp.replace(path)
    return path


def load_model_file(path: Path, names: tuple, *, what: str, code: str, hint: str, check) -> tuple[dict, dict, dict]:
    """(arrays `names` as float64, every stored entry, info) of a save_model_file file. The file must exist
    (AnimationError `code`_missing), read, match its digest, hold finite arrays and pass `check(arrays, stored)`
    (else `code`_invalid); `what` names the model in the messages."""
    path = Path(path)
    if not path.is_file():
        raise AnimationError(f"The {what} {path.name} is missing.", code=f"{code}_missing", hint=hint)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        a = {k: d[k].astype(np.float64) for k in names}
        ok = (str(d["digest"]) == array_digest(*(d[k] for k in names))
              and all(np.isfinite(v).all() for v in a.values()) and bool(check(a, d)))
    except Exception as e:  # a truncated or foreign file: zip, pickle or key errors
        raise AnimationError(f"The {what} {path.name} cannot be read ({type(e).__name__}).", code=f"{code}_invalid",
                             hint=hint) from e
    if not ok:
        raise AnimationError(f"The {what} {path.name} has been altered or is for another version.",
                             code=f"{code}_invalid", hint=hint)
    return a, d, {k[5:]: d[k].tolist() for k in d if k.startswith("info_")}
