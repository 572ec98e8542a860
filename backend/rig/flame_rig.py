"""The rig for a FLAME head: FLAME's topology shaped by the fitted identity, ARKit keys carried over from
ICT-FaceKit (`transfer.transfer_arkit`), bones at FLAME's regressed joints (root = FLAME's global joint,
neck, head above it, jaw, eyes) and skin weights from FLAME's own (its neck joint turns the head: those
weights go to our `head` bone, split with `neck` over the throat by height)."""
from __future__ import annotations

import numpy as np

from ..headmodel.arkit import ARKIT_52
from .build import BONES, Primitive, Rig, fit_jaw_rotation
from .transfer import transfer_arkit


def build_flame_rig(model, identity: np.ndarray, skin_rgb=(0.8, 0.62, 0.52), landmarks: np.ndarray | None = None,
                    refine: np.ndarray | None = None, vertex_rgb: np.ndarray | None = None):
    """`refine` (V, 3): per-vertex offsets added to the identity shape (toward a reconstructed surface);
    `vertex_rgb` (V, 3) in 0..1: skin colours per vertex instead of one `skin_rgb`."""
    basis = model.vertices(identity=identity) + (0.0 if refine is None else refine)
    deltas, info = transfer_arkit(basis, model.faces.astype(np.int64), landmarks)
    J = model.joint_regressor.astype(np.float64) @ basis  # (5, 3): global, neck, jaw, eye, eye
    names = model.joint_names
    jflame = {n: J[i] for i, n in enumerate(names)}
    Wf = model.skin_weights.astype(np.float64)  # (V, 5)
    z = basis[:, 2]
    head_pos = jflame["neck"] + np.array([0.0, 0.0, 0.03])
    joints = np.stack([jflame["root"], jflame["neck"], head_pos, jflame["jaw"], jflame["eye_L"], jflame["eye_R"]])
    W = np.zeros((len(basis), len(BONES)))
    W[:, 0] = Wf[:, names.index("root")]
    neck_share = np.clip((head_pos[2] - z) / max(head_pos[2] - jflame["neck"][2], 1e-6), 0, 1)  # 1 below the neck joint
    w_neck = Wf[:, names.index("neck")]
    W[:, 1] = w_neck * neck_share
    W[:, 2] = w_neck * (1 - neck_share)
    W[:, 3] = Wf[:, names.index("jaw")]
    W[:, 4] = Wf[:, names.index("eye_L")]
    W[:, 5] = Wf[:, names.index("eye_R")]
    W /= np.maximum(W.sum(axis=1, keepdims=True), 1e-12)
    # the jaw-open rotation that best matches the transferred jawOpen on jaw-weighted vertices
    jaw_v = W[:, 3] > 0.9
    jaw_d = deltas[ARKIT_52.index("jawOpen")].astype(np.float64)
    if jaw_v.sum() >= 3 and np.abs(jaw_d[jaw_v]).max() > 1e-4:
        _, angle = fit_jaw_rotation(basis[jaw_v], jaw_d[jaw_v])
    else:
        angle = 0.0
    eye = (W[:, 4] > 0.99) | (W[:, 5] > 0.99)
    faces = model.faces.astype(np.int64)
    prims = []
    on_eye = np.all(eye[faces], axis=1)
    for name, mat, sel in (("skin", "skin_flat", ~on_eye), ("eyes", "eye", on_eye)):
        F = faces[sel]
        if not len(F):
            continue
        vids, local = np.unique(F, return_inverse=True)
        if mat == "skin_flat" and vertex_rgb is not None:
            col = np.asarray(vertex_rgb, np.float64)[vids]
        else:
            col = np.tile(np.asarray(skin_rgb if mat == "skin_flat" else (0.9, 0.88, 0.86), np.float64), (len(vids), 1))
        prims.append(Primitive(name, mat, vids, local.reshape(-1, 3), colour=col))
    return Rig(basis=basis.astype(np.float32), deltas=deltas, key_names=ARKIT_52, joints=joints, weights=W,
               primitives=prims, jaw_axis=np.array([1.0, 0.0, 0.0]), jaw_open_angle=float(angle),
               extras={"transfer": info})
