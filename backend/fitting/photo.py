"""Fit a head model to one photo's 2D landmarks under a perspective (pinhole, OpenCV) camera.

Unknowns: head rotation + translation in the camera (the head model stays canonical at the world origin; the
fit returns the camera w2c), identity coefficients (N(0, 1) prior) and expression weights (in the model's
range, sparse prior, never both keys of an opposite pair: EXCLUSIVE_KEYS). Landmarks are surface points given
as (triangle, barycentrics) of the model, so the 68 iBUG points (vertices) and MediaPipe's 478 (our
correspondence) go through the same code. Landmarks on the side turned away from the camera (profile photos)
get no weight: the fit uses the visible side only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FaceError
from ..render.raster import vertex_normals
from .solve import damping, exclusive_lstsq


@dataclass
class PhotoFit:
    K: np.ndarray  # (3, 3)
    w2c: np.ndarray  # (4, 4) world (head-model frame, metres) → OpenCV camera
    identity: np.ndarray  # (K_id,)
    expression: np.ndarray  # (E,)
    residual_px: np.ndarray  # (N,) per-landmark reprojection error, pixels
    weights: np.ndarray  # (N,) weights used (0 = ignored: hidden side or unusable)
    inter_ocular_px: float
    stats: dict = field(default_factory=dict)

    @property
    def error_iod(self) -> float:
        """RMS reprojection error of the used landmarks as a fraction of the inter-ocular distance."""
        w = self.weights > 0
        return float(np.sqrt(np.mean(self.residual_px[w] ** 2)) / self.inter_ocular_px)


# Expression keys of opposite motions (per side where the model splits them): a fit may use one of each pair,
# never both. Unconstrained, the instant fit put both on real faces, e.g. insightface's group photo t1 face 4:
# eyeLookDownRight 1.00 with eyeLookUpRight 0.49 and eyeLookInRight 0.44 with eyeLookOutRight 0.73, a contradiction
# the portrait pose carried to the rig and to engines. fit_photo refits the expression under the rule with the
# free fit's pose and identity (see there). Measured on the astronaut, group t1 faces 0-5 and the cameraman
# (MediaPipe 478; 7 of the 8 had a pair both active), error in % of the eye distance: the lid points' error
# 5.23 -> 5.22 (cameraman), 5.07 -> 4.94 (face 4), 3.00 -> 2.98 (face 2), the others equal or 0.01 lower; the
# reprojection error of all points unchanged to +0.04 (cameraman 7.99 -> 8.03, face 4 7.74 -> 7.76). Netting each
# pair after the fit instead (keep the difference) moved the lid points: 5.51, 5.13, 3.02. Face 4 becomes
# eyeLookDownRight 0.86 alone and eyeLookOutRight 0.35 alone, eyeWideRight 0.83 -> 1.00 and eyeSquintRight
# 0 -> 0.12 making up the lid. On synthetic ICT heads (4 expressions looking down, sideways or up with lid and
# brow keys, 10 heads each, ±20° yaw, 0.5 px landmark noise and 2 px more on the lid points) the mean |ARKit
# error| over the 52 keys 0.0376 -> 0.0371, over the 14 eye keys 0.0619 -> 0.0599 (0.0660 -> 0.0594 on the 12
# fits whose eye pairs were both active); 32 of the 40 free fits had a pair both active, none after. dlib identity
# distance (benchmarks/complete_head_identity.py; astronaut, cameraman, faces 2 and 4; the head's shape unchanged,
# the texture baked through the refitted lids): the neutral rig's mean over 0/±30° 0.550 -> 0.552 (cells -0.006 to
# +0.007; the astronaut, whose only change is jawLeft/Right 0.07/0.02 -> 0.06/0, moves up to 0.012 with it), at
# the photo's pose 0.528 -> 0.533 (face 4 at +30° 0.513 -> 0.559, at 0° 0.441 -> 0.430).
EXCLUSIVE_KEYS = (("eyeLookDown", "eyeLookUp"), ("eyeLookIn", "eyeLookOut"), ("jawLeft", "jawRight"),
                  ("mouthLeft", "mouthRight"))


def exclusive_pairs(expression_names: list[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j) of the model's expressions of EXCLUSIVE_KEYS (none for a PCA model such as FLAME)."""
    idx = {n: i for i, n in enumerate(expression_names)}
    return [(idx[x + s], idx[y + s]) for x, y in EXCLUSIVE_KEYS for s in ("", "_L", "_R")
            if x + s in idx and y + s in idx]


def both_active(theta: np.ndarray, pairs) -> bool:
    """Whether some pair (i, j) of `pairs` has theta[i] and theta[j] both above 0."""
    return any(theta[i] > 0 and theta[j] > 0 for i, j in pairs)


def default_focal(width: int, height: int) -> float:
    """Focal length (px) of a portrait lens: 25° field of view across the long side."""
    return 0.5 * max(width, height) / np.tan(np.radians(12.5))


def default_intrinsics(width: int, height: int, focal: float | None = None) -> np.ndarray:
    """K (3, 3) of a photo's camera: default_focal unless `focal` is given, the principal point at the centre."""
    f = focal or default_focal(width, height)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


def landmark_basis(model, tri: np.ndarray, bary: np.ndarray, n_identity: int):
    """Landmark points as linear functions of the coefficients: (mean (N, 3), id (K, N, 3), ex (E, N, 3))."""
    f = model.faces[tri]  # (N, 3)

    def at(arr):  # arr (..., V, 3) → (..., N, 3)
        return np.einsum("nk,...nkc->...nc", bary, arr[..., f, :])

    return (at(model.neutral.astype(np.float64)), at(model.identity_basis[:n_identity].astype(np.float64)),
            at(model.expression_basis.astype(np.float64)))


def fit_photo(model, points_2d: np.ndarray, tri: np.ndarray, bary: np.ndarray, image_size: tuple[int, int], *,
              weights: np.ndarray | None = None, eye_pairs: tuple | None = None, focal: float | None = None,
              intrinsics: np.ndarray | None = None, n_identity: int = 60, identity_prior: float = 1e-5,
              expression_prior: float = 1e-5, iterations: int = 20, exclusive: bool = True) -> PhotoFit:
    """Fit to `points_2d` (N, 2) px, landmark n at surface point (tri[n], bary[n]) of the model.

    `eye_pairs` = (indices of the subject's right eye points, of the left eye points) among the N, to measure
    the inter-ocular distance; `weights` (N,) down-weight sliding contour points. The camera's intrinsics are
    `intrinsics` (3, 3) when given, else default_intrinsics(image_size, focal).

    With `exclusive`, the expression's opposite keys (EXCLUSIVE_KEYS) are never both active: where the free fit
    has a pair both above 0, the expression alone is fitted again under that rule (solve.exclusive_lstsq in each
    step), the pose and identity kept, so that the other keys (eyeWide, eyeSquint, eyeBlink, the brows) make up
    the lids. Measured against the pose, identity and expression all refitted under the rule: the landmarks'
    cost 0.1-0.2 % higher, but the lid points nearer the photo's on the two faces that changed most (cameraman
    5.22 vs 5.29 % of the eye distance, group face 4 4.94 vs 5.05), the coefficients about as near a synthetic
    truth (mean |ARKit error| 0.0371 vs 0.0363, eye keys 0.0599 vs 0.0598), and the head's shape, so its
    texture and identity figures, exactly the free fit's (refitted, the cameraman's moved 0.4 mm RMS and its
    scalp texture with it). 0-0.09 s more CPU a photo (2-10 iterations).
    """
    import cv2

    pts = np.ascontiguousarray(np.asarray(points_2d, np.float64)[:, :2])
    n_identity = min(n_identity, model.n_identity)
    N = len(pts)
    if N < 6 or not np.isfinite(pts).all():
        raise FaceError("Too few usable face landmarks to fit the head model.", code="rig.no_landmarks")
    w_in = np.ones(N) if weights is None else np.asarray(weights, np.float64)
    K = default_intrinsics(*image_size, focal) if intrinsics is None else np.asarray(intrinsics, np.float64)
    f = float(K[0, 0])
    mean, idb, exb = landmark_basis(model, tri, bary, n_identity)
    if eye_pairs is not None:
        iod = float(np.linalg.norm(pts[list(eye_pairs[0])].mean(0) - pts[list(eye_pairs[1])].mean(0)))
    else:
        iod = float(np.linalg.norm(pts.max(0) - pts.min(0))) / 2.5
    if iod < 4:
        raise FaceError(f"The face is too small in the photo ({iod:.1f} px between the eyes).",
                        code="rig.face_too_small")

    # 1. rigid pose from the neutral head (PnP), robust to a few bad points.
    ok, rvec, tvec = cv2.solvePnP(np.ascontiguousarray(mean), pts, K, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        raise FaceError("Could not find a head pose that matches the landmarks.", code="rig.pose_failed")
    ok, rvec, tvec = cv2.solvePnP(np.ascontiguousarray(mean), pts, K, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if tvec[2, 0] <= 0:  # the mirror solution behind the camera
        raise FaceError("The landmarks do not form a plausible face.", code="rig.pose_failed")

    # 2. visibility: landmarks whose surface normal faces away from the camera get no weight.
    vis = _facing(model, tri, bary, rvec, tvec) > -0.05
    w = w_in * vis
    if (w > 0).sum() < 6:
        raise FaceError("Too few landmarks lie on the visible side of the face.", code="rig.no_landmarks")

    # 3. joint fit by damped Gauss-Newton; each step is a bounded linear least squares (expressions in range).
    R, _ = cv2.Rodrigues(rvec)
    tv = tvec.ravel().astype(np.float64)
    a = np.zeros(n_identity)
    b = np.zeros(model.n_expression)
    lo, hi = model.expression_range
    sw = np.sqrt(w / w.sum())[:, None] / iod  # (N, 1) row scale: cost = Σ w ||r / iod||² / Σ w
    Ka, Ke = n_identity, model.n_expression
    n_par = 6 + Ka + Ke
    prior = np.concatenate([np.zeros(6), np.full(Ka, np.sqrt(identity_prior)), np.full(Ke, np.sqrt(expression_prior))])

    def residual(R, tv, a, b):
        return _project_terms(K, R, tv, a, b, mean, idb, exb, pts)[:3]

    def cost(r, a, b):
        return float((sw**2 * r**2).sum() + identity_prior * (a**2).sum() + expression_prior * (b**2).sum())

    def descend(R, tv, a, b, pairs=(), expression_only=False):
        """Damped Gauss-Newton from (R, tv, a, b) → (R, tv, a, b, r, c, iterations, converged). The first 5
        iterations move the pose alone; `expression_only`: the pose and identity stay, the expression moves under
        the exclusive `pairs`, leaving a start that breaks them whatever that costs."""
        mu, converged = 1e-3, False
        r, X, Xc = residual(R, tv, a, b)
        c = cost(r, a, b)
        for it in range(iterations):
            rigid_only = it < 5 and not expression_only
            J = (_jacobian(K, R, X, Xc, idb, exb) * sw[:, :, None]).reshape(2 * N, n_par)  # (2N, P)
            rr = (r * sw).reshape(-1)
            theta = np.concatenate([np.zeros(6), a, b])
            # rows: data, priors on the new coefficient values, LM damping
            A = np.concatenate([J, np.diag(prior), np.sqrt(mu) * np.eye(n_par)])
            rhs = -np.concatenate([rr, prior * theta, np.zeros(n_par)])
            lb = np.full(n_par, -np.inf)
            ub = np.full(n_par, np.inf)
            lb[6 + Ka:], ub[6 + Ka:] = lo - b, hi - b
            if rigid_only:
                lb[6:], ub[6:] = 0.0, 0.0
            if expression_only:
                lb[:6 + Ka], ub[:6 + Ka] = 0.0, 0.0
            step = exclusive_lstsq(A, rhs, lb, ub, pairs, theta)
            dR, _ = cv2.Rodrigues(step[:3])
            R_new, tv_new = dR @ R, tv + step[3:6]
            a_new, b_new = a + step[6:6 + Ka], np.clip(b + step[6 + Ka:], lo, hi)
            r_new, X_new, Xc_new = residual(R_new, tv_new, a_new, b_new)
            c_new = cost(r_new, a_new, b_new)
            accept, stop, mu = damping(c, c_new, mu)
            if both_active(theta, pairs):  # the step to the pairs' rule is taken, up or down
                accept, stop = True, False
            if accept:
                R, tv, a, b, r, X, Xc, c = R_new, tv_new, a_new, b_new, r_new, X_new, Xc_new, c_new
                stop = stop and not rigid_only  # the rigid start runs its iterations out
            converged = accept and stop
            if stop:
                break
        return R, tv, a, b, r, c, it + 1, converged

    R, tv, a, b, r, c, its, converged = descend(R, tv, a, b)
    stats = {"focal_px": f, "visible_landmarks": int(vis.sum()), "landmarks": N, "final_cost": c, "iterations": its,
             "converged": converged}
    pairs = [(6 + Ka + i, 6 + Ka + j) for i, j in exclusive_pairs(model.expression_names)] if exclusive else []
    if both_active(np.concatenate([np.zeros(6), a, b]), pairs):
        R, tv, a, b, r, c, its, converged = descend(R, tv, a, b, pairs, expression_only=True)
        stats.update(final_cost=c, exclusive_iterations=its, converged=converged)
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = R, tv
    return PhotoFit(K=K, w2c=w2c, identity=a, expression=b, residual_px=np.linalg.norm(r, axis=1), weights=w,
                    inter_ocular_px=iod, stats=stats)


def fit_photos(model, views: list[dict], *, n_identity: int = 60, identity_prior: float = 1e-5,
               expression_prior: float = 1e-5, iterations: int = 12, exclusive: bool = True) -> list[PhotoFit]:
    """One identity fitted to several photos of one person, a camera pose and an expression per photo.

    `views`: per photo {"points" (N, 2) px, "tri", "bary", "image_size" (W, H), "weights", "eye_pairs", and
    optionally "intrinsics"} as fit_photo takes them. Each photo is first fitted alone (pose, visible landmarks,
    a start); then identity, poses and expressions are refined together by damped Gauss-Newton, each photo's
    landmarks weighted to count as much as another photo's (cost = Σ_photos Σ w ||r / iod||² / Σ w + priors).
    → one PhotoFit per photo, all with the same identity."""
    import cv2

    single = [fit_photo(model, v["points"], v["tri"], v["bary"], v["image_size"], weights=v.get("weights"),
                        eye_pairs=v.get("eye_pairs"), intrinsics=v.get("intrinsics"), n_identity=n_identity,
                        identity_prior=identity_prior, expression_prior=expression_prior, exclusive=exclusive)
              for v in views]
    if len(views) == 1:
        return single
    Ka, Ke = min(n_identity, model.n_identity), model.n_expression
    lo, hi = model.expression_range
    nv = len(views)
    bases = [landmark_basis(model, v["tri"], v["bary"], Ka) for v in views]
    pts = [np.ascontiguousarray(np.asarray(v["points"], np.float64)[:, :2]) for v in views]
    sws = [np.sqrt(f.weights / f.weights.sum())[:, None] / f.inter_ocular_px for f in single]
    Rs = [f.w2c[:3, :3].copy() for f in single]
    ts = [f.w2c[:3, 3].copy() for f in single]
    bs = [f.expression.copy() for f in single]
    a = single[0].identity.copy()  # the first photo (the main one, usually frontal) starts the identity
    n_par = Ka + nv * (6 + Ke)
    prior = np.concatenate([np.full(Ka, np.sqrt(identity_prior))]
                           + [np.concatenate([np.zeros(6), np.full(Ke, np.sqrt(expression_prior))])] * nv)
    pairs = [(Ka + v * (6 + Ke) + 6 + i, Ka + v * (6 + Ke) + 6 + j) for v in range(nv)
             for i, j in (exclusive_pairs(model.expression_names) if exclusive else [])]

    def terms(Rs, ts, a, bs):
        return [_project_terms(f.K, R, t, a, b, *basis, p)
                for f, R, t, b, basis, p in zip(single, Rs, ts, bs, bases, pts)]

    def cost(res, a, bs):
        return float(sum((sw**2 * r[0] ** 2).sum() for sw, r in zip(sws, res)) + identity_prior * (a**2).sum()
                     + expression_prior * sum((b**2).sum() for b in bs))

    res = terms(Rs, ts, a, bs)
    c = cost(res, a, bs)
    mu, it, converged = 1e-3, 0, False
    for it in range(iterations):
        blocks, rr = [], []
        for v, (f, (r, X, Xc), sw) in enumerate(zip(single, res, sws)):
            Jv = (_jacobian(f.K, Rs[v], X, Xc, bases[v][1], bases[v][2]) * sw[:, :, None]).reshape(2 * len(X), -1)
            J = np.zeros((len(Jv), n_par))
            off = Ka + v * (6 + Ke)
            J[:, :Ka] = Jv[:, 6:6 + Ka]
            J[:, off:off + 6] = Jv[:, :6]
            J[:, off + 6:off + 6 + Ke] = Jv[:, 6 + Ka:]
            blocks.append(J)
            rr.append((r * sw).reshape(-1))
        theta = np.concatenate([a] + [np.concatenate([np.zeros(6), b]) for b in bs])
        A = np.concatenate(blocks + [np.diag(prior), np.sqrt(mu) * np.eye(n_par)])
        rhs = -np.concatenate(rr + [prior * theta, np.zeros(n_par)])
        lb, ub = np.full(n_par, -np.inf), np.full(n_par, np.inf)
        for v, b in enumerate(bs):
            off = Ka + v * (6 + Ke) + 6
            lb[off:off + Ke], ub[off:off + Ke] = lo - b, hi - b
        step = exclusive_lstsq(A, rhs, lb, ub, pairs, theta)
        a_new = a + step[:Ka]
        Rs_new, ts_new, bs_new = [], [], []
        for v in range(nv):
            off = Ka + v * (6 + Ke)
            Rs_new.append(cv2.Rodrigues(step[off:off + 3])[0] @ Rs[v])
            ts_new.append(ts[v] + step[off + 3:off + 6])
            bs_new.append(np.clip(bs[v] + step[off + 6:off + 6 + Ke], lo, hi))
        res_new = terms(Rs_new, ts_new, a_new, bs_new)
        c_new = cost(res_new, a_new, bs_new)
        accept, stop, mu = damping(c, c_new, mu)
        if accept:
            Rs, ts, a, bs, res, c = Rs_new, ts_new, a_new, bs_new, res_new, c_new
        converged = accept and stop
        if stop:
            break
    out = []
    for v, f in enumerate(single):
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = Rs[v], ts[v]
        out.append(PhotoFit(K=f.K, w2c=w2c, identity=a, expression=bs[v], residual_px=np.linalg.norm(res[v][0], axis=1),
                            weights=f.weights, inter_ocular_px=f.inter_ocular_px,
                            stats={**f.stats, "joint_cost": c, "joint_iterations": it + 1, "joint_converged": converged,
                                   "photos": nv, "single_photo_error_iod": f.error_iod}))
    return out


def _project_terms(K, R, tv, a, b, mean, idb, exb, pts):
    """Reprojection residuals (N, 2) px of the landmark points under (R, tv) with coefficients (a, b), the
    points in the head frame X (N, 3) and in the camera Xc (N, 3)."""
    X = mean + np.tensordot(a, idb, 1) + np.tensordot(b, exb, 1)
    Xc = X @ R.T + tv
    uv = Xc @ K.T
    return uv[:, :2] / uv[:, 2:3] - pts, X, Xc


def _jacobian(K, R, X, Xc, idb, exb) -> np.ndarray:
    """d residual / d (rotation ω (3), translation (3), identity (Ka), expression (E)): (N, 2, 6 + Ka + E)."""
    N = len(X)
    z = Xc[:, 2]
    dproj = np.zeros((N, 2, 3))
    dproj[:, 0, 0] = K[0, 0] / z
    dproj[:, 0, 2] = -K[0, 0] * Xc[:, 0] / z**2
    dproj[:, 1, 1] = K[1, 1] / z
    dproj[:, 1, 2] = -K[1, 1] * Xc[:, 1] / z**2
    RX = X @ R.T
    d_rot = np.zeros((N, 3, 3))  # d Xc / d ω = −[RX]×
    d_rot[:, 0, 1], d_rot[:, 0, 2] = RX[:, 2], -RX[:, 1]
    d_rot[:, 1, 0], d_rot[:, 1, 2] = -RX[:, 2], RX[:, 0]
    d_rot[:, 2, 0], d_rot[:, 2, 1] = RX[:, 1], -RX[:, 0]
    dXc = np.concatenate([d_rot, np.broadcast_to(np.eye(3), (N, 3, 3)),
                          np.einsum("ij,knj->nik", R, idb), np.einsum("ij,knj->nik", R, exb)], axis=2)
    return np.einsum("nij,njk->nik", dproj, dXc)


def _facing(model, tri, bary, rvec, tvec) -> np.ndarray:
    """Cosine between each landmark's surface normal and the direction to the camera (N,)."""
    import cv2


    R, _ = cv2.Rodrigues(rvec)
    n = vertex_normals(model.neutral.astype(np.float64), model.faces)
    f = model.faces[tri]
    nl = np.einsum("nk,nkc->nc", bary, n[f])
    p = np.einsum("nk,nkc->nc", bary, model.neutral[f].astype(np.float64))
    pc = p @ R.T + tvec.ravel()
    nc = nl @ R.T
    to_cam = -pc / np.linalg.norm(pc, axis=1, keepdims=True)
    return (nc * to_cam).sum(axis=1) / np.maximum(np.linalg.norm(nc, axis=1), 1e-12)


def vertex_landmarks(vertex_ids: np.ndarray, model) -> tuple[np.ndarray, np.ndarray]:
    """(tri, bary) that pin landmarks to given vertices (e.g. ICT's 68 landmark vertices)."""
    tri = np.empty(len(vertex_ids), np.int64)
    bary = np.zeros((len(vertex_ids), 3))
    # any triangle containing the vertex, with barycentric 1 at that corner
    order = np.argsort(model.faces.ravel(), kind="stable")
    flat = model.faces.ravel()[order]
    pos = np.searchsorted(flat, vertex_ids)
    if np.any(pos >= len(flat)) or np.any(flat[np.minimum(pos, len(flat) - 1)] != vertex_ids):
        raise ValueError("a landmark vertex is not used by any triangle")
    corner = order[pos]
    tri[:] = corner // 3
    bary[np.arange(len(vertex_ids)), corner % 3] = 1.0
    return tri, bary


# Landmark sets: which points are used and how. iBUG 68: 0-16 jaw contour (sliding), eyes 36-41 (subject's
# right, image left for a frontal face) and 42-47.
IBUG_CONTOUR = np.arange(17)
IBUG_EYES = (tuple(range(36, 42)), tuple(range(42, 48)))
# MediaPipe: iris centres 468 (subject's right... MediaPipe's own "left" is image-left for a selfie) and 473.
MP_EYES = ((33, 133), (362, 263))
