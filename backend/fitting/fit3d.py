"""Fit a head model to 3D targets: landmarks (e.g. triangulated from detections on several views) plus a
reconstructed surface (splat points or an extracted mesh), with a similarity transform, identity and
expression, robust to parts the model does not cover (hair, shoulders, accessories: trimmed by distance).

    target ≈ s · R · (mean + Σ a_i I_i + Σ b_j E_j) + t

Iterates closest-point correspondences (point-to-plane for the surface, point-to-point for landmarks) and a
Gauss-Newton step on the similarity and the coefficients together (one bounded linear least-squares solve
with Gaussian priors, expressions in range) until the face stops moving. Surface pairs get continuous robust
weights, so the iteration is a continuous map that settles on one minimum: rounding differences (BLAS thread
count, CPU) do not send it elsewhere. The landmarks' similarity (Umeyama) is the starting pose.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..render.raster import vertex_normals
from .geometry import SurfaceQuery, barycentric
from .solve import bounded_lstsq


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
           init: tuple | None = None, solve_expression: bool = True, tol_m: float = 1e-6) -> Fit3D:
    """Fit `model` to 3D landmarks (L, 3) at model surface points (landmark_tri, landmark_bary) and/or a
    surface point set (M, 3). `fit_faces` limits the model triangles that surface points may match (default:
    the face region).

    Each iteration is one Gauss-Newton step on all unknowns together (similarity increment, identity,
    expression; expressions kept in the model's range), solved as a bounded linear least-squares problem;
    it stops once no face vertex moves by more than `tol_m` (model units, i.e. target units / scale) or
    after `iterations` steps. Costs are in the model's units: the landmark term is the weighted mean squared
    landmark distance, the surface term the robust-weighted mean squared point-to-plane distance. Surface
    points farther than `trim_m` (hair, shoulders) do not count; the rest get Tukey weights whose cut-off
    shrinks with the median distance after two steps (never below `trim_m` / 5), so no point flips in or out
    of the fit abruptly. Priors weigh squared coefficients against those mean squared distances (model units²):
    1e-9 ≈ a unit identity coefficient costs as much as (0.03 mm)² of mean error; the firmer expression
    prior keeps identity and expression from trading shapes (ICT's bases overlap)."""
    Ka = min(n_identity, model.n_identity)
    Ke = model.n_expression if solve_expression else 0
    lo, hi = model.expression_range
    idb = model.identity_basis[:Ka].astype(np.float64)
    exb = model.expression_basis[:Ke].astype(np.float64)
    mean = model.neutral.astype(np.float64)
    if fit_faces is None:
        inside = np.zeros(model.n_vertices, bool)
        inside[model.face_region()] = True
        fit_faces = np.nonzero(np.all(inside[model.faces], axis=1))[0]
    fit_faces = np.asarray(fit_faces, np.int64)
    Ff = model.faces[fit_faces]
    fit_verts = np.unique(Ff)
    a, b = np.zeros(Ka), np.zeros(model.n_expression)
    P = 7 + Ka + Ke  # rotation (3), translation (3), log-scale (1), identity, expression

    def shaped():
        return mean + np.tensordot(a, idb, 1) + (np.tensordot(b[:Ke], exb, 1) if Ke else 0.0)

    def at(arr, tri, bary):  # (..., V, 3) → (..., N, 3)
        return np.einsum("nk,...nkc->...nc", bary, arr[..., model.faces[tri], :])

    def pose_jacobian(p):  # d(model-frame residual)/d(ω, τ, δ) at model points p (N, 3) → (N, 3, 7)
        J = np.zeros((len(p), 3, 7))
        J[:, 0, 1], J[:, 0, 2] = p[:, 2], -p[:, 1]  # ω × p = −[p]× ω
        J[:, 1, 0], J[:, 1, 2] = -p[:, 2], p[:, 0]
        J[:, 2, 0], J[:, 2, 1] = p[:, 1], -p[:, 0]
        J[:, :, 3:6] = np.eye(3)
        J[:, :, 6] = p
        return J

    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float64)
        lm_mean, lm_id, lm_ex = at(mean, landmark_tri, landmark_bary), at(idb, landmark_tri, landmark_bary), \
            at(exb, landmark_tri, landmark_bary)
        w_lm = np.broadcast_to(np.asarray(landmark_weight, np.float64), (len(landmarks),)) / len(landmarks)
    if init is not None:
        s, R, t = init
        s, R, t = float(s), np.asarray(R, np.float64), np.asarray(t, np.float64)
    elif landmarks is not None:
        s, R, t = umeyama(lm_mean, landmarks)
    else:
        raise ValueError("fit_3d needs landmarks or an initial similarity")
    prior = np.concatenate([np.zeros(7), np.full(Ka, np.sqrt(identity_prior)), np.full(Ke, np.sqrt(expression_prior))])
    lb = np.concatenate([np.full(7 + Ka, -np.inf), np.full(Ke, lo)])
    ub = np.concatenate([np.full(7 + Ka, np.inf), np.full(Ke, hi)])
    history, moves = [], []
    V = shaped()
    converged = False
    for it in range(iterations):
        rows, rhs = [], []
        if landmarks is not None:
            q = (landmarks - t) @ R / s  # targets in the model frame
            X = at(V, landmark_tri, landmark_bary)
            # point-to-point, one row per axis: X + J Δ − q; coefficients are solved for as new values
            J = np.concatenate([pose_jacobian(X), lm_id.transpose(1, 2, 0), lm_ex.transpose(1, 2, 0)], axis=2)
            r0 = X - q - np.tensordot(a, lm_id, 1) - (np.tensordot(b[:Ke], lm_ex, 1) if Ke else 0.0)
            wl = np.repeat(np.sqrt(w_lm), 3)
            rows.append(wl[:, None] * J.reshape(-1, P))
            rhs.append(-wl * r0.reshape(-1))
        n_sw = 0
        if surface is not None:
            qs = (surface - t) @ R / s
            cp, dist, ti = SurfaceQuery(V, Ff).closest(qs)
            tri = fit_faces[ti]
            bary = barycentric(cp, V[model.faces[tri]])
            # interpolated vertex normals: the plane turns smoothly as a closest point crosses an edge
            n = np.einsum("nk,nkc->nc", bary, vertex_normals(V, model.faces)[model.faces[tri]])
            n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
            w = _surface_weights(dist, trim_m, adaptive=it >= 2)
            if surface_normals is not None:  # opposite-facing pairs do not count (ramp 0.2 → 0.4 in cosine)
                w *= np.clip(((surface_normals @ R) * n).sum(1) / 0.2 - 1.0, 0.0, 1.0)
            sel = np.nonzero(w > 0)[0]
            n_sw = len(sel)
            if n_sw:
                sel_tri, sel_b, sel_n, sel_q, sel_cp = tri[sel], bary[sel], n[sel], qs[sel], cp[sel]
                m_id, m_ex = at(idb, sel_tri, sel_b), at(exb, sel_tri, sel_b)
                # point-to-plane: n · (p + J Δ − q) = 0 at the closest point p
                Jp = np.einsum("nc,nck->nk", sel_n, pose_jacobian(sel_cp))
                Ji = np.einsum("nc,knc->nk", sel_n, m_id)
                Je = np.einsum("nc,knc->nk", sel_n, m_ex)
                r0 = ((sel_cp - sel_q) * sel_n).sum(1) - Ji @ a - (Je @ b[:Ke] if Ke else 0.0)
                ws = np.sqrt(w[sel] / w[sel].sum())
                rows.append(ws[:, None] * np.concatenate([Jp, Ji, Je], axis=1))
                rhs.append(-ws * r0)
        if not rows:
            break
        A = np.concatenate(rows + [np.diag(prior)])
        y = np.concatenate(rhs + [np.zeros(P)])
        sol = bounded_lstsq(A, y, lb, ub)
        omega, tau, delta = sol[:3], sol[3:6], sol[6]
        t = t + s * R @ tau
        R = R @ _rotation(omega)
        s = s * float(np.exp(delta))
        a = sol[7:7 + Ka]
        if Ke:
            b[:Ke] = sol[7 + Ka:]
        V_new = shaped()
        # how far the face moved in this step (model units), the pose change included
        Rw = _rotation(omega)
        before = V[fit_verts]
        after = np.exp(delta) * V_new[fit_verts] @ Rw.T + tau
        move = float(np.sqrt(((after - before) ** 2).sum(1).max()))
        V = V_new
        history.append(n_sw)
        moves.append(move)
        if move < tol_m and it >= 2:
            converged = True
            break
    return Fit3D(scale=s, R=R, t=t, identity=a, expression=b,
                 stats={"surface_pairs": history, "iterations": len(history), "converged": converged,
                        "max_move_m": moves})


def _surface_weights(dist: np.ndarray, trim_m: float, adaptive: bool) -> np.ndarray:
    """Tukey biweights (N,) of surface pairs at distances `dist`, 0 from the cut-off on: `trim_m` at first, then
    (`adaptive`) 4 × the median distance, kept within [trim_m / 5, trim_m]. Continuous in the distances."""
    c = float(np.clip(4.0 * np.median(dist), 0.2 * trim_m, trim_m)) if adaptive else trim_m
    u = np.minimum(dist / c, 1.0)
    return (1.0 - u**2) ** 2


def _rotation(omega: np.ndarray) -> np.ndarray:
    """Rotation matrix exp([ω]×) (Rodrigues)."""
    theta = float(np.linalg.norm(omega))
    Kx = np.array([[0.0, -omega[2], omega[1]], [omega[2], 0.0, -omega[0]], [-omega[1], omega[0], 0.0]])
    if theta < 1e-12:
        return np.eye(3) + Kx
    return np.eye(3) + np.sin(theta) / theta * Kx + (1 - np.cos(theta)) / theta**2 * Kx @ Kx
