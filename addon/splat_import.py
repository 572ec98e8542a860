"""3DGS PLY ⇄ Blender, through the one PLY reader (`backend/splat/ply.py`: numpy only, no per-splat Python).

Two ways to draw the splat, chosen by what the running Blender offers (`method="AUTO"`):

NATIVE (Blender ≥ 5.3): a POINTCLOUD of type GAUSSIAN_SPLAT, the layout Blender's own `wm.ply_import` makes and
Cycles, EEVEE and Workbench render: `position`, `scale` = exp(scale_i), `rotation` = the unit quaternion,
`radiance:base` FLOAT4 = (f_dc_0, f_dc_1, f_dc_2, sigmoid(opacity)), `radiance:sh_{k}` = (f_rest_k,
f_rest_{K−1+k}, f_rest_{2(K−1)+k}) for k < K−1, K = (degree + 1)². The file's own logit, log-scale and
quaternion are kept beside them (`hf_opacity`, `hf_log_scale`, `hf_rot`) so that an unedited splat writes back
byte for byte; any other float property is kept under its PLY name.

QUADS (Blender 4.2–5.2): a mesh of points drawn by a Geometry Nodes modifier instancing one quad per Gaussian
with the splat material (`splat_material.py`). Two derived point attributes place the quads:
    hf_quad_rot    QUATERNION  the Gaussian's rotation with its axes re-ordered by decreasing scale, so the
                               quad lies in the plane of the two largest axes (local Z = the smallest)
    hf_quad_scale  FLOAT_VECTOR  QUAD_EXTENT · σ along those axes (σ = exp(scale_i)), Z clamped away from 0
Everything else (x y z → position, f_dc_*, f_rest_*, opacity, scale_*, rot_*, any extra float property) is
stored under its PLY name.

Either way the file's property list is kept on the object, so `write_splat_ply` writes an unedited splat back
byte for byte. Any failure while building removes everything the import made and raises a HeadForgeError.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import bpy
import numpy as np

from ..backend.errors import HeadForgeError
from ..backend.splat.ply import SplatFileError, read_columns, read_groups, read_header, write_columns

QUAD_EXTENT = 3.0  # quad half-size in standard deviations (exp(-0.5·3²) = 1.1 %: below gsplat's 1/255 cut)
MIN_THICKNESS = 1e-3  # smallest axis kept ≥ this fraction of the largest (a singular instance matrix breaks shading)
PROP_KEY = "headforge_splat"  # object custom property: JSON with the PLY layout and import facts
METHODS = ("AUTO", "NATIVE", "QUADS")
RAW = {"opacity": "hf_opacity", "scale": "hf_log_scale", "rot": "hf_rot"}  # the file's values beside native ones


class SplatImportError(HeadForgeError):
    """Blender could not build the splat object (the file itself was fine)."""

    code = "splat.import_failed"


def native_splats_available() -> bool:
    """Whether this Blender has Gaussian splat point clouds (5.3 and later)."""
    prop = bpy.types.PointCloud.bl_rna.properties.get("type")
    return prop is not None and "GAUSSIAN_SPLAT" in prop.enum_items.keys()


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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _unit_quats(q: np.ndarray) -> np.ndarray:
    """[N, 4] float32 → unit quaternions, in place (a zero quaternion becomes the identity)."""
    norm = np.sqrt(np.einsum("ij,ij->i", q, q))
    zero = ~(norm > 1e-20)
    norm[zero] = 1.0
    q /= norm[:, None]
    q[zero] = (1.0, 0.0, 0.0, 0.0)
    return q


def _set(data, attr_name, kind, values, key) -> None:
    data.attributes.new(attr_name, kind, "POINT").data.foreach_set(key, np.ascontiguousarray(values).ravel())


def _stack(cols: dict, names) -> np.ndarray:
    out = np.empty((len(cols[names[0]]), len(names)), np.float32)
    for i, name in enumerate(names):
        out[:, i] = cols.pop(name)
    return out


def _sh_rest(sh_degree: int) -> list[list[str]]:
    """[[f_rest_k, f_rest_{K−1+k}, f_rest_{2(K−1)+k}] for each higher SH coefficient k] (channel-major file)."""
    per = (sh_degree + 1) ** 2 - 1
    return [[f"f_rest_{c * per + k}" for c in range(3)] for k in range(per)]


def _native_groups(header: dict) -> dict[str, list[str]]:
    """The PLY columns of each native attribute, in its component order."""
    groups = {"position": ["x", "y", "z"], "radiance:base": ["f_dc_0", "f_dc_1", "f_dc_2", "opacity"],
              RAW["scale"]: ["scale_0", "scale_1", "scale_2"], RAW["rot"]: ["rot_0", "rot_1", "rot_2", "rot_3"]}
    groups.update({f"radiance:sh_{k}": names for k, names in enumerate(_sh_rest(header["sh_degree"]))})
    known = {c for cols in groups.values() for c in cols}
    groups.update({p: [p] for p, _ in header["props"] if p not in known})  # nx ny nz, other float properties
    return groups


def _build_native(name: str, header: dict, groups: dict):
    """A GAUSSIAN_SPLAT point cloud in Blender's own attribute layout (see the module docstring) from
    `read_groups(…, _native_groups(header))`; the groups are consumed."""
    pc = bpy.data.pointclouds.new(name)
    pc.resize(header["n"])
    pc.type = "GAUSSIAN_SPLAT"
    pc.attributes["position"].data.foreach_set("vector", groups.pop("position").ravel())
    rgba = groups.pop("radiance:base")
    _set(pc, RAW["opacity"], "FLOAT", rgba[:, 3], "value")
    rgba[:, 3] = _sigmoid(rgba[:, 3])
    _set(pc, "radiance:base", "FLOAT4", rgba, "vector")
    del rgba
    log_scale = groups.pop(RAW["scale"])
    _set(pc, RAW["scale"], "FLOAT_VECTOR", log_scale, "vector")
    _set(pc, "scale", "FLOAT_VECTOR", np.exp(log_scale), "vector")
    del log_scale
    rot = groups.pop(RAW["rot"])
    _set(pc, RAW["rot"], "FLOAT4", rot, "vector")
    _set(pc, "rotation", "QUATERNION", _unit_quats(rot), "value")
    del rot
    for attr_name in list(groups):
        arr = groups.pop(attr_name)
        if arr.ndim == 1:
            _set(pc, attr_name, "FLOAT", arr, "value")
        else:
            _set(pc, attr_name, "FLOAT_VECTOR", arr, "vector")
    return pc


def _build_quads(name: str, header: dict, cols: dict, colour: str, render_method: str, max_preview: int):
    """A mesh of points drawn as Geometry Nodes quads with the splat material; returns (mesh, finish(ob))."""
    from . import splat_material

    quad_rot, quad_scale = quad_frames([cols[f"rot_{i}"] for i in range(4)], [cols[f"scale_{i}"] for i in range(3)])
    me = bpy.data.meshes.new(name)
    me.vertices.add(header["n"])
    me.attributes["position"].data.foreach_set("vector", _stack(cols, ("x", "y", "z")).ravel())
    for prop in list(cols):
        _set(me, prop, "FLOAT", cols.pop(prop), "value")
    _set(me, "hf_quad_rot", "QUATERNION", quad_rot, "value")
    _set(me, "hf_quad_scale", "FLOAT_VECTOR", quad_scale, "vector")
    del quad_rot, quad_scale
    me.update()

    def finish(ob):
        sh_degree = header["sh_degree"] if colour == "SH" else 0
        mat = splat_material.splat_material(sh_degree, render_method, (header["sh_degree"] + 1) ** 2 - 1)
        me.materials.append(mat)
        splat_material.add_splat_modifier(ob, mat, max_preview)
        ob.visible_shadow = False  # splats carry baked radiance: they neither cast nor take light

    return me, finish


def import_splat(path, *, name: str | None = None, collection=None, max_preview: int = 200_000,
                 colour: str = "SH0", render_method: str = "DITHERED", method: str = "AUTO") -> bpy.types.Object:
    """Read a 3DGS PLY and create the splat object; raises SplatFileError (bad file) or SplatImportError.

    method: "AUTO" (native Gaussian splats where Blender has them, else quads), "NATIVE" or "QUADS".
    Quads only: colour "SH0" (degree-0 colour) or "SH" (view-dependent, up to the file's degree);
    render_method EEVEE's "DITHERED" (default) or "BLENDED" (sorted); max_preview caps the viewport's splats.
    Native splats always carry the file's SH (Blender evaluates them) and the viewport draws them all.
    """
    t0 = time.perf_counter()
    path = Path(path)
    if method not in METHODS:
        raise SplatImportError(f"Unknown splat drawing method {method!r} (one of {', '.join(METHODS)}).",
                               code="splat.bad_method")
    native = native_splats_available()
    if method == "NATIVE" and not native:
        raise SplatImportError(f"Blender {bpy.app.version_string} has no native Gaussian splats (5.3 and later "
                               f"do); import them as quads instead.", code="splat.native_unavailable")
    native = native and method != "QUADS"
    header = read_header(path)
    # Everything is read and validated before any Blender data is made.
    cols = read_groups(path, header, _native_groups(header)) if native else read_columns(path, header)
    t_read = time.perf_counter()

    name = name or path.stem
    made = _Made()
    try:
        if native:
            data = _build_native(name, header, cols)
            finish = None
        else:
            data, finish = _build_quads(name, header, cols, colour, render_method, max_preview)
        ob = bpy.data.objects.new(name, data)
        (collection or bpy.context.collection).objects.link(ob)
        ob[PROP_KEY] = json.dumps({"source": str(path.resolve()), "format": header["format"],
                                   "properties": header["props"], "count": header["n"],
                                   "sh_degree": header["sh_degree"], "method": "NATIVE" if native else "QUADS"})
        if finish is not None:
            finish(ob)
        ob["headforge_import_seconds"] = {"read": round(t_read - t0, 3), "total": round(time.perf_counter() - t0, 3)}
    except Exception as e:
        made.remove()
        if isinstance(e, HeadForgeError):
            raise
        raise SplatImportError(f"Blender could not build the splat from {path.name} ({type(e).__name__}: {e}); "
                               f"nothing was added to the scene.") from e
    return ob


class _Made:
    """The data-blocks an import adds, found by difference, so that a failure can remove them all."""

    KINDS = ("objects", "meshes", "pointclouds", "materials", "node_groups")

    def __init__(self):
        self.before = {k: set(getattr(bpy.data, k)) for k in self.KINDS}

    def remove(self) -> None:
        for kind in self.KINDS:  # objects first: they use the rest
            coll = getattr(bpy.data, kind)
            for block in [b for b in coll if b not in self.before[kind]]:
                coll.remove(block)


def is_native_splat(ob) -> bool:
    return ob is not None and ob.type == "POINTCLOUD" and getattr(ob.data, "type", "") == "GAUSSIAN_SPLAT"


def splat_info(ob) -> dict | None:
    """The PLY layout of a splat object: the one stored at import, or for a native Gaussian splat made
    elsewhere (Blender's own PLY importer) the standard 3DGS layout of its attributes. None for other objects."""
    raw = ob.get(PROP_KEY) if ob is not None else None
    if raw:
        return json.loads(raw)
    if not is_native_splat(ob):
        return None
    k = 1 + sum(1 for a in ob.data.attributes if a.name.startswith("radiance:sh_"))
    degree = math.isqrt(k) - 1
    props = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", *(f"f_rest_{j}" for j in range(3 * ((degree + 1) ** 2 - 1))),
             "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    return {"format": "binary_little_endian", "properties": [(p, "float") for p in props],
            "count": len(ob.data.points), "sh_degree": degree, "method": "NATIVE"}


def _get(data, attr_name: str, width: int, where: str) -> np.ndarray:
    attr = data.attributes.get(attr_name)
    if attr is None or attr.domain != "POINT":
        raise SplatFileError(f"{where} lost its {attr_name!r} attribute; cannot write a 3DGS PLY.",
                             code="splat.attribute_missing")
    n = len(attr.data)
    out = np.empty(n * width, np.float32)
    key = {"FLOAT": "value", "QUATERNION": "value"}.get(attr.data_type, "vector")
    if attr.data_type == "FLOAT_COLOR":
        key = "color"
    if (1 if attr.data_type == "FLOAT" else 4 if attr.data_type in ("QUATERNION", "FLOAT4", "FLOAT_COLOR")
            else 3) != width:
        raise SplatFileError(f"{where}: attribute {attr_name!r} is {attr.data_type}, not a 3DGS value.",
                             code="splat.attribute_missing")
    attr.data.foreach_get(key, out)
    return out.reshape(n, width) if width > 1 else out


def _native_columns(ob, info: dict) -> dict[str, np.ndarray]:
    """The PLY columns of a native splat: the file's own values where the native ones are unedited."""
    pc, where = ob.data, ob.name
    cols = dict(zip("xyz", _get(pc, "position", 3, where).T))
    base = _get(pc, "radiance:base", 4, where)
    cols.update({f"f_dc_{c}": base[:, c] for c in range(3)})
    alpha = np.clip(base[:, 3], 1e-7, 1 - 1e-7)
    logit = np.log(alpha / (1 - alpha)).astype(np.float32)
    scale = _get(pc, "scale", 3, where)
    log_scale = np.log(np.maximum(scale, 1e-30)).astype(np.float32)
    rot = _get(pc, "rotation", 4, where)
    if pc.attributes.get(RAW["opacity"]) is not None:  # our import: keep the file's values where unchanged
        raw = _get(pc, RAW["opacity"], 1, where)
        logit = np.where(_sigmoid(raw) == base[:, 3], raw, logit)
    if pc.attributes.get(RAW["scale"]) is not None:
        raw = _get(pc, RAW["scale"], 3, where)
        log_scale = np.where(np.exp(raw) == scale, raw, log_scale)
    if pc.attributes.get(RAW["rot"]) is not None:
        raw = _get(pc, RAW["rot"], 4, where)
        rot = np.where((_unit_quats(raw.copy()) == rot).all(1, keepdims=True), raw, rot)
    cols["opacity"] = logit
    cols.update({f"scale_{i}": log_scale[:, i] for i in range(3)})
    cols.update({f"rot_{i}": rot[:, i] for i in range(4)})
    for k, names in enumerate(_sh_rest(info["sh_degree"])):
        sh = _get(pc, f"radiance:sh_{k}", 3, where)
        cols.update({name: sh[:, c] for c, name in enumerate(names)})
    for p, _ in info["properties"]:
        if p not in cols:
            cols[p] = _get(pc, p, 1, where)
    return cols


def write_splat_ply(ob, path) -> int:
    """Write a splat object (ours, either method, or any native Gaussian splat) as a 3DGS PLY in its file's
    property order and types; returns the count. Unedited splats come back byte for byte; points added or
    deleted in Blender are written as they are."""
    info = splat_info(ob)
    if info is None:
        raise SplatFileError(f"{ob.name if ob else 'Nothing'} is not a Gaussian splat (import a PLY first).",
                             code="splat.not_a_splat")
    if is_native_splat(ob):
        n = len(ob.data.points)
        cols = _native_columns(ob, info) if n else {}
    else:
        me = ob.data
        n = len(me.vertices)
        cols = dict(zip("xyz", _get(me, "position", 3, ob.name).T)) if n else {}
        for p, _ in info["properties"]:
            if n and p not in cols:
                cols[p] = _get(me, p, 1, ob.name)
    if n == 0:
        raise SplatFileError(f"{ob.name} holds no splats.", code="splat.empty")
    return write_columns(path, cols, info["properties"], info["format"])
