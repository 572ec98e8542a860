"""Morph-weight animations of glTF files (what ARKit capture apps export, e.g. three.js' facecap asset) as Takes.

The weights channel of a mesh node with ARKit-named morph targets (`extras.targetNames`, matched ignoring case
and `_L`/`_R` aliases) gives the weights; a rotation channel on an ancestor of that node gives the head rotation
and rotation channels on nodes named like `eyeLeft` / `eyeRight` the eyes. Rotations are taken relative to the
capture frame (the node's parent), expressed in our world axes (glTF +Y up, front +Z → world +Z up, front −Y).
Pure Python: the GLB/glTF container and accessors are read here (no bpy).
"""
from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import numpy as np

from ..headmodel.arkit import ARKIT_52, ict_to_arkit_name
from ..headmodel.frames import YUP_TO_WORLD
from . import meshopt
from .take import AnimationError, Take, matrix_to_euler

_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_LOWER = {n.lower(): n for n in ARKIT_52}
_LEFT = re.compile(r"(left|_l$|\.l$|_l_)", re.I)
_RIGHT = re.compile(r"(right|_r$|\.r$|_r_)", re.I)


def _arkit(name: str) -> str | None:
    n = _LOWER.get(name.lower())
    if n:
        return n
    alias = ict_to_arkit_name(name)
    return alias if alias in ARKIT_52 else _LOWER.get(name.lower().replace("_", ""))


class _Gltf:
    def __init__(self, path: Path):
        self.path = path
        try:
            data = path.read_bytes()
        except OSError as e:
            raise AnimationError(f"{path.name} cannot be read ({e}).", code="animate.gltf_unreadable") from e
        self.bin = None
        try:
            if data[:4] == b"glTF":
                length = struct.unpack_from("<I", data, 8)[0]
                if length > len(data):
                    raise ValueError(f"truncated: {len(data)} of {length} bytes")
                jl, jt = struct.unpack_from("<II", data, 12)
                if jt != 0x4E4F534A:
                    raise ValueError("first chunk is not JSON")
                self.json = json.loads(data[20:20 + jl])
                off = 20 + jl
                if off + 8 <= len(data):
                    bl, bt = struct.unpack_from("<II", data, off)
                    if bt == 0x004E4942:
                        self.bin = data[off + 8:off + 8 + bl]
                        if len(self.bin) < bl:
                            raise ValueError("binary chunk truncated")
            else:
                self.json = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, struct.error) as e:
            raise AnimationError(f"{path.name} is not a valid glTF/GLB file ({e}).",
                                 code="animate.gltf_unreadable") from e
        self._buffers: dict[int, bytes] = {}

    def buffer(self, i: int) -> bytes:
        if i not in self._buffers:
            b = self.json["buffers"][i]
            uri = b.get("uri")
            if uri is None:
                if self.bin is None:
                    raise AnimationError(f"{self.path.name}: buffer {i} has no data.", code="animate.gltf_unreadable")
                self._buffers[i] = self.bin
            elif uri.startswith("data:"):
                self._buffers[i] = base64.b64decode(uri.split(",", 1)[1])
            else:
                try:
                    self._buffers[i] = (self.path.parent / uri).read_bytes()
                except OSError as e:
                    raise AnimationError(f"{self.path.name}: its buffer {uri} cannot be read ({e}).",
                                         code="animate.gltf_unreadable") from e
        return self._buffers[i]

    def accessor(self, i: int) -> np.ndarray:
        a = self.json["accessors"][i]
        if "sparse" in a or "bufferView" not in a:
            raise AnimationError(f"{self.path.name}: sparse or empty animation accessors are not supported.",
                                 code="animate.gltf_unsupported")
        bv = self.json["bufferViews"][a["bufferView"]]
        dt = np.dtype(_DTYPES[a["componentType"]]).newbyteorder("<")
        nc = _NCOMP[a["type"]]
        count = a["count"]
        ext = bv.get("extensions", {}).get("EXT_meshopt_compression")
        if ext is not None:
            buf = self._decoded(a["bufferView"], ext)
            start, stride = a.get("byteOffset", 0), ext["byteStride"]
        else:
            buf = self.buffer(bv["buffer"])
            start = bv.get("byteOffset", 0) + a.get("byteOffset", 0)
            stride = bv.get("byteStride") or dt.itemsize * nc
        need = start + stride * (count - 1) + dt.itemsize * nc if count else start
        if need > len(buf):
            raise AnimationError(f"{self.path.name}: accessor {i} reaches past its buffer (a truncated file).",
                                 code="animate.gltf_unreadable")
        rows = np.ndarray((count, nc), dt, buf, start, (stride, dt.itemsize)).astype(np.float64)
        if a.get("normalized"):
            rows = {np.int8: lambda x: np.maximum(x / 127, -1), np.uint8: lambda x: x / 255,
                    np.int16: lambda x: np.maximum(x / 32767, -1), np.uint16: lambda x: x / 65535}[dt.type](rows)
        return rows

    def _decoded(self, view: int, ext: dict) -> bytes:
        key = -1 - view
        if key not in self._buffers:
            try:
                self._buffers[key] = meshopt.decode_buffer_view(ext, self.buffer(ext["buffer"]))
            except meshopt.MeshoptError as e:
                raise AnimationError(f"{self.path.name}: its meshopt-compressed buffer view {view} cannot be "
                                     f"decoded ({e}).", code="animate.gltf_unreadable") from e
        return self._buffers[key]

    def parents(self) -> dict[int, int]:
        return {c: i for i, n in enumerate(self.json.get("nodes", [])) for c in n.get("children", [])}

    def node_matrix(self, i: int) -> np.ndarray:
        n = self.json["nodes"][i]
        if "matrix" in n:
            return np.array(n["matrix"], np.float64).reshape(4, 4).T
        from scipy.spatial.transform import Rotation

        M = np.eye(4)
        R = Rotation.from_quat(n.get("rotation", [0, 0, 0, 1])).as_matrix()
        M[:3, :3] = R * np.array(n.get("scale", [1, 1, 1]))
        M[:3, 3] = n.get("translation", [0, 0, 0])
        return M


def _sample(times: np.ndarray, values: np.ndarray, interp: str, t: np.ndarray) -> np.ndarray:
    """Values (len(times), C) at t; CUBICSPLINE keeps the keyframe values (in-tangent, value, out-tangent)."""
    if interp == "CUBICSPLINE":
        values = values.reshape(len(times), 3, -1)[:, 1]
    if interp == "STEP":
        idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 1)
        return values[idx]
    return np.stack([np.interp(t, times, values[:, c]) for c in range(values.shape[1])], axis=1)


def read_gltf_take(path, animation: int | str | None = None) -> Take:
    """The morph-weight animation (and head/eye rotations) of a glTF/GLB as a Take at its own key times.

    `animation`: index or name of one glTF animation; None takes every animation (capture apps often write one
    per node, all of the same take). Raises AnimationError (animate.gltf_unreadable / gltf_no_animation /
    gltf_no_arkit / gltf_unsupported)."""
    path = Path(path)
    g = _Gltf(path)
    anims = g.json.get("animations", [])
    if animation is not None:
        sel = [a for i, a in enumerate(anims) if animation in (i, a.get("name"))]
        if not sel:
            raise AnimationError(f"{path.name} has no animation {animation!r}.", code="animate.gltf_no_animation")
        anims = sel
    nodes = g.json.get("nodes", [])
    weight_ch, rot_ch = [], {}
    for a in anims:
        for ch in a.get("channels", []):
            tgt = ch.get("target", {})
            if "node" not in tgt:
                continue
            s = a["samplers"][ch["sampler"]]
            if tgt.get("path") == "weights" and "mesh" in nodes[tgt["node"]]:
                weight_ch.append((tgt["node"], s))
            elif tgt.get("path") == "rotation":
                rot_ch[tgt["node"]] = s
    if not weight_ch:
        raise AnimationError(f"{path.name} has no morph-weight animation.", code="animate.gltf_no_animation")
    # the mesh whose morph targets carry the most ARKit names
    best = None
    for node, s in weight_ch:
        mesh = g.json["meshes"][nodes[node]["mesh"]]
        names = (mesh.get("extras") or {}).get("targetNames") or []
        mapped = [_arkit(str(n)) for n in names]
        score = len(set(mapped) - {None})
        if best is None or score > best[0]:
            best = (score, node, s, names, mapped)
    score, node, s, names, mapped = best
    if score == 0:
        raise AnimationError(f"{path.name}: the animated morph targets have no ARKit names.",
                             code="animate.gltf_no_arkit", hint="Names come from the mesh's extras.targetNames.")
    times = g.accessor(s["input"])[:, 0]
    vals = g.accessor(s["output"]).reshape(-1)
    interp = s.get("interpolation", "LINEAR")
    n_t = len(names)
    per_key = 3 * n_t if interp == "CUBICSPLINE" else n_t
    if len(vals) != len(times) * per_key:
        raise AnimationError(f"{path.name}: {len(vals)} weights for {len(times)} keys × {n_t} targets.",
                             code="animate.gltf_unreadable")
    vals = vals.reshape(len(times), per_key)
    if interp == "CUBICSPLINE":
        vals = vals.reshape(len(times), 3, n_t)[:, 1]
    if np.any(np.diff(times) <= 0) or not np.isfinite(vals).all():
        raise AnimationError(f"{path.name}: key times do not increase or weights are not finite.",
                             code="animate.gltf_unreadable")
    cols = [(i, m) for i, m in enumerate(mapped) if m is not None]
    uniq = {}
    for i, m in cols:
        uniq.setdefault(m, []).append(i)
    out_names = tuple(n for n in ARKIT_52 if n in uniq)
    weights = np.stack([vals[:, uniq[n]].mean(axis=1) for n in out_names], axis=1)
    # rotations: the head is an animated ancestor of the mesh node, the eyes are named
    parents = g.parents()
    ancestors, p = [], node
    while p in parents:
        p = parents[p]
        ancestors.append(p)
    head_node = next((a for a in ancestors if a in rot_ch), None)
    if head_node is None:  # a skeleton: the joint named `head`
        head_node = next((n for n in rot_ch if str(nodes[n].get("name", "")).lower() == "head"), None)
    eye_nodes = {}
    for n_idx in sorted(rot_ch):
        nm = str(nodes[n_idx].get("name", ""))
        if "eye" in nm.lower() and n_idx != head_node:
            side = "eye_left" if _LEFT.search(nm) else "eye_right" if _RIGHT.search(nm) else None
            if side and side not in eye_nodes:
                eye_nodes[side] = n_idx
    joints = {j for skin in g.json.get("skins", []) for j in skin.get("joints", [])}
    rot = {}
    for key, n_idx in [("head", head_node)] + list(eye_nodes.items()):
        if n_idx is None:
            continue
        rot[key] = _rotation_track(g, n_idx, rot_ch[n_idx], parents, times, joint=n_idx in joints)
    t0 = times[0]
    dt = np.median(np.diff(times)) if len(times) > 1 else 1 / 30
    fps = float(np.round(1.0 / dt, 3))
    return Take(times=times - t0, names=out_names, weights=weights, fps=fps, name=path.stem,
                info={"format": "gltf", "source": str(path), "first_key_s": float(t0),
                      "unmatched_targets": [str(names[i]) for i, m in enumerate(mapped) if m is None]}, **rot)


def _world_rot(g: _Gltf, n_idx: int, parents) -> np.ndarray:
    M = np.eye(3)
    p = n_idx
    chain = []
    while p is not None:
        chain.append(p)
        p = parents.get(p)
    for p in reversed(chain):
        R = g.node_matrix(p)[:3, :3]
        R = R / np.linalg.norm(R, axis=0)
        M = M @ R
    return M


def _rotation_track(g: _Gltf, n_idx: int, sampler, parents, times, joint: bool = False) -> np.ndarray:
    """(T, 3) yaw/pitch/roll of a node's animated rotation about its parent's axes, in world axes. A skin joint's
    rotation is taken relative to its rest (bind) rotation, the node's static one; a capture's transform node
    (no skin) has none: its animated rotation is the head's."""
    from scipy.spatial.transform import Rotation

    t = g.accessor(sampler["input"])[:, 0]
    q = _sample(t, g.accessor(sampler["output"]), sampler.get("interpolation", "LINEAR"), times)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    R_local = Rotation.from_quat(q).as_matrix()  # (T, 3, 3) about the parent's axes
    if joint:
        rest = g.node_matrix(n_idx)[:3, :3]
        R_local = R_local @ (rest / np.linalg.norm(rest, axis=0)).T
    P = _world_rot(g, parents[n_idx], parents) if n_idx in parents else np.eye(3)
    C = YUP_TO_WORLD @ P  # parent axes → world axes
    R_world = np.einsum("ij,tjk,lk->til", C, R_local, C)
    return matrix_to_euler(R_world)
