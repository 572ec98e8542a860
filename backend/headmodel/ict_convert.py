"""Convert ICT-FaceKit's upstream files (FaceXModel/*.obj + vertex_indices.json, MIT) once into the compact
`ict_face_light.npz` the rig stage reads (its arrays: `ict.REQUIRED`; units and axes: headmodel/ict.py).

    python -m headforge.backend.headmodel.ict_convert FOLDER_OR_ZIP OUT.npz

Quads are split (a, b, c, d) → (a, b, c), (a, c, d); positions stay in ICT's centimetres and axes (the loader
converts to the world frame). Region ranges are upstream's README tables ("Face Model Topology", "Face Area
Details", "Eyeball Details"), written half-open.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelMissingError
from ..fileio import atomic_path

EXPRESSION_NAMES = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R", "cheekPuff_L",
    "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R", "eyeLookDown_L", "eyeLookDown_R",
    "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R", "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L",
    "eyeSquint_R", "eyeWide_L", "eyeWide_R", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimple_L", "mouthDimple_R", "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft",
    "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L", "mouthSmile_R",
    "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R", "noseSneer_L", "noseSneer_R",
    "PupilDilate_L", "PupilDilate_R", "cheekRaiser_L", "cheekRaiser_R",
)
GROUPS = (  # name, [first vertex, end)
    ("face", 0, 9409), ("head_and_neck", 9409, 11248), ("mouth_socket", 11248, 13294),
    ("eye_socket_left", 13294, 13678), ("eye_socket_right", 13678, 14062), ("gums_and_tongue", 14062, 17039),
    ("teeth", 17039, 21451), ("eyeball_left", 21451, 23021), ("eyeball_right", 23021, 24591),
    ("lacrimal_fluid_left", 24591, 24795), ("lacrimal_fluid_right", 24795, 24999),
    ("eye_blend_left", 24999, 25023), ("eye_blend_right", 25023, 25047), ("eye_occlusion_left", 25047, 25199),
    ("eye_occlusion_right", 25199, 25351), ("eyelashes_left", 25351, 26035), ("eyelashes_right", 26035, 26719),
)
DETAILS = (("narrow_face_area", 0, 6706), ("sclera_left", 21451, 22221), ("iris_left", 22221, 23021),
           ("sclera_right", 23021, 23791), ("iris_right", 23791, 24591))


class _Source:
    """Files by basename from a folder (searched recursively) or a zip archive."""

    def __init__(self, path):
        self.path = Path(path)
        if self.path.is_file() and zipfile.is_zipfile(self.path):
            self.zip = zipfile.ZipFile(self.path)
            self.names = {Path(n).name: n for n in self.zip.namelist() if not n.endswith("/")}
        else:
            self.zip = None
            self.names = {p.name: p for p in self.path.rglob("*") if p.is_file()}

    def has(self, name):
        return name in self.names

    def read(self, name) -> bytes:
        if name not in self.names:
            raise ModelMissingError(f"ICT-FaceKit file {name} is missing from {self.path}.",
                                    code="model.ict_incomplete")
        return self.zip.read(self.names[name]) if self.zip else Path(self.names[name]).read_bytes()


def parse_obj(data: bytes):
    """→ (v (V, 3) float64, vt (T, 2), faces [(v idx tuple, vt idx tuple, material)]) of an OBJ, 0-based."""
    v, vt, polys = [], [], []
    mat = ""
    for line in io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace"):
        if line.startswith("v "):
            v.append(line.split()[1:4])
        elif line.startswith("vt "):
            vt.append(line.split()[1:3])
        elif line.startswith("f "):
            corners = [c.split("/") for c in line.split()[1:]]
            polys.append((tuple(int(c[0]) - 1 for c in corners),
                          tuple(int(c[1]) - 1 if len(c) > 1 and c[1] else -1 for c in corners), mat))
        elif line.startswith("usemtl "):
            mat = line.split(maxsplit=1)[1].strip()
    return np.asarray(v, np.float64), np.asarray(vt, np.float64), polys


def _positions(data: bytes) -> np.ndarray:
    return np.asarray([ln.split()[1:4] for ln in data.decode("utf-8", "replace").splitlines() if ln.startswith("v ")],
                      np.float64)


def convert_ict(source, out_npz, n_identity: int = 100, require_all: bool = True) -> dict:
    """Read the upstream files from `source` (folder or zip) and write `out_npz`. Returns a summary."""
    src = _Source(source)
    neutral, uv, polys = parse_obj(src.read("generic_neutral_mesh.obj"))
    tris, tri_uv, tri_poly, tri_mat, mats = [], [], [], [], []
    for k, (vi, ti, mat) in enumerate(polys):
        if mat not in mats:
            mats.append(mat)
        for j in range(1, len(vi) - 1):
            tris.append((vi[0], vi[j], vi[j + 1]))
            tri_uv.append((ti[0], ti[j], ti[j + 1]))
            tri_poly.append(k)
            tri_mat.append(mats.index(mat))
    V = len(neutral)
    ident = []
    for i in range(n_identity):
        name = f"identity{i:03d}.obj"
        if not src.has(name):
            if require_all:
                raise ModelMissingError(f"ICT-FaceKit file {name} is missing.", code="model.ict_incomplete")
            break
        ident.append(_positions(src.read(name)) - neutral)
    names, expr = [], []
    for n in EXPRESSION_NAMES:
        if not src.has(f"{n}.obj"):
            if require_all:
                raise ModelMissingError(f"ICT-FaceKit file {n}.obj is missing.", code="model.ict_incomplete")
            continue
        names.append(n)
        expr.append(_positions(src.read(f"{n}.obj")) - neutral)
    for arr in ident + expr:
        if arr.shape != (V, 3):
            raise ModelMissingError("An ICT-FaceKit shape does not match the neutral mesh.",
                                    code="model.ict_incomplete")
    idx = json.loads(src.read("vertex_indices.json"))
    group_id = np.zeros(V, np.int16)
    for g, (_, lo, hi) in enumerate(GROUPS):
        group_id[lo:hi] = g
    out = {
        "neutral": neutral.astype(np.float32), "faces": np.asarray(tris, np.int32), "uv": uv.astype(np.float32),
        "face_uv": np.asarray(tri_uv, np.int32), "tri_to_poly": np.asarray(tri_poly, np.int32),
        "tri_material": np.asarray(tri_mat, np.int8), "material_names": np.asarray(mats),
        "identity_basis": np.asarray(ident, np.float32).reshape(-1, V, 3),
        "expression_basis": np.asarray(expr, np.float32).reshape(-1, V, 3), "expression_names": np.asarray(names),
        "group_names": np.asarray([g[0] for g in GROUPS]),
        "group_ranges": np.asarray([g[1:] for g in GROUPS], np.int32),
        "group_id": group_id,
        "detail_names": np.asarray([d[0] for d in DETAILS]),
        "detail_ranges": np.asarray([d[1:] for d in DETAILS], np.int32),
        "landmarks_68": np.asarray(idx["idx_to_landmark_verts"], np.int32),
    }
    for key, name in (("idx_to_fitting_verts", "fitting_vertices"), ("idx_to_rigid_verts", "rigid_vertices")):
        if key in idx:
            out[name] = np.asarray(idx[key], np.int32)
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **out)
    return {"vertices": V, "triangles": len(tris), "identity": len(ident), "expressions": len(names)}


if __name__ == "__main__":
    import sys

    print(convert_ict(sys.argv[1], sys.argv[2]))
