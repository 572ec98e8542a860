"""Where MediaPipe's 478 points sit on a rendered, animated ICT-FaceKit head, learned from synthetic performances.

The correspondence the photo fit uses (fitting/correspondence.py) comes from renders of neutral faces. In a
performance some of MediaPipe's points do not follow one surface point: the upper-lid contour slides over the
eyeball, the inner lips follow the mouth's opening, not a lip vertex. This table, learned by
`benchmarks/animate_correspondence.py` from Blender renders of our rig driven by random expressions (not the
test capture), holds for every landmark:
- `tri`, `bary`: the surface point of the neutral template that best explains the detections (least squares of
  the reprojection over all frames, the point moving with the known 3D surface of each frame);
- `offset` (N, 3), `delta` (E, N, 3) and `view` (3, N, 3) metres in the model's frame: the rest of the
  detections' motion, an offset plus displacements linear in the model's expression weights and in how far the
  face is turned from the camera (view_features), ridge-regularised toward 0;
- `weights` (N,): each point's weight in the fit, the inverse of the variance of what is still left;
- `expression_prior`: the tracker's prior strength chosen on held-out clips of another identity.
Shipped as backend/animate/data/ict_mediapipe478_video.npz; the tracker falls back to the photo fit's
correspondence for other head models or when the file is absent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ..fitting.correspondence import landmark_points
from ..fitting.geometry import barycentric, closest_point_on_triangles
from ..fitting.photo import landmark_basis
from ..headmodel.parts import visible_faces
from ..render.raster import vertex_normals

TABLE_FILE = Path(__file__).resolve().parent / "data" / "ict_mediapipe478_video.npz"
N_FACE = 468  # MediaPipe's face points; 468–477 are the irises (the gaze fit's)
SNAP_GROUPS = ("face", "head_and_neck")  # skin: the surface points never land on the eyeballs or teeth


@dataclass
class VideoCorrespondence:
    tri: np.ndarray  # (N,) int64
    bary: np.ndarray  # (N, 3)
    offset: np.ndarray  # (N, 3) metres, model frame
    delta: np.ndarray  # (E, N, 3) metres per unit expression weight
    expression_prior: float
    info: dict
    view: np.ndarray | None = None  # (V, N, 3) metres per unit of view_features (the face turned from the camera)
    weights: np.ndarray | None = None  # (N,) the fit's weight of each point: 1 / its residual's variance, max 1


def load_video_correspondence(model) -> VideoCorrespondence | None:
    """The learned table for ICT-FaceKit Light (None for another model or when the file is absent)."""
    if model.name != "ict-facekit-light" or not TABLE_FILE.is_file():
        return None
    z = np.load(TABLE_FILE)
    if z["delta"].shape[0] != model.n_expression or z["delta"].shape[1] != len(z["tri"]):
        return None
    return VideoCorrespondence(tri=z["tri"].astype(np.int64), bary=z["bary"].astype(np.float64),
                               offset=z["offset"].astype(np.float64), delta=z["delta"].astype(np.float64),
                               expression_prior=float(z["expression_prior"]),
                               info={k: z[k].tolist() for k in z.files if k.startswith("info_")},
                               view=z["view"].astype(np.float64) if "view" in z.files else None,
                               weights=z["weights"].astype(np.float64) if "weights" in z.files else None)


def view_features(R: np.ndarray) -> np.ndarray:
    """(…, 3) of model → camera rotations (…, 3, 3): where the face points, seen from the camera: its forward
    direction's x and y in the camera (0 facing it; sin of the yaw and pitch) and the x's magnitude."""
    f = -R[..., :, 1]  # the model's forward (−Y) in the camera
    return np.stack([f[..., 0], f[..., 1], np.abs(f[..., 0])], -1)


# ---------------------------------------------------------------- learning (benchmarks/animate_correspondence.py)

@dataclass
class Sample:
    """One clip: per frame the model → camera rotation R (T, 3, 3) and translation t (T, 3), the model's
    expression weights (T, E), the identity (K,), the camera K (3, 3) and the detections (T, 478, 2), NaN
    where no face was found."""
    R: np.ndarray
    t: np.ndarray
    expression: np.ndarray
    identity: np.ndarray
    K: np.ndarray
    marks: np.ndarray


def _points(model, s: Sample, tri, bary):
    """(T, N, 3) model-frame landmark points of every frame at (tri, bary) and their unit normals."""
    mean, idb, exb = landmark_basis(model, tri, bary, len(s.identity))
    base = mean + np.tensordot(s.identity, idb, 1)
    return base[None] + np.tensordot(s.expression, exb, 1)


def _facing(model, s: Sample, tri, bary) -> np.ndarray:
    """(T, N) cosine between each landmark's neutral normal (turned by the head) and the direction to the camera."""
    verts = model.vertices(identity=s.identity)
    n = landmark_points(model, vertex_normals(verts, model.faces), tri, bary)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    X = landmark_points(model, verts, tri, bary)
    Xc = np.einsum("tij,nj->tni", s.R, X) + s.t[:, None]
    nc = np.einsum("tij,nj->tni", s.R, n)
    return -(nc * Xc).sum(-1) / np.linalg.norm(Xc, axis=-1)


def _projection(Xc, K):
    """Pixels (…, 2) of camera points (…, 3) and d(pixel)/d(Xc) (…, 2, 3)."""
    iz = 1.0 / Xc[..., 2]
    u = K[0, 0] * Xc[..., 0] * iz + K[0, 2]
    v = K[1, 1] * Xc[..., 1] * iz + K[1, 2]
    J = np.zeros(Xc.shape[:-1] + (2, 3))
    J[..., 0, 0] = K[0, 0] * iz
    J[..., 0, 2] = -K[0, 0] * Xc[..., 0] * iz**2
    J[..., 1, 1] = K[1, 1] * iz
    J[..., 1, 2] = -K[1, 1] * Xc[..., 1] * iz**2
    return np.stack([u, v], -1), J


def _systems(model, samples, tri, bary, feats, min_facing, huber_px, state=None):
    """Normal equations, per landmark, of the Gauss-Newton step of the unknowns x (N, P, 3) in
    X_f = P_f + Σ_p feats_f[p] x[p] (feats (T, P): 1 for the offset, the expression weights for the deltas)."""
    N = N_FACE
    P = feats[0].shape[1]
    A = np.zeros((N, 3 * P, 3 * P))
    b = np.zeros((N, 3 * P))
    sq, cnt = 0.0, 0
    for s, F in zip(samples, feats):
        pts = _points(model, s, tri, bary)[:, :N]  # (T, N, 3)
        if state is not None:
            pts = pts + np.einsum("tp,npc->tnc", F, state)
        Xc = np.einsum("tij,tnj->tni", s.R, pts) + s.t[:, None]
        uv, Jp = _projection(Xc, s.K)
        r = uv - s.marks[:, :N]  # (T, N, 2)
        ok = np.isfinite(r).all(-1) & (_facing(model, s, tri, bary)[:, :N] > min_facing)
        e = np.linalg.norm(np.where(ok[..., None], r, 0.0), axis=-1)
        w = np.where(ok, np.minimum(1.0, huber_px / np.maximum(e, 1e-9)), 0.0)  # Huber IRLS weights
        r = np.where(ok[..., None], r, 0.0)
        sq += float((e[ok] ** 2).sum())
        cnt += int(ok.sum())
        JR = np.einsum("tnab,tbc->tnac", Jp, s.R)  # (T, N, 2, 3) d pixel / d model-frame point
        # rows d pixel / d x[p, c] = F[t, p] JR[..., c]: A_n = Σ_t w (F Fᵀ)_t ⊗ (JRᵀ JR)_tn, one matmul over t
        M = w[..., None, None] * np.einsum("tnac,tnad->tncd", JR, JR)  # (T, N, 3, 3)
        g = w[..., None] * np.einsum("tnac,tna->tnc", JR, r)  # (T, N, 3)
        FF = np.einsum("tp,tq->tpq", F, F).reshape(len(F), -1)
        A += (FF.T @ M.reshape(len(F), -1)).reshape(P, P, N, 3, 3).transpose(2, 0, 3, 1, 4).reshape(N, 3 * P, 3 * P)
        b -= (F.T @ g.reshape(len(F), -1)).reshape(P, N, 3).transpose(1, 0, 2).reshape(N, 3 * P)
    return A, b, (sq / max(cnt, 1)) ** 0.5


def _local_snap(model, skin, tri, bary, target, radius: float = 0.015, min_cos: float = 0.3):
    """Closest points to `target` (N, 3) on skin triangles near each landmark's current point that face the same
    way as its current triangle (so an inner-lip point never jumps to the opposite lip, nor a lid to the other
    lid) → (tri (N,), bary (N, 3))."""
    V = model.neutral.astype(np.float64)
    Fs = model.faces[skin]
    cen = V[Fs].mean(axis=1)
    fn = np.cross(V[Fs[:, 1]] - V[Fs[:, 0]], V[Fs[:, 2]] - V[Fs[:, 0]])
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-20)
    cur = model.faces[tri]
    n0 = np.cross(V[cur[:, 1]] - V[cur[:, 0]], V[cur[:, 2]] - V[cur[:, 0]])
    n0 /= np.maximum(np.linalg.norm(n0, axis=1, keepdims=True), 1e-20)
    p0 = np.einsum("nk,nkc->nc", bary, V[cur])
    found = cKDTree(cen).query_ball_point(p0, radius)
    rows = np.repeat(np.arange(len(p0)), [len(f) for f in found])
    cand = np.fromiter((j for f in found for j in f), np.int64, len(rows))
    ok = (fn[cand] * n0[rows]).sum(-1) > min_cos
    rows, cand = rows[ok], cand[ok]
    f = Fs[cand]
    q = closest_point_on_triangles(target[rows], V[f[:, 0]], V[f[:, 1]], V[f[:, 2]])
    d = np.linalg.norm(q - target[rows], axis=1)
    order = np.lexsort((cand, d, rows))  # per landmark: nearest first, ties to the lowest triangle
    first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
    new_tri, new_bary = tri.copy(), bary.copy()
    new_tri[rows[first]] = skin[cand[first]]
    new_bary[rows[first]] = barycentric(q[first], V[model.faces[new_tri[rows[first]]]])
    return new_tri, new_bary, n0


def fit_surface_points(model, samples, tri, bary, *, iterations: int = 4, min_facing: float = 0.15,
                       huber_px: float = 4.0, log=print):
    """Move each face landmark to the template surface point whose motion best explains its detections: the
    least-squares offset of all frames, kept in the surface's tangent plane, snapped back onto the nearby skin."""
    keep = np.zeros(model.n_vertices, bool)
    for g in SNAP_GROUPS:
        keep[model.groups[g]] = True
    vis = visible_faces(model)
    skin = vis[np.all(keep[model.faces[vis]], axis=1)]
    tri, bary = tri.copy(), bary.copy()
    feats = [np.ones((len(s.R), 1)) for s in samples]
    N = N_FACE
    for it in range(iterations):
        A, b, rms = _systems(model, samples, tri, bary, feats, min_facing, huber_px)
        A += 1e-6 * np.eye(3)
        o = np.linalg.solve(A, b[..., None])[..., 0]  # (N, 3)
        mean, _, _ = landmark_basis(model, tri, bary, 1)
        cur = model.faces[tri[:N]]
        V = model.neutral.astype(np.float64)
        n0 = np.cross(V[cur[:, 1]] - V[cur[:, 0]], V[cur[:, 2]] - V[cur[:, 0]])
        n0 /= np.maximum(np.linalg.norm(n0, axis=1, keepdims=True), 1e-20)
        o -= (o * n0).sum(-1, keepdims=True) * n0  # along the surface: depth is what the pictures see least
        t_new, b_new, _ = _local_snap(model, skin, tri[:N], bary[:N], mean[:N] + o)
        tri[:N], bary[:N] = t_new, b_new
        log(f"  surface points, pass {it + 1}: rms {rms:.2f} px before; moved median "
            f"{np.median(np.linalg.norm(o, axis=1)) * 1e3:.2f} mm, max {np.linalg.norm(o, axis=1).max() * 1e3:.1f} mm")
    return tri, bary


def fit_offsets(model, samples, tri, bary, *, ridge: float, iterations: int = 2, min_facing: float = 0.15,
                huber_px: float = 4.0, use_view: bool = True, use_expression: bool = True, log=print):
    """(offset (N, 3), delta (E, N, 3), view (3, N, 3)) metres: each landmark's constant offset, its displacement
    linear in the expression weights and in view_features (how far the face is turned); `ridge` (px² per
    mm²·frame-weight) pulls all but the offset toward 0."""
    E = model.n_expression
    nv = 3 if use_view else 0
    ne = E if use_expression else 0
    feats = [np.concatenate([np.ones((len(s.R), 1)), s.expression[:, :ne], view_features(s.R)[:, :nv]], 1)
             for s in samples]
    P = 1 + ne + nv
    x = np.zeros((N_FACE, P, 3))
    reg = np.full(3 * P, ridge * 1e6)  # per metre²
    reg[:3] = 1e-3
    for it in range(iterations):
        A, b, rms = _systems(model, samples, tri, bary, feats, min_facing, huber_px, state=x)
        A[:, np.arange(3 * P), np.arange(3 * P)] += reg
        b -= reg * x.reshape(N_FACE, -1)
        x = x + np.linalg.solve(A, b[..., None])[..., 0].reshape(N_FACE, P, 3)
        log(f"  offsets, pass {it + 1}: rms {rms:.2f} px before")
    n_all = len(tri)
    offset = np.zeros((n_all, 3))
    delta = np.zeros((E, n_all, 3))
    view = np.zeros((3, n_all, 3))
    offset[:N_FACE] = x[:, 0]
    delta[:ne, :N_FACE] = x[:, 1:1 + ne].transpose(1, 0, 2)
    view[:nv, :N_FACE] = x[:, 1 + ne:].transpose(1, 0, 2)
    return offset, delta, view


def residual_weights(model, samples, tri, bary, offset, delta, view, min_facing: float = 0.15,
                     floor_px: float = 1.0) -> np.ndarray:
    """(478,) inverse-variance weights of the points (1 for the steadiest, irises 0): the spread of each point's
    remaining reprojection error over the frames (a robust σ: 1.4826 × median |error| per axis), floored."""
    errs = []
    for s in samples:
        pts = _points(model, s, tri, bary)[:, :N_FACE] + offset[None, :N_FACE] \
            + np.tensordot(s.expression, delta[:, :N_FACE], 1) + np.tensordot(view_features(s.R), view[:, :N_FACE], 1)
        uv, _ = _projection(np.einsum("tij,tnj->tni", s.R, pts) + s.t[:, None], s.K)
        r = uv - s.marks[:, :N_FACE]
        ok = np.isfinite(r).all(-1) & (_facing(model, s, tri, bary)[:, :N_FACE] > min_facing)
        errs.append(np.where(ok[..., None], np.abs(r), np.nan))
    e = np.concatenate(errs)
    sigma = 1.4826 * np.nanmedian(e, axis=(0, 2))
    w = np.zeros(len(tri))
    w[:N_FACE] = 1.0 / np.maximum(np.nan_to_num(sigma, nan=1e3), floor_px) ** 2
    return w / w.max()


def reprojection_rms(model, samples, tri, bary, offset=None, delta=None, view=None,
                     min_facing: float = 0.15) -> float:
    """RMS pixel distance between the detections and the (table's) landmark points of the known surfaces."""
    sq, cnt = 0.0, 0
    for s in samples:
        pts = _points(model, s, tri, bary)[:, :N_FACE]
        if offset is not None:
            pts = pts + offset[None, :N_FACE] + np.tensordot(s.expression, delta[:, :N_FACE], 1)
        if view is not None:
            pts = pts + np.tensordot(view_features(s.R), view[:, :N_FACE], 1)
        Xc = np.einsum("tij,tnj->tni", s.R, pts) + s.t[:, None]
        uv, _ = _projection(Xc, s.K)
        r = uv - s.marks[:, :N_FACE]
        ok = np.isfinite(r).all(-1) & (_facing(model, s, tri, bary)[:, :N_FACE] > min_facing)
        sq += float((r[ok] ** 2).sum())
        cnt += int(ok.sum())
    return (sq / max(cnt, 1)) ** 0.5
