"""FLAME (2020, 2023, 2023 Open) from the pickle the user downloaded, read without chumpy.

The pickle is Python-2 era and holds chumpy arrays and a SciPy sparse joint regressor. A restricted
unpickler maps only the classes a FLAME file needs (numpy arrays, SciPy CSC/CSR matrices, chumpy `Ch`
objects, which become plain holders of their `x` array); anything else — a tampered file — is refused.

FLAME: 5 joints (global/root, neck, jaw, two eyeballs), 300 (2020/2023) identity and 100 expression PCA
components in `shapedirs`, 36 pose-corrective directions (4 non-root joints × 9). Its frame is +Y up, face
toward +Z, metres; it is converted to the world frame on load.
"""
from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path

import numpy as np

from ..errors import ModelMissingError
from .base import HeadModel
from .frames import yup_to_world

N_JOINTS = 5
N_EXPRESSION = 100


class _ChumpyArray:
    """Stand-in for chumpy.ch.Ch (and its subclasses): keeps the pickled state; `.x` is the ndarray."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"x": state})

    def array(self) -> np.ndarray:
        for k in ("x", "_x", "r"):
            if k in self.__dict__ and isinstance(self.__dict__[k], np.ndarray):
                return self.__dict__[k]
        raise ModelMissingError("A chumpy array in the FLAME file holds no data.", code="model.flame_tampered")


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"), ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
    ("__builtin__", "object"), ("builtins", "object"), ("_codecs", "encode"),
}
_SPARSE = {"csc_matrix", "csr_matrix", "coo_matrix"}


class _FlameUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("chumpy"):
            return _ChumpyArray
        if module.startswith("scipy.sparse") and name in _SPARSE:
            import scipy.sparse as sp

            return getattr(sp, name)
        if (module, name) in _ALLOWED:
            mod = {"copy_reg": "copyreg", "__builtin__": "builtins"}.get(module, module)
            if mod.startswith("numpy._core") and not hasattr(np, "_core"):
                mod = mod.replace("numpy._core", "numpy.core")

            return getattr(importlib.import_module(mod), name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not part of a FLAME model")


def _arr(v) -> np.ndarray:
    if isinstance(v, _ChumpyArray):
        v = v.array()
    if hasattr(v, "toarray"):
        v = v.toarray()
    return np.asarray(v)


def read_flame_pickle(path: str | Path) -> dict:
    """The FLAME pickle as a dict of numpy arrays. Raises ModelMissingError (missing/tampered/wrong file)."""
    p = Path(path)
    if not p.is_file():
        raise ModelMissingError(f"FLAME file {p} does not exist.", code="model.flame_missing",
                                hint="Download FLAME from flame.is.tue.mpg.de and give its .pkl path.")
    try:
        raw = _FlameUnpickler(io.BytesIO(p.read_bytes()), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as e:
        raise ModelMissingError(f"{p.name} is not a readable FLAME model ({e}).", code="model.flame_tampered",
                                hint="Download the file again from flame.is.tue.mpg.de.") from e
    if not isinstance(raw, dict):
        raise ModelMissingError(f"{p.name} does not hold a FLAME model dictionary.", code="model.flame_tampered")
    return {k: (_arr(v) if not isinstance(v, (str, bytes)) else v) for k, v in raw.items()}


def load_flame(path: str | Path, n_identity: int = 100) -> HeadModel:
    """FLAME as a HeadModel (world frame, metres), with joints, skin weights and pose correctives."""
    d = read_flame_pickle(path)
    need = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
    missing = [k for k in need if k not in d]
    if missing:
        raise ModelMissingError(f"{Path(path).name} lacks {', '.join(missing)}: it is not a FLAME model.",
                                code="model.flame_bad_version")
    v = d["v_template"].astype(np.float64)
    V = v.shape[0]
    J = d["J_regressor"].shape[0]
    sd, pd = d["shapedirs"], d["posedirs"]
    if J != N_JOINTS or d["kintree_table"].shape != (2, N_JOINTS) or d["weights"].shape != (V, N_JOINTS):
        raise ModelMissingError(
            f"{Path(path).name} has {J} joints and {V} vertices; FLAME has 5 joints (root, neck, jaw, eyes). "
            "It may be SMPL/SMPL-X or another model.", code="model.flame_bad_version")
    if sd.ndim != 3 or sd.shape[:2] != (V, 3) or sd.shape[2] <= N_EXPRESSION:
        raise ModelMissingError(f"{Path(path).name}: shapedirs has shape {sd.shape}; expected ({V}, 3, "
                                f"identity + {N_EXPRESSION}).", code="model.flame_bad_version")
    if pd.shape != (V, 3, 9 * (N_JOINTS - 1)):
        raise ModelMissingError(f"{Path(path).name}: posedirs has shape {pd.shape}; expected ({V}, 3, 36).",
                                code="model.flame_bad_version")
    if not (np.isfinite(v).all() and np.isfinite(sd).all() and np.isfinite(pd).all()):
        raise ModelMissingError(f"{Path(path).name} holds non-finite numbers.", code="model.flame_tampered")
    f = d["f"].astype(np.int64)
    if f.min() < 0 or f.max() >= V:
        raise ModelMissingError(f"{Path(path).name}: faces index past the {V} vertices.",
                                code="model.flame_tampered")
    n_id_total = sd.shape[2] - N_EXPRESSION
    n_id = min(n_identity, n_id_total)
    ident = np.transpose(sd[:, :, :n_id], (2, 0, 1))  # (K, V, 3)
    expr = np.transpose(sd[:, :, n_id_total:], (2, 0, 1))  # (100, V, 3)
    corr = np.transpose(pd, (2, 0, 1))  # (36, V, 3)
    parents = d["kintree_table"][0].astype(np.int64).copy()
    parents[0] = -1
    neutral_w = yup_to_world(v)
    # which eye joint is the subject's left (+X): FLAME's joint 3 and 4
    Jreg = d["J_regressor"].astype(np.float64)
    joints = Jreg @ neutral_w
    names = ["root", "neck", "jaw", "eye_L", "eye_R"]
    if joints[3, 0] < joints[4, 0]:
        names[3], names[4] = "eye_R", "eye_L"
    return HeadModel(
        name="flame", neutral=neutral_w, faces=f.astype(np.int32),
        identity_basis=yup_to_world(ident), expression_basis=yup_to_world(expr),
        expression_names=[f"flame_exp{i:03d}" for i in range(expr.shape[0])],
        groups={"face": np.arange(V, dtype=np.int32)},
        joint_names=names, joint_parents=parents, joint_regressor=Jreg.astype(np.float32),
        skin_weights=d["weights"].astype(np.float32), pose_correctives=yup_to_world(corr),
        expression_range=(-3.0, 3.0),
        info={"source": "user-supplied FLAME file", "licence": "FLAME licence (non-commercial)", "file": str(path),
              "identity_components": int(n_id_total)},
    )


def rodrigues(rv: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) → rotation matrices (..., 3, 3)."""
    rv = np.asarray(rv, np.float64)
    theta = np.linalg.norm(rv, axis=-1, keepdims=True)
    k = rv / np.maximum(theta, 1e-12)
    K = np.zeros(rv.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    t = theta[..., None]
    return np.eye(3) + np.sin(t) * K + (1 - np.cos(t)) * K @ K


def flame_pose(model: HeadModel, shaped: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear blend skinning with pose correctives. shaped (V, 3) (identity + expression applied), pose (5, 3)
    axis-angle per joint (world axes) → (posed vertices (V, 3), posed joints (5, 3))."""
    R = rodrigues(pose.reshape(-1, 3))  # (5, 3, 3)
    feat = (R[1:] - np.eye(3)).reshape(-1)  # (36,)
    v = shaped + np.tensordot(feat, model.pose_correctives, axes=1)
    Jp = model.joint_regressor.astype(np.float64) @ shaped  # rest joints from the shaped mesh
    G = np.zeros((len(R), 4, 4))
    for j in range(len(R)):
        L = np.eye(4)
        L[:3, :3] = R[j]
        L[:3, 3] = Jp[j] - R[j] @ Jp[j]
        G[j] = L if model.joint_parents[j] < 0 else G[model.joint_parents[j]] @ L
    T = np.einsum("vj,jab->vab", model.skin_weights.astype(np.float64), G)  # (V, 4, 4)
    out = np.einsum("vab,vb->va", T[:, :3, :3], v) + T[:, :3, 3]
    joints = np.einsum("jab,jb->ja", G[:, :3, :3], Jp) + G[:, :3, 3]
    return out, joints
