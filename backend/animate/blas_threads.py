"""One BLAS thread for the video fit's small per-frame solves.

The per-frame fit (track.FaceFitter) multiplies and solves matrices of a few hundred by ~60 entries, hundreds of
times a second. numpy's OpenBLAS splits those over all cores; on a 2-core machine where another process holds one
core, every split waits for it: measured on this machine (benchmarks/animate.py's front clip, 150 frames) the fit
took 57-61 ms a frame with OpenBLAS's 2 threads and 9.2-9.4 ms with one (16 → 64-66 frames per second per
frame), and ~9 ms either way on an idle machine. `one_blas_thread()` sets numpy's OpenBLAS to one thread for the
duration and restores it after, found through ctypes in the library numpy loads (numpy.libs/ on Linux and Windows,
numpy/.dylibs/ on macOS; numpy 1.26's `openblas…64_` and numpy 2's `scipy_openblas…64_` names). Where numpy uses
another BLAS (Accelerate, MKL) it changes nothing. The results do not depend on the environment's thread count
(OMP_NUM_THREADS / OPENBLAS_NUM_THREADS): the fit always runs on one thread.
"""
from __future__ import annotations

import ctypes
import functools
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "_64_", "")


@functools.lru_cache(maxsize=1)
def _openblas():
    """(get, set) of numpy's OpenBLAS thread count, or None where numpy links no OpenBLAS found here."""
    root = Path(np.__file__).resolve().parent
    candidates = [p for d in (root.parent / "numpy.libs", root / ".dylibs") if d.is_dir()
                  for p in sorted(d.iterdir()) if "openblas" in p.name.lower()]
    for path in candidates:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                set_ = getattr(lib, f"{prefix}set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, set_.restype = ctypes.c_int, None
                    set_.argtypes = [ctypes.c_int]
                    return get, set_
    return None


def blas_threads() -> int | None:
    """numpy's OpenBLAS thread count now (None where it cannot be read)."""
    fns = _openblas()
    return None if fns is None else int(fns[0]())


@contextmanager
def one_blas_thread():
    """numpy's OpenBLAS on one thread inside the block, the previous count restored after."""
    fns = _openblas()
    if fns is None:
        yield
        return
    get, set_ = fns
    before = int(get())
    set_(1)
    try:
        yield
    finally:
        set_(before)
