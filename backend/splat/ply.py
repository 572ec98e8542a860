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
    table = np.empty(n, dtype=[(name, "<f4") for name in columns])
    for name, v in columns.items():
        table[name] = v
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property float {name}" for name in columns] + ["end_header"]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(("\n".join(header) + "\n").encode("ascii"))
            f.write(table.tobytes())


def read_ply(path) -> dict:
    """Read a 3DGS PLY into a splat dict (float32 numpy arrays). Raises SplatFileError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SplatFileError(f"Cannot read splat file {path}: {e}", code="splat.ply_missing") from e
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise SplatFileError(f"{path.name} is not a PLY file.")
    body_start = data.index(b"\n", end) + 1
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    fmt, elements = None, []
    for line in lines[1:]:
        parts = line.split()
        if not parts or parts[0] in ("comment", "obj_info"):
            continue
        if parts[0] == "format":
            fmt = parts[1]
        elif parts[0] == "element":
            elements.append([parts[1], int(parts[2]), []])
        elif parts[0] == "property" and elements:
            if parts[1] == "list":
                raise SplatFileError(f"{path.name}: list properties are not part of a 3DGS PLY.")
            if parts[1] not in _PLY_TYPES:
                raise SplatFileError(f"{path.name}: unknown property type {parts[1]!r}.")
            elements[-1][2].append((parts[2], _PLY_TYPES[parts[1]]))
    if fmt not in ("binary_little_endian", "binary_big_endian"):
        raise SplatFileError(f"{path.name}: PLY format {fmt!r} is not supported (binary PLYs only).")
    if not elements or elements[0][0] != "vertex":
        raise SplatFileError(f"{path.name}: the first element must be 'vertex'.")
    _, n, props = elements[0]
    order = "<" if fmt == "binary_little_endian" else ">"
    dtype = np.dtype([(name, order + t) for name, t in props])
    if len(data) - body_start < n * dtype.itemsize:
        raise SplatFileError(f"{path.name} is truncated: {n} vertices need {n * dtype.itemsize} bytes, "
                             f"the file holds {len(data) - body_start}.", code="splat.ply_truncated")
    table = np.frombuffer(data, dtype=dtype, count=n, offset=body_start)
    names = set(dtype.names)
    needed = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity"] + [f"scale_{i}" for i in range(3)] + \
        [f"rot_{i}" for i in range(4)]
    missing = [m for m in needed if m not in names]
    if missing:
        raise SplatFileError(f"{path.name} is not a 3DGS splat: missing {', '.join(missing)}.",
                             code="splat.not_gaussians")
    n_rest = sum(1 for m in names if m.startswith("f_rest_"))
    k = 1 + n_rest // 3
    if n_rest % 3 or math.isqrt(k) ** 2 != k or any(f"f_rest_{j}" not in names for j in range(n_rest)):
        raise SplatFileError(f"{path.name}: {n_rest} f_rest properties do not form SH coefficients.",
                             code="splat.not_gaussians")

    def col(*cols):
        return np.stack([table[c].astype(np.float32) for c in cols], 1)

    sh = np.empty((n, k, 3), np.float32)
    sh[:, 0] = col("f_dc_0", "f_dc_1", "f_dc_2")
    if k > 1:
        sh[:, 1:] = col(*[f"f_rest_{j}" for j in range(n_rest)]).reshape(n, 3, k - 1).transpose(0, 2, 1)
    known = set(needed) | {f"f_rest_{j}" for j in range(n_rest)}
    return {"means": col("x", "y", "z"), "quats": col(*[f"rot_{i}" for i in range(4)]),
            "log_scales": col(*[f"scale_{i}" for i in range(3)]), "opacity_logits": table["opacity"].astype(np.float32),
            "sh": sh, "extra": {m: table[m].astype(np.float32) for m in dtype.names if m not in known}}


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
