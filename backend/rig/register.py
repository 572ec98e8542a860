"""Non-rigid registration of a fitted head model to a reconstructed surface, and its expression shapes carried
onto the registered neutral.

The model (already fitted by a similarity, identity and expression: fitting/fit3d.py) is deformed by a smooth
per-vertex displacement d toward the surface (non-rigid ICP with a Laplacian-smoothness prior whose stiffness is
lowered step by step):

    min_d  Σ_i w_i |x_i + d_i − c_i|² + ρ Σ_p v_p |C_p (x + d) − s_p|² + Σ_l ω |B_l (x + d) − q_l|²
           + λ_k ‖L d‖² + ε ‖d‖²

x the model's skin vertices, c_i their closest points on the surface, w_i continuous weights that reject far pairs
and pairs whose normals disagree (outliers: hair, shoulders, the far side of thin parts); s_p points sampled on
the surface and C_p (x + d) their closest points on the model (the reverse direction: it pulls ear rims and lids
over closed eyes out to the surface; ρ = 3 measured best on the Lee Perry-Smith scan, lower stiffness with it
folds the lips), v_p their weights, none near the model's neck cut; B_l (x + d) the model's surface points of 3D
landmarks q_l found on the surface, L the uniform graph Laplacian over the whole model mesh.
Parts with no surface to match (eyeballs, teeth, gums, lashes: separate pieces of the mesh) move rigidly with
the skin around them, so the eyes stay spheres and the mouth's inside stays the model's.

Each expression shape is then turned by the local rotation of the deformation at its vertex (the
as-rigid-as-possible rotation of the vertex's one-ring), a displacement carried in local frames.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree

from ..fitting.geometry import SurfaceQuery, barycentric
from ..render.raster import vertex_normals
from .texture import skin_faces

STIFFNESS = (8.0, 4.0, 2.0, 1.0, 0.5, 0.25)  # λ_k, the Laplacian prior's weight per stage (× mean data weight)


def _adjacency(faces: np.ndarray, n: int) -> sp.csr_matrix:
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    A = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    A.data[:] = 1.0
    return A


def _laplacian(faces: np.ndarray, n: int) -> sp.csr_matrix:
    """Uniform graph Laplacian I − D⁻¹A (n, n)."""
    A = _adjacency(faces, n)
    deg = np.maximum(np.asarray(A.sum(axis=1)).ravel(), 1.0)
    return (sp.identity(n, format="csr") - sp.diags(1.0 / deg) @ A).tocsr()


def _pair_weights(dist: np.ndarray, cos: np.ndarray, trim: float) -> np.ndarray:
    """Continuous weights (N,) of vertex→surface pairs: Tukey in distance (0 from `trim` on), a ramp in the
    normals' cosine (0 at or below 0.3, 1 from 0.6): no pair flips in or out abruptly."""
    u = np.minimum(dist / trim, 1.0)
    return (1.0 - u**2) ** 2 * np.clip((cos - 0.3) / 0.3, 0.0, 1.0)


def register_to_surface(model, shaped: np.ndarray, target_verts: np.ndarray, target_faces: np.ndarray, *,
                        landmarks: np.ndarray | None = None, landmark_tri: np.ndarray | None = None,
                        landmark_bary: np.ndarray | None = None, landmark_weight: float = 4.0,
                        trim: float = 0.02, stiffness=STIFFNESS, inner_iterations: int = 2,
                        reverse_weight: float = 3.0, n_surface_points: int = 20000, rim: float = 0.008,
                        progress=lambda f, m: None) -> tuple[np.ndarray, dict]:
    """Deform `shaped` (V, 3), the fitted model in its own frame, onto the surface (target_verts (N, 3) in the
    same frame, target_faces (M, 3)). Landmarks (L, 3) on the surface at model points (landmark_tri, landmark_bary)
    tie features together. `trim` (model units) is the farthest a pair may be. → (registered (V, 3), info).

    Closest points jump where two sheets face each other (ear folds, lids, lips), so the iteration amplifies
    tiny input differences; inputs are rounded to float32 (≈ 0.01 µm here) first, which absorbs the last-bit
    differences BLAS thread counts leave in the model's shaped vertices: the steps after it are exactly
    reproducible (sparse LU, KD-trees, elementwise numpy)."""
    V = model.n_vertices
    x0 = np.asarray(shaped, np.float32).astype(np.float64)
    target_verts = np.asarray(target_verts, np.float32).astype(np.float64)
    landmarks = None if landmarks is None else np.asarray(landmarks, np.float32).astype(np.float64)
    faces = np.asarray(model.faces, np.int64)
    data = np.zeros(V, bool)
    data[np.unique(faces[skin_faces(model)])] = True
    L = _laplacian(faces, V)
    LtL = (L.T @ L).tocsr()
    target = SurfaceQuery(target_verts, target_faces)
    tf = np.asarray(target_faces, np.int64)
    tv = np.asarray(target_verts, np.float64)
    tn = np.cross(tv[tf[:, 1]] - tv[tf[:, 0]], tv[tf[:, 2]] - tv[tf[:, 0]])
    area = np.linalg.norm(tn, axis=1)
    tn /= np.maximum(area[:, None], 1e-30)
    B = None
    if landmarks is not None and len(landmarks):
        rows = np.repeat(np.arange(len(landmarks)), 3)
        B = sp.coo_matrix((np.asarray(landmark_bary, np.float64).ravel(), (rows, faces[landmark_tri].ravel())),
                          shape=(len(landmarks), V)).tocsr()
        q = np.asarray(landmarks, np.float64)
    # the surface's own points pull the model where it falls short (ear rims, lids over a closed eye); not
    # near the neck's cut (the reconstruction's shoulders are not the model's)
    sf = faces[skin_faces(model)]
    rng = np.random.default_rng(0)
    pick = rng.choice(len(tf), n_surface_points, p=area / area.sum())
    u, v = rng.random((2, n_surface_points))
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    a0 = tv[tf[pick, 0]]
    sp_pts = a0 + u[:, None] * (tv[tf[pick, 1]] - a0) + v[:, None] * (tv[tf[pick, 2]] - a0)
    sp_nrm = tn[pick]
    allowed = ~_near_neck_cut(sf, x0, model)
    rim = _opening_rim_weights(sf, x0, model, rim)  # lips' and lids' margins: the model's own shape there
    allowed = allowed * rim[sf].min(axis=1)
    d = np.zeros((V, 3))
    di = np.nonzero(data)[0]
    history = []
    steps = len(stiffness) * inner_iterations
    for k, lam in enumerate(np.repeat(np.asarray(stiffness, np.float64), inner_iterations)):
        x = x0 + d
        cp, dist, ti = target.closest(x[di])
        n_src = vertex_normals(x, faces)[di]
        w = _pair_weights(dist, (n_src * tn[ti]).sum(1), trim) * rim[di]
        wd = np.zeros(V)
        wd[di] = w
        rhs = np.zeros((V, 3))
        rhs[di] = w[:, None] * (cp - x0[di])
        scale = max(float(w.sum()) / max(len(di), 1), 1e-6)  # λ relative to the mean data weight
        A = sp.diags(wd + 1e-4 * scale) + (lam * scale) * LtL
        if reverse_weight > 0:
            cq, rd, rt = SurfaceQuery(x, sf).closest(sp_pts)
            fn = np.cross(x[sf[rt, 1]] - x[sf[rt, 0]], x[sf[rt, 2]] - x[sf[rt, 0]])
            fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-30)
            wr = _pair_weights(rd, (fn * sp_nrm).sum(1), trim) * allowed[rt]
            keep = np.nonzero(wr > 0)[0]
            rb = barycentric(cq[keep], x[sf[rt[keep]]])
            C = sp.coo_matrix((rb.ravel(), (np.repeat(np.arange(len(keep)), 3), sf[rt[keep]].ravel())),
                              shape=(len(keep), V)).tocsr()
            wk = reverse_weight * wr[keep] * len(di) / len(sp_pts)
            A = A + C.T @ sp.diags(wk) @ C
            rhs = rhs + C.T @ (wk[:, None] * (sp_pts[keep] - C @ x0))
        if B is not None:
            om = landmark_weight * scale * len(di) / len(q) / 50.0  # landmarks together ≈ 2 % × weight of the data
            A = A + om * (B.T @ B)
            rhs = rhs + om * (B.T @ (q - B @ x0))
        d = splu(A.tocsc()).solve(rhs)
        history.append({"pairs": int((w > 0).sum()), "mean_mm": float(1000 * np.average(dist, weights=w + 1e-12))})
        progress((k + 1) / steps, f"Registering the head model to the surface ({k + 1}/{steps})")
    d = _carry_floating_parts(faces, x0, d, data, [model.groups[g] for g in ("eyeball_left", "eyeball_right")
                                                   if g in model.groups])
    x = x0 + d
    behind = _eyes_behind_lids(model, x0, x, faces[skin_faces(model)])
    x += behind
    dist = target.closest(x[di])[1]
    info = {"iterations": history, "median_distance_mm": float(1000 * np.median(dist)),
            "eyes_set_back_mm": float(1000 * np.abs(behind).max()),
            "max_displacement_mm": float(1000 * np.linalg.norm(d, axis=1).max())}
    return x, info


def _opening_rim_weights(skin: np.ndarray, x: np.ndarray, model, reach: float) -> np.ndarray:
    """(V,) weights ramping from 0 on the skin's open borders above the neck (the mouth's and eyes' openings) to 1
    at `reach` from them: the surface may not drag the lips' and lids' margins (a reconstruction's closed mouth or
    closed eyes is one sheet where the model has two margins), the smoothness prior and the landmarks place them."""
    out = np.ones(len(x))
    if reach <= 0:
        return out
    e = np.sort(np.concatenate([skin[:, [0, 1]], skin[:, [1, 2]], skin[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(e, axis=0, return_counts=True)
    border = np.unique(uniq[count == 1])
    chin_z = x[model.landmarks_68[8], 2] if model.landmarks_68 is not None else np.median(x[:, 2])
    openings = border[x[border, 2] >= chin_z - 0.02]
    if len(openings):
        d = cKDTree(x[openings]).query(x)[0]
        out = np.clip(d / reach, 0.0, 1.0) ** 2
    return out


def _near_neck_cut(skin: np.ndarray, x: np.ndarray, model, reach: float = 0.025) -> np.ndarray:
    """bool (F,) per skin triangle: within `reach` of the skin's open border below the chin (the neck's cut)."""
    e = np.sort(np.concatenate([skin[:, [0, 1]], skin[:, [1, 2]], skin[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(e, axis=0, return_counts=True)
    border = np.unique(uniq[count == 1])
    chin_z = x[model.landmarks_68[8], 2] if model.landmarks_68 is not None else np.median(x[:, 2])
    cut = border[x[border, 2] < chin_z - 0.02]
    if not len(cut):
        return np.zeros(len(skin), bool)
    near = cKDTree(x[cut]).query(x, distance_upper_bound=reach)[0] < reach
    return near[skin].any(axis=1)


def _carry_floating_parts(faces: np.ndarray, x0: np.ndarray, d: np.ndarray, data: np.ndarray, rigid=(),
                          sigma: float = 0.008) -> np.ndarray:
    """Pieces of the mesh with no vertex of the surface fit (eyeballs, teeth, lashes...) move rigidly: each by
    the mean of the skin's displacement near it (Gaussian, `sigma` model units, over the 16 nearest skin vertices
    of each of its vertices). Each index set in `rigid` (an eyeball's sclera, iris, cornea) moves as one piece."""
    V = len(x0)
    n_comp, label = connected_components(_adjacency(faces, V), directed=False)
    for idx in rigid:
        label[idx] = label[idx[0]]
    has_data = np.zeros(n_comp, bool)
    has_data[label[data]] = True
    floating = ~has_data[label]
    if not floating.any():
        return d
    skin = np.nonzero(data)[0]
    r, nn = cKDTree(x0[skin]).query(x0[floating], k=16)
    w = np.exp(-0.5 * (r / sigma) ** 2) + 1e-12
    field = np.einsum("nk,nkc->nc", w, d[skin[nn]]) / w.sum(1, keepdims=True)
    out = d.copy()
    idx = np.nonzero(floating)[0]
    lab = label[idx]
    sums = np.zeros((n_comp, 3))
    np.add.at(sums, lab, field)
    counts = np.bincount(lab, minlength=n_comp)[:, None]
    out[idx] = (sums / np.maximum(counts, 1))[lab]
    return out


def _eyes_behind_lids(model, before: np.ndarray, after: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Offsets (V, 3) setting each eyeball back (+Y, away from the face) by what it pokes through the skin after
    registration beyond what it did before (closed lids on the surface would otherwise show the sclera)."""
    out = np.zeros_like(after)
    q_before, q_after = SurfaceQuery(before, skin), SurfaceQuery(after, skin)
    for g in ("eyeball_left", "eyeball_right"):
        if g not in model.groups:
            continue
        idx = model.groups[g]
        poke = []
        for x, q in ((before, q_before), (after, q_after)):
            cp, _, ti = q.closest(x[idx])
            f = skin[ti]
            n = np.cross(x[f[:, 1]] - x[f[:, 0]], x[f[:, 2]] - x[f[:, 0]])
            n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
            poke.append(max(float(((x[idx] - cp) * n).sum(1).max()), 0.0))
        out[idx, 1] = max(poke[1] - poke[0], 0.0)
    return out


def local_rotations(faces: np.ndarray, before: np.ndarray, after: np.ndarray, smooth: int = 10) -> np.ndarray:
    """Per-vertex rotations (V, 3, 3) best mapping each one-ring's edges of `before` onto those of `after`
    (the as-rigid-as-possible local step: R = U Vᵀ of Σ e'eᵀ, reflections removed), the edge covariances
    averaged over `smooth` rings first: a one-ring alone turns erratically where the registration squeezes the
    lips together, and a smile carried by those rotations parts the lips."""
    V = len(before)
    A = _adjacency(np.asarray(faces, np.int64), V)
    C = A.tocoo()
    e0 = before[C.col] - before[C.row]
    e1 = after[C.col] - after[C.row]
    S = np.zeros((V, 3, 3))
    np.add.at(S, C.row, e1[:, :, None] * e0[:, None, :])
    if smooth > 0:
        deg = np.maximum(np.asarray(A.sum(axis=1)).ravel(), 1.0)
        M = sp.diags(1.0 / (deg + 1.0)) @ (A + sp.identity(V, format="csr"))
        flat = S.reshape(V, 9)
        for _ in range(smooth):
            flat = M @ flat
        S = flat.reshape(V, 3, 3)
    U, _, Vt = np.linalg.svd(S)
    det = np.linalg.det(U @ Vt)
    U[:, :, 2] *= np.where(det < 0, -1.0, 1.0)[:, None]
    R = U @ Vt
    R[np.abs(S).sum(axis=(1, 2)) == 0] = np.eye(3)
    return R


def carry_deltas(deltas: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Expression shapes (K, V, 3) turned by the local rotations (V, 3, 3): displacements in local frames."""
    return np.einsum("vij,kvj->kvi", rotations, deltas.astype(np.float64)).astype(np.float32)
