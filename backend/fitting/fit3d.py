"""Fit a head model to 3D targets: landmarks (e.g. triangulated from detections on several views) plus a
reconstructed surface (splat points or an extracted mesh), with a similarity transform, identity and
expression, robust to parts the model does not cover (hair, shoulders, accessories: trimmed by distance).

    target ≈ s · R · (mean + Σ a_i I_i + Σ b_j E_j) + t

Alternates closest-point correspondences (point-to-plane for the surface, point-to-point for landmarks),
a bounded linear solve for (a, b) with Gaussian priors, and a closed-form similarity update (Umeyama).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import SurfaceQuery, barycentric
from .photo import _bounded_lstsq


@dataclass
class Fit3D:
    scale: float
    R: np.ndarray  # (3, 3)
    t: np.ndarray  # (3,)
    identity: np.ndarray
    expression: np.ndarray
    stats: dict = field(default_factory=dict)

    def transform(self, points: np.ndarray) -> np.ndarray:
        """Model-frame points (N, 3) → target frame."""
        return self.scale * points @ self.R.T + self.t


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None, with_scale: bool = True):
    """Similarity (s, R, t) minimising Σ w ||s R src + t − dst||². src, dst (N, 3)."""
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    ms, md = w @ src, w @ dst
    S, D = src - ms, dst - md
    C = (D * w[:, None]).T @ S
    U, sig, Vt = np.linalg.svd(C)
    E = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ E @ Vt
    var = (w * (S**2).sum(1)).sum()
    s = float((sig * np.diag(E)).sum() / var) if with_scale else 1.0
    return s, R, md - s * R @ ms


def sample_surface(verts: np.ndarray, faces: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform random points (n, 3) on a mesh and their triangle's unit normals (n, 3)."""
    tri = verts[faces]
    cr = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cr, axis=1)
    idx = rng.choice(len(faces), n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    p = tri[idx, 0] + u[:, None] * (tri[idx, 1] - tri[idx, 0]) + v[:, None] * (tri[idx, 2] - tri[idx, 0])
    return p, cr[idx] / np.maximum(area[idx, None], 1e-30)


def fit_3d(model, *, landmarks: np.ndarray | None = None, landmark_tri: np.ndarray | None = None,
           landmark_bary: np.ndarray | None = None, surface: np.ndarray | None = None,
           surface_normals: np.ndarray | None = None, fit_faces: np.ndarray | None = None,
           n_identity: int = 100, identity_prior: float = 1e-9, expression_prior: float = 1e-8,
           landmark_weight: float | np.ndarray = 1.0, iterations: int = 12, trim_m: float = 0.01,
           init: tuple | None = None, solve_expression: bool = True) -> Fit3D:
    """Fit `model` to 3D landmarks (L, 3) at model surface points (landmark_tri, landmark_bary) and/or a
    surface point set (M, 3). `fit_faces` limits the model triangles that surface points may match (default:
    the face region). Distances are in the target's units; `trim_m` is the outlier distance (target units
    divided by the current scale) below which surface pairs count. Priors weigh squared coefficients
    against mean squared distances (target units²): 1e-9 ≈ a unit coefficient costs (0.03 mm)²; the
    firmer expression prior keeps identity and expression from trading shapes (ICT's bases overlap)."""
    Ka = min(n_identity, model.n_identity)
    Ke = model.n_expression if solve_expression else 0
    lo, hi = model.expression_range
    idb = model.identity_basis[:Ka].astype(np.float64)
    exb = model.expression_basis.astype(np.float64)
    mean = model.neutral.astype(np.float64)
    if fit_faces is None:
        inside = np.zeros(model.n_vertices, bool)
        inside[model.face_region()] = True
        fit_faces = np.nonzero(np.all(inside[model.faces], axis=1))[0]
    Ff = model.faces[fit_faces]
    a, b = np.zeros(Ka), np.zeros(model.n_expression)

    def shaped():
        v = mean + np.tensordot(a, idb, 1)
        return v + np.tensordot(b, exb, 1) if Ke else v

    def at(arr, tri, bary):  # (..., V, 3) → (..., N, 3)
        return np.einsum("nk,...nkc->...nc", bary, arr[..., model.faces[tri], :])

    if landmarks is not None:
        lm_mean, lm_id, lm_ex = at(mean, landmark_tri, landmark_bary), at(idb, landmark_tri, landmark_bary), \
            at(exb, landmark_tri, landmark_bary)
    if init is not None:
        s, R, t = init
    elif landmarks is not None:
        s, R, t = umeyama(lm_mean, landmarks)
    else:
        raise ValueError("fit_3d needs landmarks or an initial similarity")
    n_sw = 0
    history = []
    for it in range(iterations):
        V = shaped()
        rows, rhs = [], []
        src_pts, dst_pts, wts = [], [], []
        if landmarks is not None:
            q = (landmarks - t) @ R / s  # targets in the model frame
            X = lm_mean + np.tensordot(a, lm_id, 1) + (np.tensordot(b, lm_ex, 1) if Ke else 0)
            w_lm = np.broadcast_to(np.asarray(landmark_weight, np.float64), (len(q),)) / len(q)
            wl = np.repeat(np.sqrt(w_lm), 3)[:, None]
            # point-to-point: rows per axis
            Jl = np.concatenate([lm_id.transpose(1, 2, 0), lm_ex.transpose(1, 2, 0)[..., :Ke]], axis=2)
            rows.append(wl * Jl.reshape(-1, Ka + Ke))
            rhs.append(wl[:, 0] * (q - lm_mean).reshape(-1))
            src_pts.append(X), dst_pts.append(landmarks), wts.append(w_lm)
        if surface is not None:
            qs = (surface - t) @ R / s
            query = SurfaceQuery(V, Ff, k=8)
            cp, dist, ti = query.closest(qs)
            tri = fit_faces[ti]
            bary = barycentric(cp, V[model.faces[tri]])
            tv = V[model.faces[tri]]
            n = np.cross(tv[:, 1] - tv[:, 0], tv[:, 2] - tv[:, 0])
            n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
            # trimmed: pairs farther than the outlier distance, or than 3× the median once the fit settles
            thr = trim_m if it < 2 else min(trim_m, max(3.0 * np.median(dist), 0.1 * trim_m))
            ok = dist < thr
            if surface_normals is not None:
                ns = surface_normals @ R
                ok &= (ns * n).sum(1) > 0.3
            n_sw = int(ok.sum())
            if n_sw:
                sel_tri, sel_b, sel_n, sel_q = tri[ok], bary[ok], n[ok], qs[ok]
                m_mean = at(mean, sel_tri, sel_b)
                m_id, m_ex = at(idb, sel_tri, sel_b), at(exb, sel_tri, sel_b)[:Ke]
                ws = np.sqrt(1.0 / n_sw)
                # point-to-plane: n · (m + I a + E b − q) = 0
                Ji = np.einsum("nc,knc->nk", sel_n, m_id)
                Je = np.einsum("nc,knc->nk", sel_n, m_ex)
                rows.append(ws * np.concatenate([Ji, Je], axis=1))
                rhs.append(ws * ((sel_q - m_mean) * sel_n).sum(1))
                src_pts.append(cp[ok]), dst_pts.append(surface[ok]), wts.append(np.full(n_sw, 1.0 / n_sw))
        A = np.concatenate(rows + [np.diag(np.concatenate([np.full(Ka, np.sqrt(identity_prior)),
                                                           np.full(Ke, np.sqrt(expression_prior))]))])
        y = np.concatenate(rhs + [np.zeros(Ka + Ke)])
        lb = np.concatenate([np.full(Ka, -np.inf), np.full(Ke, lo)])
        ub = np.concatenate([np.full(Ka, np.inf), np.full(Ke, hi)])
        sol = _bounded_lstsq(A, y, lb, ub, passes=20)
        a = sol[:Ka]
        if Ke:
            b[:Ke] = sol[Ka:]
        # similarity from the updated model points to their targets
        V = shaped()
        src = []
        if landmarks is not None:
            src.append(at(V, landmark_tri, landmark_bary))
        if surface is not None and n_sw:
            src.append(np.einsum("nk,nkc->nc", sel_b, V[model.faces[sel_tri]]))
        s, R, t = umeyama(np.concatenate(src), np.concatenate(dst_pts), np.concatenate(wts))
        history.append(n_sw)
    return Fit3D(scale=s, R=R, t=t, identity=a, expression=b,
                 stats={"surface_pairs": history, "iterations": iterations})
