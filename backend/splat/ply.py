"""Standard 3DGS PLY files (binary little-endian), readable by gsplat, KIRI's Blender add-on and SuperSplat.

Vertex properties, all float32, in this order: `x y z`, `f_dc_0..2`, `f_rest_0..3(K-1)-1`, `opacity` (logit),
`scale_0..2` (natural log), `rot_0..3` (quaternion, w first, as stored — not necessarily unit). `f_rest` is
channel-major as in the original 3DGS code: `f_rest_{c·(K−1) + (k−1)}` is SH coefficient k of channel c.
Files that also carry `nx ny nz` (the original 3DGS writer) or other float properties read fine; those
extra properties are kept in `extra` and written back: values round-trip bit-exactly, and the bytes too
for files in the standard property order (ours, gsplat's, the original 3DGS writer's).

The splat dict (numpy float32 arrays), the one shape every module passes around:
    means           [N, 3]     world positions (Blender frame, metres)
    quats           [N, 4]     wxyz, as stored
    log_scales      [N, 3]     natural log of the per-axis standard deviations
    opacity_logits  [N]        logit of the opacity
    sh              [N, K, 3]  SH coefficients, K = (degree + 1)²; sh[:, 0] is the DC term (f_dc)
    extra           {name: [N]} other vertex properties in file order (optional)
`render_args(splat)` turns it into activated torch tensors for `rasterize.rasterize`.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import HeadForgeError
from ..fileio import atomic_path

SH_C0 = 0.28209479177387814  # Y_0^0: rgb = SH_C0 · f_dc + 0.5

_PLY_TYPES = {"float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "uchar": "u1", "uint8": "u1",
              "char": "i1", "int8": "i1", "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
              "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4"}


class SplatFileError(HeadForgeError):
    """A splat PLY cannot be read (not a PLY, not 3DGS, truncated)."""

    code = "splat.bad_ply"


def write_ply(path, splat: dict) -> None:
    """Write a splat dict (numpy or torch arrays) as a 3DGS PLY, atomically."""
    means, quats = _np(splat["means"]), _np(splat["quats"])
    log_scales, logits, sh = _np(splat["log_scales"]), _np(splat["opacity_logits"]), _np(splat["sh"])
    n = means.shape[0]
    if sh.ndim != 3 or sh.shape[2] != 3 or math.isqrt(sh.shape[1]) ** 2 != sh.shape[1]:
        raise ValueError(f"sh must be [N, K, 3] with K a square number, not {sh.shape}")
    for name, a, shape in (("means", means, (n, 3)), ("quats", quats, (n, 4)), ("log_scales", log_scales, (n, 3)),
                           ("opacity_logits", logits, (n,)), ("sh", sh, (n, sh.shape[1], 3))):
        if a.shape != shape:
            raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    k = sh.shape[1]
    extra = {name: _np(v).reshape(n) for name, v in (splat.get("extra") or {}).items()}
    columns = {"x": means[:, 0], "y": means[:, 1], "z": means[:, 2]}
    columns.update({name: v for name, v in extra.items() if name in ("nx", "ny", "nz")})
    columns.update({f"f_dc_{c}": sh[:, 0, c] for c in range(3)})
    rest = sh[:, 1:, :].transpose(0, 2, 1).reshape(n, 3 * (k - 1))  # channel-major
    columns.update({f"f_rest_{j}": rest[:, j] for j in range(3 * (k - 1))})
    columns["opacity"] = logits
    columns.update({f"scale_{i}": log_scales[:, i] for i in range(3)})
    columns.update({f"rot_{i}": quats[:, i] for i in range(4)})
    columns.update({name: v for name, v in extra.items() if name not in columns})
    write_columns(path, columns)


REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3")
_BLOCK_ROWS = 4096  # 1 MB blocks of a 62-float file: the block stays in cache while it is spread over the columns


def read_header(path) -> dict:
    """Parse and check a 3DGS PLY header → {format, n, props [(name, ply type)], dtype, body_offset, sh_degree}.

    Everything a reader needs to trust the body is checked here (binary, the 3DGS properties, float types, SH
    count, size on disk). Raises SplatFileError with a specific code."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            size = f.seek(0, 2)
    except OSError as e:
        raise SplatFileError(f"Cannot read splat file {path}: {e}", code="splat.ply_missing") from e
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        raise SplatFileError(f"{path.name} is not a PLY file.")
    body = head.index(b"\n", end) + 1 if b"\n" in head[end:] else len(head)
    fmt, elements = None, []
    for line in head[:end].decode("ascii", errors="replace").splitlines()[1:]:
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element" and len(parts) == 3:
            elements.append([parts[1], int(parts[2]), []])
        elif parts[0] == "property" and elements:
            if parts[1] == "list" or parts[1] not in _PLY_TYPES:
                raise SplatFileError(f"{path.name}: property {' '.join(parts[1:])!r} is not part of a 3DGS PLY.",
                                     code="splat.bad_type")
            elements[-1][2].append((parts[2], parts[1]))
    if fmt not in ("binary_little_endian", "binary_big_endian"):
        raise SplatFileError(f"{path.name}: PLY format {fmt!r} is not supported (3DGS PLYs are binary).",
                             code="splat.bad_format")
    if not elements or elements[0][0] != "vertex":
        raise SplatFileError(f"{path.name}: the first element must be 'vertex'.")
    _, n, props = elements[0]
    names = [p[0] for p in props]
    missing = [m for m in REQUIRED if m not in names]
    if missing:
        raise SplatFileError(f"{path.name} is not a 3DGS splat: missing {', '.join(missing)}.",
                             code="splat.not_gaussians")
    bad = [f"{p} ({t})" for p, t in props if _PLY_TYPES[t] not in ("f4", "f8")]
    if bad:
        raise SplatFileError(f"{path.name}: splat properties must be float, not {', '.join(bad)}.",
                             code="splat.bad_type")
    n_rest = sum(1 for m in names if m.startswith("f_rest_"))
    k = 1 + n_rest // 3
    if n_rest % 3 or math.isqrt(k) ** 2 != k or k > 16 or any(f"f_rest_{j}" not in names for j in range(n_rest)):
        raise SplatFileError(f"{path.name}: {n_rest} f_rest properties do not form SH coefficients of degree ≤ 3.",
                             code="splat.not_gaussians")
    if n <= 0:
        raise SplatFileError(f"{path.name} holds no splats.", code="splat.empty")
    order = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(name, order + _PLY_TYPES[t]) for name, t in props])
    if size - body < n * dtype.itemsize:
        raise SplatFileError(f"{path.name} is truncated: {n} splats need {n * dtype.itemsize} bytes, "
                             f"the file holds {size - body}.", code="splat.ply_truncated")
    return {"format": fmt, "n": n, "props": props, "dtype": dtype, "body_offset": body,
            "sh_degree": math.isqrt(k) - 1}


def read_columns(path, header: dict | None = None) -> dict[str, np.ndarray]:
    """The vertex body as {property: float32 [N]} in file order (see `read_groups`)."""
    header = header or read_header(path)
    return read_groups(path, header, {name: [name] for name in header["dtype"].names})


def read_groups(path, header: dict, groups: dict[str, list[str]], workers: int | None = None) -> dict[str, np.ndarray]:
    """Gather the vertex body straight into the arrays a caller hands on: {group: float32 [N, len(names)]}
    ([N] for one name), the columns in the order given. Properties in no group are skipped.

    The body is read in row blocks of about 1 MB, each spread column by column over the groups while it is in
    cache (long strided copies: numpy's per-row inner loops over 3 or 4 values cost more than the copying), so every
    byte is copied once from the file and once into its group, and the peak stays near one copy of what is kept.
    `workers` threads (default: up to 4, one per core) each read their own range of rows (numpy's reads and copies
    release the GIL). Raises SplatFileError (also on NaN/inf in the Gaussian parameters)."""
    path = Path(path)
    n, dtype = header["n"], header["dtype"]
    names = dtype.names
    index = {name: i for i, name in enumerate(names)}
    unknown = [c for cols in groups.values() for c in cols if c not in index]
    if unknown:
        raise SplatFileError(f"{path.name} has no {', '.join(unknown)}.", code="splat.not_gaussians")
    uniform = all(dtype[name] == dtype[names[0]] for name in names)  # all float32 (or all float64)
    out = {g: np.empty(n if len(cols) == 1 else (n, len(cols)), np.float32) for g, cols in groups.items()}
    columns = [(out[g] if len(cols) == 1 else out[g][:, j], index[c], c, c in REQUIRED)  # destination, file index,
               for g, cols in groups.items() for j, c in enumerate(cols)]  # name, checked for NaN/inf
    workers = max(1, min(workers or min(4, os.cpu_count() or 1), n // _BLOCK_ROWS + 1))
    bounds = [n * k // workers for k in range(workers + 1)]
    truncated, not_finite = [], []

    def read_rows(first: int, last: int) -> None:
        with open(path, "rb") as f:
            f.seek(header["body_offset"] + first * dtype.itemsize)
            for start in range(first, last, _BLOCK_ROWS):
                rows = min(_BLOCK_ROWS, last - start)
                block = np.fromfile(f, dtype=dtype, count=rows)
                if block.shape[0] != rows:
                    truncated.append(start + block.shape[0])
                    return
                flat = block.view(dtype[names[0]]).reshape(rows, len(names)) if uniform else None
                for dst, i, name, check in columns:
                    dst[start:start + rows] = flat[:, i] if uniform else block[name]
                    if check and not np.isfinite(dst[start:start + rows]).all():
                        not_finite.append(start)

    if workers == 1:
        read_rows(0, n)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(read_rows, bounds[:-1], bounds[1:]))
    if truncated:
        raise SplatFileError(f"{path.name} is truncated at splat {min(truncated)}.", code="splat.ply_truncated")
    if not_finite:  # the exact count, only for the message
        bad = np.zeros(n, bool)
        for g, cols in groups.items():
            keep = [j for j, c in enumerate(cols) if c in REQUIRED]
            if keep:
                bad |= ~np.isfinite(out[g].reshape(n, -1)[:, keep]).all(1)
        raise SplatFileError(f"{path.name}: {int(bad.sum())} of {n} splats hold NaN or infinite values "
                             f"(first at splat {int(np.argmax(bad))}).", code="splat.not_finite")
    return out


def write_columns(path, columns: dict, props: list | None = None, fmt: str = "binary_little_endian") -> int:
    """Write {property: [N]} as a binary PLY vertex element, atomically; returns N.

    props: [(name, ply type)] in file order (default: every column as float, in dict order)."""
    props = [tuple(p) for p in props] if props is not None else [(name, "float") for name in columns]
    n = len(columns[props[0][0]])
    order = "<" if fmt == "binary_little_endian" else ">"
    table = np.empty(n, dtype=[(name, order + _PLY_TYPES[t]) for name, t in props])
    for name, _ in props:
        table[name] = columns[name]
    header = ["ply", f"format {fmt} 1.0", f"element vertex {n}"]
    header += [f"property {t} {name}" for name, t in props] + ["end_header"]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(("\n".join(header) + "\n").encode("ascii"))
            table.tofile(f)
    return n


def read_ply(path) -> dict:
    """Read a 3DGS PLY into a splat dict (float32 numpy arrays). Raises SplatFileError."""
    header = read_header(path)
    cols = read_columns(path, header)
    n = header["n"]
    k = (header["sh_degree"] + 1) ** 2

    def stack(*names):
        return np.stack([cols[c] for c in names], 1)

    sh = np.empty((n, k, 3), np.float32)
    sh[:, 0] = stack("f_dc_0", "f_dc_1", "f_dc_2")
    if k > 1:
        sh[:, 1:] = stack(*[f"f_rest_{j}" for j in range(3 * (k - 1))]).reshape(n, 3, k - 1).transpose(0, 2, 1)
    known = set(REQUIRED) | {f"f_rest_{j}" for j in range(3 * (k - 1))}
    return {"means": stack("x", "y", "z"), "quats": stack(*[f"rot_{i}" for i in range(4)]),
            "log_scales": stack(*[f"scale_{i}" for i in range(3)]), "opacity_logits": cols["opacity"],
            "sh": sh, "extra": {m: cols[m] for m in header["dtype"].names if m not in known}}


def sh_degree_of(splat: dict) -> int:
    return math.isqrt(np.shape(splat["sh"])[1]) - 1


def render_args(splat: dict, device="cpu", dtype=None) -> dict:
    """Splat dict → activated tensors for `rasterize` (means, quats (unit), scales, opacities, colors, sh_degree)."""
    import torch

    dtype = dtype or torch.float32

    def t(a):
        return torch.as_tensor(_np(a), dtype=dtype, device=device)

    quats = t(splat["quats"])
    return {"means": t(splat["means"]), "quats": quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12),
            "scales": torch.exp(t(splat["log_scales"])), "opacities": torch.sigmoid(t(splat["opacity_logits"])),
            "colors": t(splat["sh"]), "sh_degree": sh_degree_of(splat)}


def _np(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))
