"""The head-model interface every fitter and the rig builder use.

A head model is linear in its coefficients:
    verts = neutral + Σ_i a_i · identity_basis[i] + Σ_j b_j · expression_basis[j]      (V, 3), world metres
then optionally posed by linear blend skinning (FLAME: neck, jaw, eyes) with pose correctives.
All arrays are in the world frame of DESIGN.md (+Z up, metres, face toward −Y, +X the subject's left).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class HeadModel:
    name: str  # "ict-facekit-light", "flame-2020", ...
    neutral: np.ndarray  # (V, 3) float32, metres
    faces: np.ndarray  # (F, 3) int32
    identity_basis: np.ndarray  # (K, V, 3) float32, metres per unit coefficient (coefficients ~ N(0, 1))
    expression_basis: np.ndarray  # (E, V, 3) float32
    expression_names: list[str]
    groups: dict[str, np.ndarray]  # region name → vertex indices (int32)
    landmarks_68: np.ndarray | None = None  # (68,) vertex indices, iBUG/Multi-PIE order
    uv: np.ndarray | None = None  # (T, 2) float32, v up
    face_uv: np.ndarray | None = None  # (F, 3) int32 indices into uv
    face_material: np.ndarray | None = None  # (F,) int8 into material_names
    material_names: list[str] = field(default_factory=list)
    # Optional skeleton (FLAME): joint names, parents (-1 = root), skinning weights, pose correctives.
    joint_names: list[str] = field(default_factory=list)
    joint_parents: np.ndarray | None = None  # (J,) int
    joint_regressor: np.ndarray | None = None  # (J, V) float32: joints = regressor @ verts
    skin_weights: np.ndarray | None = None  # (V, J) float32
    pose_correctives: np.ndarray | None = None  # (P, V, 3) float32, P = 9 · (J − 1)
    expression_range: tuple[float, float] = (0.0, 1.0)  # ICT blendshape weights; FLAME PCA is (−3, 3)
    info: dict = field(default_factory=dict)

    @property
    def n_vertices(self) -> int:
        return int(self.neutral.shape[0])

    @property
    def n_identity(self) -> int:
        return int(self.identity_basis.shape[0])

    @property
    def n_expression(self) -> int:
        return int(self.expression_basis.shape[0])

    def vertices(self, identity=None, expression=None) -> np.ndarray:
        """Shaped vertices (V, 3) for identity coefficients (≤K,) and expression coefficients (≤E,)."""
        v = self.neutral.astype(np.float64)
        if identity is not None and len(identity):
            a = np.asarray(identity, np.float64)
            v = v + np.tensordot(a, self.identity_basis[: len(a)], axes=1)
        if expression is not None and len(expression):
            b = np.asarray(expression, np.float64)
            v = v + np.tensordot(b, self.expression_basis[: len(b)], axes=1)
        return v

    def group(self, *names: str) -> np.ndarray:
        """Union of the vertex indices of the named regions (sorted)."""
        return np.unique(np.concatenate([self.groups[n] for n in names])).astype(np.int64)

    def face_region(self) -> np.ndarray:
        """Vertices of the visible face (the region fitting errors are measured on)."""
        return self.groups["face_area"] if "face_area" in self.groups else self.groups["face"]


def mirror_map(points: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    """For each vertex (V, 3) the index of its mirror partner across x = 0 (itself when none is within tol m)."""
    from scipy.spatial import cKDTree

    mirrored = points * np.array([-1.0, 1.0, 1.0])
    d, idx = cKDTree(points).query(mirrored)
    out = np.where(d < tol, idx, np.arange(len(points)))
    return out.astype(np.int64)
