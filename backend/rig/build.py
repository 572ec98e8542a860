"""Build the rigged head: fitted topology, eyes/teeth/tongue/mouth socket, 52 ARKit shape keys, armature
root → neck → head → (jaw, eye_L, eye_R) with skin weights. Pure numpy; `gltf.write_rig_glb` writes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares

from ..headmodel.arkit import ARKIT_52, arkit_deltas
from ..headmodel.parts import HIDDEN_GROUPS, eye_centre, eye_colours
from ..render.image import LUMA
from .texture import atlas_uv, skin_faces

BONES = ("root", "neck", "head", "jaw", "eye_L", "eye_R")
BONE_PARENTS = (-1, 0, 1, 2, 2, 2)


@dataclass
class Primitive:
    name: str
    material: str  # "skin" (textured) or a flat material name
    vertex_ids: np.ndarray  # (n,) model vertex of each primitive vertex
    faces: np.ndarray  # (f, 3) local indices
    uv: np.ndarray | None = None  # (n, 2) glTF texcoords
    colour: np.ndarray | None = None  # (n, 3) linear-ish RGB in [0, 1]


@dataclass
class Rig:
    basis: np.ndarray  # (V, 3) world metres, neutral expression
    deltas: np.ndarray  # (52, V, 3) ARKit shape keys
    key_names: tuple[str, ...]
    joints: np.ndarray  # (6, 3) world positions of BONES
    weights: np.ndarray  # (V, 6) skin weights (rows sum to 1)
    primitives: list[Primitive]
    jaw_axis: np.ndarray  # (3,) unit axis of the jaw-open rotation (world)
    jaw_open_angle: float  # radians of rotation about jaw_axis that best matches jawOpen
    extras: dict = field(default_factory=dict)


def _smoothstep(x, a, b):
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _rot(axis, angle):
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def fit_jaw_rotation(points: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, float]:
    """Pivot (3,) and angle (rad) of a rotation about world X that moves `points` (N, 3) by ≈ `delta` (N, 3)."""
    def res(p):
        cy, cz, ang = p
        c = np.array([0.0, cy, cz])
        moved = (points - c) @ _rot([1, 0, 0], ang).T + c
        return (moved - points - delta).ravel()

    c0 = points.mean(axis=0)
    sol = least_squares(res, [c0[1] + 0.05, c0[2] + 0.03, 0.3])
    cy, cz, ang = sol.x
    return np.array([0.0, cy, cz]), float(ang)


def build_rig(model, identity: np.ndarray, *, refine: np.ndarray | None = None, deltas: np.ndarray | None = None,
              iris_rgb=(0.3, 0.2, 0.12), sclera_rgb=(0.92, 0.9, 0.88), iris_deg: float = 33.0,
              part_tone=None) -> Rig:
    """The rig of `model` shaped by `identity` coefficients, plus an optional per-vertex refinement (V, 3);
    `deltas` (52, V, 3) replaces the model's own ARKit shapes (e.g. carried onto a registered neutral).
    The eyes rest looking straight ahead (−Y); a gaze is a pose of the eye bones (eye_rotations).
    `part_tone` (3,) (luma 1): the mouth's, gums', teeth's and lashes' textbook colours toned to it by their
    luma, for a greyscale or sepia photo (a red mouth in a grey head)."""
    basis = model.vertices(identity=identity)
    if refine is not None:
        basis = basis + refine
    V = model.n_vertices
    deltas = arkit_deltas(model, basis) if deltas is None else np.asarray(deltas, np.float32)

    # --- joints -------------------------------------------------------------------------------------------
    eye_L = eye_centre(basis[model.groups["eyeball_left"]])  # +X: the subject's left
    eye_R = eye_centre(basis[model.groups["eyeball_right"]])
    jaw_d = deltas[ARKIT_52.index("jawOpen")].astype(np.float64)
    teeth = model.groups["teeth"]
    lower = teeth[np.linalg.norm(jaw_d[teeth], axis=1) > 0.5 * np.linalg.norm(jaw_d[teeth], axis=1).max()]
    jaw_pivot, jaw_angle = fit_jaw_rotation(basis[lower], jaw_d[lower])
    chin = basis[model.landmarks_68[8]] if model.landmarks_68 is not None else basis[jaw_d[:, 2].argmin()]
    z_min = basis[:, 2].min()
    head_j = np.array([0.0, jaw_pivot[1] + 0.015, jaw_pivot[2] - 0.02])  # skull base, behind the jaw hinge
    neck_j = np.array([0.0, head_j[1], 0.5 * (chin[2] + z_min) ])
    root_j = np.array([0.0, head_j[1], z_min])
    joints = np.stack([root_j, neck_j, head_j, jaw_pivot, eye_L, eye_R])

    # --- skin weights -------------------------------------------------------------------------------------
    z = basis[:, 2]
    head_w = _smoothstep(z, neck_j[2], chin[2] - 0.01)  # 1 above the chin line, 0 at the neck joint
    neck_up = _smoothstep(z, z_min + 0.01, neck_j[2])  # 0 at the shoulders (root), 1 at the neck joint
    rigid = (jaw_pivot + (basis - jaw_pivot) @ _rot([1, 0, 0], jaw_angle).T) - basis  # jaw-bone motion (V, 3)
    rr = (rigid**2).sum(axis=1)
    proj = (jaw_d * rigid).sum(axis=1) / np.maximum(rr, 1e-12)
    jaw_w = np.where(np.linalg.norm(jaw_d, axis=1) > 2e-4, np.clip(proj, 0.0, 1.0), 0.0)
    jaw_w = _smooth_on_mesh(jaw_w, model.faces, iterations=3)
    jaw_w[lower] = 1.0
    W = np.zeros((V, len(BONES)))
    W[:, 3] = jaw_w * head_w
    W[:, 2] = head_w - W[:, 3]
    W[:, 1] = (1 - head_w) * neck_up
    W[:, 0] = (1 - head_w) * (1 - neck_up)
    for g, j in (("eyeball_left", 4), ("eyeball_right", 5)):
        W[model.groups[g]] = 0.0
        W[model.groups[g], j] = 1.0
    W /= W.sum(axis=1, keepdims=True)

    # --- primitives ---------------------------------------------------------------------------------------
    prims = [_skin_primitive(model)]
    eye_cols = eye_colours(model, basis, iris_rgb, sclera_rgb, iris_deg)
    hidden = set(HIDDEN_GROUPS)
    flat = [("eyes", "eye", ("eyeball_left", "eyeball_right")),
            ("mouth", "mouth", ("mouth_socket",)),
            ("gums_tongue", "gums", ("gums_and_tongue",)),
            ("teeth", "teeth", ("teeth",)),
            ("lashes", "lashes", ("eyelashes_left", "eyelashes_right"))]
    palette = {"mouth": (0.25, 0.07, 0.07), "gums": (0.62, 0.28, 0.28), "teeth": (0.88, 0.85, 0.76),
               "lashes": (0.05, 0.04, 0.035)}
    if part_tone is not None:
        palette = {k: tuple(float(LUMA @ c) * np.asarray(part_tone, np.float64)) for k, c in palette.items()}
    for name, mat, groups in flat:
        groups = [g for g in groups if g in model.groups and g not in hidden]
        if not groups:
            continue
        inside = np.zeros(V, bool)
        inside[np.concatenate([model.groups[g] for g in groups])] = True
        tri_sel = np.all(inside[model.faces], axis=1) if name != "mouth" else _mouth_faces(model)
        F = model.faces[tri_sel]
        vids, local = np.unique(F, return_inverse=True)
        col = np.tile(np.asarray(palette.get(mat, (1, 1, 1)), np.float64), (len(vids), 1))
        if mat == "eye":
            lut = np.zeros((V, 3))
            for g, c in eye_cols.items():
                lut[model.groups[g]] = c
            col = lut[vids]
        prims.append(Primitive(name, mat, vids, local.reshape(-1, 3).astype(np.int64), colour=col))
    return Rig(basis=basis.astype(np.float32), deltas=deltas, key_names=ARKIT_52, joints=joints, weights=W,
               primitives=prims, jaw_axis=np.array([1.0, 0.0, 0.0]), jaw_open_angle=jaw_angle)


def gaze_direction(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Unit gaze (3,) in the head frame: (0, 0) is −Y (forward), yaw > 0 toward +X, pitch > 0 toward +Z."""
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    return np.array([np.sin(y) * np.cos(p), -np.cos(y) * np.cos(p), np.sin(p)])


def eye_rotations(gaze: dict | None) -> dict[str, np.ndarray]:
    """Eye-bone rotations {bone: (3, 3)} (skin_vertices' convention) that turn each eye from straight ahead (−Y)
    to a gaze {"gaze_right_deg": (yaw, pitch), "gaze_left_deg": ...} as photo_rig.photo_gaze reads it (yaw > 0
    toward +X, the subject's left; pitch > 0 up): the portrait's gaze posed on a rig that rests looking ahead."""
    out = {}
    for key, bone in (("gaze_right_deg", "eye_R"), ("gaze_left_deg", "eye_L")):
        if gaze and key in gaze:
            yaw, pitch = gaze[key]
            out[bone] = _rot([0, 0, 1], np.radians(yaw)) @ _rot([1, 0, 0], -np.radians(pitch))  # −Y → the gaze
    return out


def _mouth_faces(model) -> np.ndarray:
    inside = np.zeros(model.n_vertices, bool)
    inside[model.groups["mouth_socket"]] = True
    skin = np.zeros(len(model.faces), bool)
    skin[skin_faces(model)] = True
    return np.any(inside[model.faces], axis=1) & ~skin & ~np.isin(model.face_material, [
        model.material_names.index(n) for n in ("M_Teeth", "M_GumsTongue") if n in model.material_names])


def _skin_primitive(model) -> Primitive:
    """Skin triangles with their own UV seams: one primitive vertex per distinct (vertex, uv) corner."""
    sel = skin_faces(model)
    F = model.faces[sel]
    FU = model.face_uv[sel]
    pairs = np.stack([F.ravel(), FU.ravel()], axis=1)
    uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
    return Primitive("skin", "skin", uniq[:, 0].astype(np.int64), inv.reshape(-1, 3).astype(np.int64),
                     uv=atlas_uv(model.uv[uniq[:, 1]]))


def _smooth_on_mesh(values: np.ndarray, faces: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Average each vertex value with its neighbours' (uniform Laplacian smoothing) a few times."""
    n = len(values)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    A = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    A.data[:] = 1.0
    deg = np.asarray(A.sum(axis=1)).ravel()
    v = values.astype(np.float64)
    for _ in range(iterations):
        v = 0.5 * v + 0.5 * (A @ v) / np.maximum(deg, 1)
    return v


def skin_vertices(rig: Rig, rotations: dict[str, np.ndarray], weights: np.ndarray | None = None,
                  shape_keys: dict[str, float] | None = None) -> np.ndarray:
    """Posed vertices (V, 3): shape keys applied to the basis, then linear blend skinning with local bone
    rotations {bone: (3, 3)} (about each joint, in world axes at rest)."""
    v = rig.basis.astype(np.float64).copy()
    for name, wk in (shape_keys or {}).items():
        v += wk * rig.deltas[rig.key_names.index(name)]
    G = [np.eye(4) for _ in BONES]
    for j, name in enumerate(BONES):
        L = np.eye(4)
        R = rotations.get(name, np.eye(3))
        L[:3, :3] = R
        L[:3, 3] = rig.joints[j] - R @ rig.joints[j]
        G[j] = (G[BONE_PARENTS[j]] if BONE_PARENTS[j] >= 0 else np.eye(4)) @ L
    W = rig.weights if weights is None else weights
    out = np.zeros_like(v)
    for j in range(len(BONES)):
        if W[:, j].any():
            out += W[:, j:j + 1] * (v @ G[j][:3, :3].T + G[j][:3, 3])
    return out
