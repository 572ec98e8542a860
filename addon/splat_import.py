"""3DGS PLY ⇄ a Blender mesh of points that keeps the standard attribute names.

Reading is numpy only (no per-splat Python): the body is read in row blocks and split into one float32 column
per PLY property, each handed to Blender with one `foreach_set`. Two derived point attributes drive the
drawing (see `splat_material.py`):
    hf_quad_rot    QUATERNION  the Gaussian's rotation with its axes re-ordered by decreasing scale, so the
                               quad lies in the plane of the two largest axes (local Z = the smallest)
    hf_quad_scale  FLOAT_VECTOR  QUAD_EXTENT · σ along those axes (σ = exp(scale_i)), Z clamped away from 0
Everything else (x y z → position, f_dc_*, f_rest_*, opacity, scale_*, rot_*, any extra float property) is
stored under its PLY name, and the file's property list is kept on the object, so `write_splat_ply` writes
an unedited splat back byte for byte.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import bpy
import numpy as np

from ..backend.splat.ply import SplatFileError
from ..backend.fileio import atomic_path

QUAD_EXTENT = 3.0  # quad half-size in standard deviations (exp(-0.5·3²) = 1.1 %: below gsplat's 1/255 cut)
MIN_THICKNESS = 1e-3  # smallest axis kept ≥ this fraction of the largest (a singular instance matrix breaks shading)
PROP_KEY = "headforge_splat"  # object custom property: JSON with the PLY layout and import facts
REQUIRED = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
            "rot_0", "rot_1", "rot_2", "rot_3")
_PLY_TYPES = {"float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "uchar": "u1", "uint8": "u1",
              "char": "i1", "int8": "i1", "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
              "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4"}
_BLOCK_ROWS = 4096  # 1 MB blocks of a 62-float file: the transposed copy stays in cache


def read_header(path: Path) -> dict:
    """Parse a binary PLY header → {format, n, props [(name, ply type)], dtype, body_offset}. Raises SplatFileError."""
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


def read_columns(path: Path, header: dict) -> dict[str, np.ndarray]:
    """The vertex body as {property: float32 [N]}, read in 1 MB row blocks, each transposed in cache and
    spread over the columns. Separate column arrays let the importer free each once Blender has it, so the
    peak stays near one copy of the body. Raises SplatFileError on NaN/inf in the Gaussian parameters."""
    n, dtype = header["n"], header["dtype"]
    names = dtype.names
    uniform = all(dtype[name] == dtype[names[0]] for name in names)  # all float32 (or all float64)
    columns = [np.empty(n, np.float32) for _ in names]
    with open(path, "rb") as f:
        f.seek(header["body_offset"])
        for start in range(0, n, _BLOCK_ROWS):
            rows = min(_BLOCK_ROWS, n - start)
            block = np.fromfile(f, dtype=dtype, count=rows)
            if block.shape[0] != rows:
                raise SplatFileError(f"{path.name} is truncated at splat {start + block.shape[0]}.",
                                     code="splat.ply_truncated")
            if uniform:
                bt = np.ascontiguousarray(block.view(dtype[names[0]]).reshape(rows, len(names)).T)
                for col, row in zip(columns, bt):
                    col[start:start + rows] = row
            else:
                for col, name in zip(columns, names):
                    col[start:start + rows] = block[name]
    cols = dict(zip(names, columns))
    if not all(np.isfinite(cols[r]).all() for r in REQUIRED):  # one contiguous pass per column
        bad = ~np.logical_and.reduce([np.isfinite(cols[r]) for r in REQUIRED])
        raise SplatFileError(f"{path.name}: {int(bad.sum())} of {n} splats hold NaN or infinite values "
                             f"(first at splat {int(np.argmax(bad))}).", code="splat.not_finite")
    return cols


# Rotations that permute the local axes (X, Y, ±Z) → quaternion (w, x, y, z); keyed by the axis order.
def _perm_quats() -> dict[tuple, np.ndarray]:
    out = {}
    for order in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        P = np.zeros((3, 3))
        for col, axis in enumerate(order):
            P[axis, col] = 1.0
        P[:, 2] *= np.linalg.det(P)  # keep it a rotation
        out[order] = _matrix_to_quat(P[None])[0]
    return out


def _matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (M, 3, 3) → unit quaternions (M, 4) wxyz (few matrices: a plain branchy version)."""
    out = np.empty((len(R), 4))
    for i, m in enumerate(R):
        t = np.trace(m)
        if t > 0:
            s = 2.0 * math.sqrt(t + 1.0)
            q = (0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s)
        else:
            j = int(np.argmax(np.diag(m)))
            a, b = (j + 1) % 3, (j + 2) % 3
            s = 2.0 * math.sqrt(1.0 + m[j, j] - m[a, a] - m[b, b])
            v = [0.0, 0.0, 0.0]
            v[j], v[a], v[b] = 0.25 * s, (m[a, j] + m[j, a]) / s, (m[b, j] + m[j, b]) / s
            q = ((m[b, a] - m[a, b]) / s, *v)
        out[i] = q
    return out


def quad_frames(rot: np.ndarray, log_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-splat quad rotation [N, 4] wxyz and scale [N, 3]: axes sorted by decreasing σ, Z the thinnest.

    rot [4, N] (w, x, y, z rows, as stored), log_scale [3, N]: column-wise so every step is a contiguous pass."""
    w, x, y, z = rot
    inv = 1.0 / np.maximum(np.sqrt(w * w + x * x + y * y + z * z), 1e-20)
    s0, s1, s2 = np.exp(log_scale)
    # The decreasing order of three values from three comparisons: code → permutation (ties keep file order).
    code = (s0 < s1).astype(np.int8) + 2 * (s0 < s2) + 4 * (s1 < s2)
    perms = _perm_quats()
    table = np.zeros((4, 8), np.float32)
    for c, perm in _ORDER_OF_CODE.items():
        table[:, c] = perms[perm]
    bw, bx, by, bz = (t[code] for t in table)
    q = np.empty((len(w), 4), np.float32)
    q[:, 0] = (w * bw - x * bx - y * by - z * bz) * inv
    q[:, 1] = (w * bx + x * bw + y * bz - z * by) * inv
    q[:, 2] = (w * by - x * bz + y * bw + z * bx) * inv
    q[:, 3] = (w * bz + x * by - y * bx + z * bw) * inv
    s_max, s_min = np.maximum(np.maximum(s0, s1), s2), np.minimum(np.minimum(s0, s1), s2)
    scale = np.empty((len(w), 3), np.float32)
    scale[:, 0] = QUAD_EXTENT * s_max
    scale[:, 1] = QUAD_EXTENT * (s0 + s1 + s2 - s_max - s_min)
    scale[:, 2] = QUAD_EXTENT * np.maximum(s_min, MIN_THICKNESS * s_max)
    return q, scale


# code = [s0<s1] + 2[s0<s2] + 4[s1<s2] → axes in decreasing σ (codes 2 and 5 cannot happen).
_ORDER_OF_CODE = {0: (0, 1, 2), 1: (1, 0, 2), 3: (1, 2, 0), 4: (0, 2, 1), 6: (2, 0, 1), 7: (2, 1, 0)}


def import_splat(path, *, name: str | None = None, collection=None, max_preview: int = 200_000,
                 colour: str = "SH0", render_method: str = "DITHERED") -> bpy.types.Object:
    """Read a 3DGS PLY and create the splat object (points + Geometry Nodes quads + splat material).

    colour: "SH0" (degree-0 colour) or "SH" (view-dependent, up to the file's degree).
    render_method: EEVEE's "DITHERED" (default) or "BLENDED" (sorted, higher quality).
    """
    from . import splat_material

    t0 = time.perf_counter()
    path = Path(path)
    header = read_header(path)
    cols = read_columns(path, header)  # everything is validated before any Blender data is made
    n = header["n"]
    quad_rot, quad_scale = quad_frames([cols[f"rot_{i}"] for i in range(4)], [cols[f"scale_{i}"] for i in range(3)])
    t_read = time.perf_counter()

    name = name or path.stem
    me = bpy.data.meshes.new(name)
    me.vertices.add(n)
    me.attributes["position"].data.foreach_set("vector", np.stack([cols.pop("x"), cols.pop("y"), cols.pop("z")],
                                                                   1).ravel())
    for prop in header["dtype"].names:
        if prop in ("x", "y", "z"):
            continue
        me.attributes.new(prop, "FLOAT", "POINT").data.foreach_set("value", cols.pop(prop))
    me.attributes.new("hf_quad_rot", "QUATERNION", "POINT").data.foreach_set("value", quad_rot.ravel())
    me.attributes.new("hf_quad_scale", "FLOAT_VECTOR", "POINT").data.foreach_set("vector", quad_scale.ravel())
    del quad_rot, quad_scale
    me.update()

    ob = bpy.data.objects.new(name, me)
    (collection or bpy.context.collection).objects.link(ob)
    ob[PROP_KEY] = json.dumps({"source": str(path.resolve()), "format": header["format"],
                               "properties": header["props"], "count": n, "sh_degree": header["sh_degree"]})
    sh_degree = header["sh_degree"] if colour == "SH" else 0
    mat = splat_material.splat_material(sh_degree, render_method, (header["sh_degree"] + 1) ** 2 - 1)
    me.materials.append(mat)
    splat_material.add_splat_modifier(ob, mat, max_preview)
    ob.visible_shadow = False  # splats carry baked radiance: they neither cast nor take light
    ob["headforge_import_seconds"] = {"read": round(t_read - t0, 3), "total": round(time.perf_counter() - t0, 3)}
    return ob


def splat_info(ob) -> dict | None:
    """The stored PLY layout of a splat object (None for other objects)."""
    raw = ob.get(PROP_KEY) if ob is not None else None
    return json.loads(raw) if raw else None


def write_splat_ply(ob, path) -> int:
    """Write a splat object back as a 3DGS PLY in its file's property order and types; returns the count.

    Unedited splats come back byte for byte; points added or deleted in Blender are written as they are.
    """
    info = splat_info(ob)
    if info is None:
        raise SplatFileError(f"{ob.name} is not a HeadForge splat (import a PLY first).", code="splat.not_a_splat")
    me = ob.data
    n = len(me.vertices)
    if n == 0:
        raise SplatFileError(f"{ob.name} holds no splats.", code="splat.empty")
    order = "<" if info["format"] == "binary_little_endian" else ">"
    props = [tuple(p) for p in info["properties"]]
    table = np.empty(n, dtype=[(p, order + _PLY_TYPES[t]) for p, t in props])
    pos = np.empty(n * 3, np.float32)
    me.attributes["position"].data.foreach_get("vector", pos)
    pos = pos.reshape(n, 3)
    buf = np.empty(n, np.float32)
    for i, axis in enumerate("xyz"):
        table[axis] = pos[:, i]
    for p, _ in props:
        if p in ("x", "y", "z"):
            continue
        attr = me.attributes.get(p)
        if attr is None or attr.domain != "POINT" or attr.data_type != "FLOAT":
            raise SplatFileError(f"{ob.name} lost its {p!r} attribute; cannot write a 3DGS PLY.",
                                 code="splat.attribute_missing")
        attr.data.foreach_get("value", buf)
        table[p] = buf
    header = ["ply", f"format {info['format']} 1.0", f"element vertex {n}"]
    header += [f"property {t} {p}" for p, t in props] + ["end_header"]
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(("\n".join(header) + "\n").encode("ascii"))
            table.tofile(f)
    return n
