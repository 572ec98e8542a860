"""Face video → Take: per-frame MediaPipe landmarks, our head-model fit of the ARKit weights, head pose and gaze.

1. Decode (OpenCV's FFmpeg backend: any size, the common containers; frame times from the stream, so variable
   frame rates keep their timing) and find MediaPipe's 478 landmarks in every frame (the face library's mesh,
   in tracking mode where `mediapipe.solutions` exists, else its models through OpenCV: backend/face).
2. The identity of the head model (ICT-FaceKit) is fitted once, on a few frames (fitting/photo.py), then kept.
3. Every frame: head rotation + translation and the model's expression weights by damped Gauss-Newton with box
   bounds, warm-started from the previous frame, landmarks on the side turned away from the camera left out.
   Where MediaPipe's points sit on the model comes from the table learned on synthetic performances
   (video_correspondence.py: surface points, offsets with the expression and the head's turn, per-point weights)
   for faces at least ~60 px between the eyes, else from the photo fit's correspondence.
   Each step is a 59-variable box-bounded quadratic (analytic Jacobian, normal equations, the exact active-set
   solver fitting/solve.box_qp). With the learned table the pose is then freed of the expression prior's pull
   (one iterated-Tikhonov step: the prior shrinks the expression toward neutral and the head turns to make up
   for it, ~1.8° at −30° on exact landmarks) and the expression re-solved at that pose, under a prior shaped by
   how faces move (keys that move together, FACS_PRIOR_BETA): ~10 ms a frame on one core. The iris centres then
   give each eye's yaw/pitch about its eyeball centre. Expression weights map to the 52 ARKit names
   (headmodel/arkit.py).
4. The blinks come from the eyes' pixels, not the fit: the landmark fit cannot close the lids (MediaPipe's lid
   points stay on the eyeball), so each eye's patch, cut out along its corners while the video is decoded, goes
   through a small regressor learned on synthetic renders (eye_openness.py) whose estimate replaces eyeBlink.
   Likewise the keys the landmarks confound or shrink: eyeWide and the look keys from the eye patches and contours
   (eye_keys.py), the brows from a patch over both brows cut while decoding (brow_keys.py), each blended with the
   fit's value per key in the share chosen on held-out synthetic clips. Where the pixels are gated off (small
   eyes, real eyes unlike the renders) the fit's eyeBlink is re-zeroed on the take's own open lid (calibrate_open).
5. One-Euro smoothing (strength 0 = none): its cutoff rises with speed, and the eyelid channels get a high
   speed gain, so blinks and fast mouth closures survive (the head a higher one than the eyes: HEAD_BETA). Takes
   whose landmarks are noisier than NOISE_REF (small or side-on faces; the noise read off the fit's misfit) have
   the weights' cutoffs lowered in proportion (smooth_take).
   Frames without a face hold the last pose, then ease to neutral; they are reported (take.info["lost_frames"]).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import Cancelled
from ..events import CancelToken, ProgressEvent
from ..face.landmarks import image_mesh_478, mediapipe_runtime
from ..fitting.correspondence import landmark_points, load_mediapipe_correspondence
from ..fitting.landmarks import MP_FACE_OVAL
from ..fitting.photo import MP_EYES, default_focal, fit_photo, landmark_basis
from ..fitting.solve import box_qp, damping
from ..headmodel import load_ict
from ..headmodel.arkit import ARKIT_52, arkit_sources
from ..headmodel.parts import eye_centre
from ..render.raster import vertex_normals
from .brow_keys import BrowKeysModel, brow_patch, load_brow_keys_model
from .eye_keys import EyeKeysModel, load_eye_keys_model
from .eye_openness import EYES, EyeModel, eye_patches, eye_widths, load_eye_model
from .model_file import load_model_file
from .take import AnimationError, Take, matrix_to_euler
from .video_correspondence import VideoCorrespondence, load_video_correspondence, view_features

STAGE = "animate"
IRIS = (468, 473)  # MediaPipe iris centres
R_FRONT = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # world → OpenCV camera of a frontal view
BLINK_NAMES = ("eyeBlinkLeft", "eyeBlinkRight", "mouthClose", "jawOpen")
# with the learned table: these keys' prior × this (chosen on the held-out synthetic clips of
# benchmarks/animate_correspondence.py with the debiased pose: jawOpen 0.075 → 0.072, the mean 0.150 → 0.149)
VIDEO_PRIOR_SCALE = {"jawOpen": 0.1, "mouthClose": 0.1}
# with the learned table, the expression re-solved at the debiased pose under a prior shaped by how faces move:
# λ-scaled (1 − β) I + β Pf, Pf the inverse second moment of FACS-style expressions (prototypes and visemes written
# from the FACS literature: benchmarks/animate_correspondence.facs_precision, shipped in FACS_PRIOR_FILE), so keys
# that move together (the capture's sustained stretch + shrug + roll) are not shrunk apart. β chosen on held-out
# stretches of the real facecap capture (frames 0-79 and 240-334, front and ±15-30°, which benchmarks/animate.py
# does not score): mean over the active keys 0.164 → 0.145 (β 0.3 / 0.7 / 0.85 / 1: 0.159 / 0.152 / 0.149 /
# 0.145); in the pose's solve too it was 0.139 but turned the head worse in two of the six clips (0.96° → 1.12°,
# 1.36° → 1.72°), so the pose keeps the diagonal prior and the head is unchanged. Scored afterwards on
# benchmarks/animate.py's three views: 0.148 / 0.150 / 0.158 → 0.123 / 0.132 / 0.140, jawOpen 0.088 / 0.057 / 0.081 →
# 0.098 / 0.083 / 0.086. The synthetic held-out clips read worse (0.138 → 0.141, FACS clips 0.074 → 0.079): where
# one key of a combination moves alone, its partners are read too
FACS_PRIOR_BETA = 1.0
FACS_PRIOR_FILE = Path(__file__).resolve().parent / "data" / "ict_facs_prior.npz"
# the One-Euro speed gain of the eyeBlink channels when they come from the eyes' pixels (eye_openness.py); 4
# (BLINK_NAMES' gain) shifts the onsets of 3-frame blinks: on the held-out synthetic clips, smoothing 0.5, 14 → 18
# of 30 blinks found within a frame, false ones 3 → 2
PIXEL_BLINK_GAIN = 16.0
# the eyes' pixels give a take's blinks only if the regressor's median over the take is at most this for both eyes.
# On the synthetic held-out clips the medians are 0.00-0.03 (eyes closed 11-19 % of the time); on real photos of
# open eyes (insightface's group photo) it read 1.00 / 0.67 and 0.38 / 0.02 for two of the faces (dark lashes and
# make-up it never saw), the astronaut 0.00 / 0.00: a take of either would have shut the avatar's eyes throughout
LOOK_DEG_PER_UNIT = 30.0  # an eyeLook key at 1 turns the eye this far (the facecap capture's relation, rms 0.04°)
PIXEL_BLINK_MEDIAN_MAX = 0.25
# the head's One-Euro speed coefficient (× 1/strength; the eyes keep 2): at 2 the filter lagged a real photo rolled at
# up to 38°/s by ~0.5° (roll error 0.74-0.95° rms at smoothing 0.5 against 0.24-0.63° unsmoothed); 16 chosen on the
# astronaut's two clips (the largest keeping a still head's frame-to-frame jitter within 10 % of 2's), held out:
# four other real faces' roll 0.54-0.95° → 0.39-0.51°, still heads' jitter within 0.01°, benchmarks/animate.py's
# head error front / ±30° 1.778° / 1.780° / 2.426° → 1.782° / 1.810° / 2.432° (benchmarks/animate_real.py)
HEAD_BETA = 16.0
# the fit's eyeBlink where the pixels are gated off (calibrate_open): the take's lower quartile plus 3× its
# frame-to-frame noise reads as open, as face-capture apps calibrate on a neutral face. On still real faces
# (benchmarks/animate_real.py, 7 faces gated to the fit) the open eyes read medians 0.03-0.33, peaks 0.08-0.54 before,
# 0.00 and 0.04-0.18 after (no smoothing); on 9 synthetic clips at 320×240 forced to the fit's eyeBlink the
# eyeBlink MAE 0.114 → 0.105, blinks found 0 → 0 of 33 (the fit's lids barely move), false 1 → 0. The quantile and
# noise multiple chosen of 0.1 / 0.25 / 0.5 and 0-5 on both sets: the median (0.5) scored a little better, but
# zeroes lids held partly closed for half a take
OPEN_QUANTILE, OPEN_NOISE_K = 0.25, 3.0
# the landmarks' frame-to-frame noise (IOD units, landmark_noise) up to which the weights' One-Euro filter keeps the
# strength it was chosen at: the noisiest of benchmarks/animate.py's synthetic clips at 320×240 (1.0-4.0e-3; real
# frontal faces of 38-85 px between the irises 1.0-1.7e-3, insightface's 27 px group face 5.3e-3, the ¾-profile
# cameraman 6.4e-3); noisier takes are smoothed harder (smooth_take)
NOISE_REF = 4e-3


@dataclass
class FrameFit:
    R: np.ndarray  # (3, 3) model → camera
    t: np.ndarray  # (3,)
    expression: np.ndarray  # (E,)
    cost: float


# ---------------------------------------------------------------- video

def open_video(path):
    """(cv2.VideoCapture, info dict); AnimationError for a missing, unreadable or audio-only file."""
    path = Path(path)
    if not path.is_file():
        raise AnimationError(f"{path.name} does not exist.", code="animate.video_missing")
    if path.stat().st_size == 0:
        raise AnimationError(f"{path.name} is empty.", code="animate.video_unreadable")
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened() and _audio_only(path):
        raise AnimationError(f"{path.name} is an audio file: there is no picture to track.",
                             code="animate.video_audio_only", hint="Choose the video of the performance.")
    if not cap.isOpened():
        raise AnimationError(f"{path.name} cannot be opened as a video (corrupt, or audio only?).",
                             code="animate.video_unreadable",
                             hint="Use a video file with a picture track (MP4, MOV, MKV, AVI, WebM).")
    info = {"frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), "fps": float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
            "width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), "height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}
    if info["width"] <= 0 or info["height"] <= 0:
        cap.release()
        raise AnimationError(f"{path.name} has no picture track (an audio-only file?).",
                             code="animate.video_no_picture")
    return cap, info


def _audio_only(path: Path) -> bool:
    """WAV, MP3, FLAC or an M4A/AAC container, by its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    return (head[:4] == b"RIFF" and head[8:12] == b"WAVE") or head[:3] == b"ID3" or head[:4] == b"fLaC" \
        or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf1", b"\xff\xf9") \
        or (head[4:8] == b"ftyp" and head[8:11] in (b"M4A", b"M4B"))


def video_frames(path, max_frames: int | None = None):
    """Yield (seconds, RGB uint8 (H, W, 3)) for each decoded frame; the first item is the info dict."""
    cap, info = open_video(path)
    yield info
    try:
        n = 0
        last_t = -1.0
        while max_frames is None or n < max_frames:
            ok, bgr = cap.read()
            if not ok or bgr is None:
                break
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if not np.isfinite(t) or t <= last_t:  # containers without timestamps: the nominal rate
                t = last_t + 1.0 / (info["fps"] or 30.0) if last_t >= 0 else 0.0
            last_t = t
            n += 1
            yield t, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


# ---------------------------------------------------------------- landmarks

class MeshTracker:
    """MediaPipe's 478-point mesh frame after frame: its tracking graph where `mediapipe.solutions` exists, else the
    OpenCV runtime tracking the same way (each frame's region from the previous frame's mesh, the detector only when
    the face is lost)."""

    def __init__(self):
        self.runtime = mediapipe_runtime()
        self._mesh = None
        self._last = None  # the OpenCV runtime's previous mesh
        if self.runtime == "solutions":
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1,
                                                         refine_landmarks=True, min_detection_confidence=0.5,
                                                         min_tracking_confidence=0.5)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        if self._mesh is None:
            self._last = image_mesh_478(rgb, self._last)
            return self._last
        res = self._mesh.process(np.ascontiguousarray(rgb))
        if not res.multi_face_landmarks:
            return None
        h, w = rgb.shape[:2]
        return np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark], np.float64)

    def close(self):
        if self._mesh is not None:
            self._mesh.close()


# ---------------------------------------------------------------- per-frame fit

class FaceFitter:
    """Pose + expression of a fixed identity from 478 landmarks; gaze from the iris centres."""

    def __init__(self, model, identity: np.ndarray, K: np.ndarray, tri, bary, weights: np.ndarray,
                 expression_prior: float = 1e-4, temporal_prior: float = 0.0, min_facing: float = 0.05,
                 offset: np.ndarray | None = None, delta: np.ndarray | None = None, view: np.ndarray | None = None,
                 debias_pose: bool = False, coupled_prior: tuple | None = None):
        """`expression_prior`: a strength, or one per expression (E,); `debias_pose`: see `fit`; `coupled_prior`
        ((E,) strengths, (E, E) M): a prior with couplings between the keys, λ b² + bᵀMb, in place of
        `expression_prior` where the expression is solved at a held pose (the debiased pose's second solve; in the
        pose's solve too it turned the head worse: FACS_PRIOR_BETA)."""
        self.model, self.K = model, K
        n_id = len(identity)

        mean, idb, exb = landmark_basis(model, tri, bary, n_id)
        self.base = mean + np.tensordot(identity, idb, 1)  # (N, 3)
        if offset is not None:  # the learned table's offsets (video_correspondence.py)
            self.base = self.base + offset
            exb = exb + delta
        self.view = view  # (3, N, 3): offsets with the face's turn from the camera (taken at the start pose)
        self.rest_base = self.base
        self.exb = exb  # (E, N, 3)
        self.exb_flat = np.ascontiguousarray(exb.reshape(-1, 3))  # (E·N, 3)
        self.exb_rows = self.exb_flat.reshape(len(exb), -1)  # (E, N·3)
        self.tolerance = 1e-6
        self.w = weights.astype(np.float64)
        self.w[list(IRIS)] = 0.0
        for i in range(468, 478):
            self.w[i] = 0.0  # irises move with the eyeballs, which the expression basis does not rotate
        self.lo, self.hi = model.expression_range
        self.expression_prior, self.temporal_prior = expression_prior, temporal_prior
        self.debias_pose = debias_pose
        self.coupled_prior = coupled_prior
        self.min_facing = min_facing
        verts = model.vertices(identity=identity)
        pts = landmark_points(model, verts, tri, bary)

        n = landmark_points(model, vertex_normals(verts, model.faces), tri, bary)
        self.normals = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)  # (N, 3) at rest
        self.eyes = {}
        for side, group in (("eye_left", "eyeball_left"), ("eye_right", "eyeball_right")):
            c = eye_centre(verts[model.groups[group]])
            iris = min(IRIS, key=lambda i: np.linalg.norm(pts[i] - c))
            self.eyes[side] = (iris, c, pts[iris])

    def _project(self, Xc):
        uv = Xc @ self.K.T
        return uv[:, :2] / uv[:, 2:3]

    def fit(self, pts: np.ndarray, start: FrameFit, iod: float, iterations: int = 6) -> FrameFit:
        """Damped Gauss-Newton from `start` (warm start); expression in the model's range. With `debias_pose` the
        pose is then moved to where it would be without the expression prior's shrinkage (to first order) and
        held while the expression is solved again under the prior."""
        if not self.debias_pose:
            return self._solve(pts, start, iod, iterations)
        posed = self._solve(pts, start, iod, iterations, debias=True)
        return self._solve(pts, replace(posed, expression=start.expression), iod, iterations, fix_pose=True)

    def _solve(self, pts, start: FrameFit, iod: float, iterations: int, fix_pose: bool = False,
               debias: bool = False) -> FrameFit:
        if self.view is not None:
            self.base = self.rest_base + np.tensordot(view_features(start.R), self.view, 1)
        # landmarks on the side turned away from the camera (a turned head's far cheek) get no weight
        Xc0 = self._shape(start.expression) @ start.R.T + start.t
        facing = -((self.normals @ start.R.T) * Xc0).sum(axis=1) / np.linalg.norm(Xc0, axis=1)
        w = self.w * (facing > self.min_facing)
        sw = np.sqrt(w / w.sum())[:, None] / iod
        E = self.exb.shape[0]
        R, t, b = start.R.copy(), start.t.copy(), start.expression.copy()
        b_prev = start.expression
        lam, M = self.expression_prior, None  # M (E, E): the prior's couplings
        if self.coupled_prior is not None and fix_pose:
            lam, M = self.coupled_prior
        prior = np.concatenate([np.zeros(6), np.broadcast_to(np.sqrt(lam), (E,))])
        tprior = np.concatenate([np.zeros(6), np.full(E, np.sqrt(self.temporal_prior))])

        def residual(R, t, b):
            X = self._shape(b)
            Xc = X @ R.T + t
            return self._project(Xc) - pts, X, Xc

        def cost(r, b):
            c = float((sw**2 * r**2).sum() + (lam * b**2).sum()
                      + self.temporal_prior * ((b - b_prev) ** 2).sum())
            return c if M is None else c + float(b @ M @ b)

        r, X, Xc = residual(R, t, b)
        c = cost(r, b)
        mu = 1e-4
        prior2 = prior**2 + tprior**2
        lb = np.full(6 + E, -np.inf)
        ub = np.full(6 + E, np.inf)
        if fix_pose:
            lb[:6] = ub[:6] = 0.0
        for _ in range(iterations):
            J = self._jacobian(R, X, Xc, sw)  # (2N, 6 + E), rows weighted
            rr = (r * sw).reshape(-1)
            theta = np.concatenate([np.zeros(6), b])
            theta_prev = np.concatenate([np.zeros(6), b_prev])
            # normal equations of [J; diag(prior); diag(tprior); √mu I] step = −[r; prior θ; tprior (θ − θ₀); 0],
            # columns scaled to unit norm (the pose and expression columns differ by orders of magnitude)
            G = J.T @ J
            G[np.diag_indices_from(G)] += prior2 + mu
            g = -(J.T @ rr + prior**2 * theta + tprior**2 * (theta - theta_prev))
            if M is not None:
                G[6:, 6:] += M
                g[6:] -= M @ b
            s = 1.0 / np.sqrt(np.diag(G))
            lb[6:], ub[6:] = self.lo - b, self.hi - b
            step = s * box_qp(G * s[:, None] * s[None, :], g * s, lb / s, ub / s)
            step[6:] = np.clip(step[6:], lb[6:], ub[6:])
            dR, _ = cv2.Rodrigues(step[:3])
            R_n, t_n, b_n = dR @ R, t + step[3:6], np.clip(b + step[6:], self.lo, self.hi)
            r_n, X_n, Xc_n = residual(R_n, t_n, b_n)
            c_n = cost(r_n, b_n)
            accept, stop, mu = damping(c, c_n, mu, self.tolerance, mu_min=1e-8, mu_max=1e3)
            if accept:
                R, t, b, r, X, Xc, c = R_n, t_n, b_n, r_n, X_n, Xc_n, c_n
            if stop:
                break
        if debias:
            # one step of iterated Tikhonov on the free variables: at the regularised minimum Jᵀr = −λθ, so the
            # unregularised one lies (JᵀJ + λ)⁻¹ λθ away; only its pose part is taken
            J = self._jacobian(R, X, Xc, sw)
            free = np.concatenate([np.ones(6, bool), (b > self.lo + 1e-9) & (b < self.hi - 1e-9)])
            G = (J.T @ J)[np.ix_(free, free)]
            G[np.diag_indices_from(G)] += prior2[free] + mu
            theta = np.concatenate([np.zeros(6), b])
            pull = prior**2 * theta
            if M is not None:
                G += np.pad(M, ((6, 0), (6, 0)))[np.ix_(free, free)]
                pull[6:] += M @ b
            step = np.linalg.solve(G, pull[free])
            dR, _ = cv2.Rodrigues(step[:3])
            R, t = dR @ R, t + step[3:6]
        return FrameFit(R=R, t=t, expression=b, cost=c)

    def project(self, f: FrameFit) -> np.ndarray:
        """(N, 2) the model's landmarks at fit `f`, projected."""
        return self._project(self._shape(f.expression) @ f.R.T + f.t)

    def _shape(self, expression):
        return self.base + (expression @ self.exb_rows).reshape(-1, 3)

    def _jacobian(self, R, X, Xc, sw):
        """d(projection)/d(rotation vector, translation, expression) (2N, 6 + E), each point's rows × sw."""
        K = self.K
        N = len(X)
        iz = 1.0 / Xc[:, 2]
        fx, fy = K[0, 0] * iz, K[1, 1] * iz
        u, v = Xc[:, 0] * iz, Xc[:, 1] * iz
        RX = X @ R.T
        # d(Xc)/d(ω) for a left-multiplied rotation exp([ω]×) R at ω = 0: d(ω × RX)/dω = −[RX]×
        dXc = np.zeros((N, 3, 6 + self.exb.shape[0]))
        dXc[:, 1, 0], dXc[:, 2, 0] = -RX[:, 2], RX[:, 1]
        dXc[:, 0, 1], dXc[:, 2, 1] = RX[:, 2], -RX[:, 0]
        dXc[:, 0, 2], dXc[:, 1, 2] = -RX[:, 1], RX[:, 0]
        dXc[:, :, 3:6] = np.eye(3)
        dXc[:, :, 6:] = (self.exb_flat @ R.T).reshape(-1, N, 3).transpose(1, 2, 0)
        J = np.empty((N, 2, dXc.shape[2]))
        J[:, 0] = fx[:, None] * (dXc[:, 0] - u[:, None] * dXc[:, 2])
        J[:, 1] = fy[:, None] * (dXc[:, 1] - v[:, None] * dXc[:, 2])
        J *= sw[:, :, None]
        return J.reshape(2 * N, -1)

    def gaze(self, pts: np.ndarray, f: FrameFit) -> dict:
        """{eye: (yaw, pitch, 0)} relative to the head, from the iris centres (Gauss-Newton on 2 angles)."""
        out = {}
        for side, (iris, c, p0) in self.eyes.items():
            target = pts[iris, :2]
            ang = np.zeros(2)

            def proj(a):
                X = c + _rz(a[0]) @ _rx(a[1]) @ (p0 - c)
                return self._project((f.R @ X + f.t)[None])[0]

            for _ in range(4):
                r = proj(ang) - target
                J = np.stack([(proj(ang + d) - proj(ang - d)) / 2e-4 for d in np.eye(2) * 1e-4], axis=1)
                step = np.linalg.solve(J.T @ J + 1e-6 * np.eye(2), -J.T @ r)
                ang = np.clip(ang + step, -0.8, 0.8)
                if np.abs(step).max() < 1e-5:
                    break
            out[side] = np.array([ang[0], ang[1], 0.0])
        return out


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def load_facs_precision(model, path: Path = FACS_PRIOR_FILE) -> np.ndarray | None:
    """The shipped (E, E) precision of the coupled prior for `model`'s expressions, None for a model with other
    expressions; AnimationError animate.facs_prior_missing / animate.facs_prior_invalid (model_file)."""
    a, d, _ = load_model_file(
        path, ("precision",), what="coupled expression prior", code="animate.facs_prior",
        hint="Reinstall HeadForge, or re-make the file with benchmarks/animate_correspondence.py --facs-prior.",
        check=lambda a, d: a["precision"].shape == (len(d["names"]),) * 2
        and np.allclose(a["precision"], a["precision"].T))
    return a["precision"] if d["names"].tolist() == list(model.expression_names) else None


# ---------------------------------------------------------------- smoothing and tracking loss

def one_euro(x: np.ndarray, times: np.ndarray, min_cutoff: float, beta, d_cutoff: float = 1.0) -> np.ndarray:
    """One-Euro filter (Casiez et al. 2012) of x (T, C) sampled at `times`; beta scalar or (C,)."""
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    if len(x) == 0:
        return out
    beta = np.broadcast_to(np.asarray(beta, np.float64), x.shape[1:])
    out[0] = x[0]
    dx_hat = np.zeros(x.shape[1:])

    def alpha(cutoff, te):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / te)

    for i in range(1, len(x)):
        te = max(times[i] - times[i - 1], 1e-6)
        dx = (x[i] - out[i - 1]) / te
        a_d = alpha(d_cutoff, te)
        dx_hat = a_d * dx + (1 - a_d) * dx_hat
        cutoff = min_cutoff + beta * np.abs(dx_hat)
        a = alpha(cutoff, te)
        out[i] = a * x[i] + (1 - a) * out[i - 1]
    return out


def smooth_take(take: Take, strength: float, gains: dict | None = None) -> Take:
    """One-Euro smoothing of weights and rotations; strength 0 returns the take unchanged, 1 is strongest.
    The head follows speed more readily than the eyes (HEAD_BETA). Eyelid and jaw/lip-closure channels get a 4×
    speed gain so blinks and closures keep their depth; `gains` ({name: gain}) overrides a channel's. A take whose
    landmarks are noisier than NOISE_REF (take.info["landmark_noise_iod"]: small or side-on faces) has its weights'
    cutoffs (both terms) × (NOISE_REF / noise)²: a first-order low-pass passes white noise in proportion to the root
    of its cutoff, so the weights keep the jitter a take at NOISE_REF would have."""
    if strength <= 0:
        return take
    s = float(np.clip(strength, 0.0, 1.0))
    min_cutoff = 10.0 ** (1.0 - 1.3 * s)  # 10 Hz (light) … 0.5 Hz (strong)
    gains = {**{n: 4.0 for n in BLINK_NAMES}, **(gains or {})}
    noise = take.info.get("landmark_noise_iod") or 0.0
    k = min(1.0, (NOISE_REF / noise) ** 2) if noise > 0 else 1.0
    beta_w = np.array([gains.get(n, 1.0) for n in take.names]) * 0.5 / s * k

    rot = {r: (None if getattr(take, r) is None else one_euro(getattr(take, r), take.times, min_cutoff,
                                                               (HEAD_BETA if r == "head" else 2.0) / s))
           for r in ("head", "eye_left", "eye_right")}
    w = np.clip(one_euro(take.weights, take.times, min_cutoff * k, beta_w), 0.0, 1.0)
    return replace(take, weights=w, **rot, info={**take.info, "smoothing": s, "smoothing_cutoff_scale": k})


def robust_sigma(d: np.ndarray, order: int) -> float:
    """σ of white noise from its `order`-th differences d (any shape): 1.4826 · median |d| / √(C(2·order, order))."""
    return float(1.4826 * np.median(np.abs(d)) / np.sqrt({1: 2.0, 2: 6.0}[order])) if d.size else 0.0


def calibrate_open(blink: np.ndarray, quantile: float = OPEN_QUANTILE, k: float = OPEN_NOISE_K):
    """The fit's eyeBlink (T, 2) re-zeroed per eye on the take's open lid: the level `quantile` of the take plus
    k × its frame-to-frame noise (a dead zone) reads 0, 1 stays 1 → (calibrated (T, 2), the levels [2])."""
    levels = [float(np.quantile(b, quantile)) + k * robust_sigma(np.diff(b), 1) if len(b) else 0.0
              for b in blink.T]
    lv = np.minimum(np.array(levels), 0.9)
    return np.clip((blink - lv) / (1.0 - lv), 0.0, 1.0), [round(v, 4) for v in levels]


def landmark_noise(resid: np.ndarray) -> float | None:
    """The landmarks' frame-to-frame noise (IOD units) from the fit's misfit (T, N, 2) of consecutive frames: what
    the model's pose and expression do not explain and changes from frame to frame (second differences, robust)."""
    d2 = resid[2:] - 2 * resid[1:-1] + resid[:-2]
    d2 = d2[np.isfinite(d2)]
    return robust_sigma(d2, 2) if d2.size else None


def fill_lost(values: np.ndarray, found: np.ndarray, hold: int, ease: int) -> np.ndarray:
    """(T, C) values with rows where `found` is False replaced: the last good row is held for `hold` frames,
    then eased (smoothstep) to zero over `ease` frames; rows before the first good one take the first good."""
    out = values.copy()
    good = np.flatnonzero(found)
    if len(good) == 0:
        return np.zeros_like(values)
    out[: good[0]] = values[good[0]]
    last, gap = None, 0
    for i in range(good[0], len(values)):
        if found[i]:
            last, gap = values[i], 0
            continue
        gap += 1
        k = 0.0 if gap <= hold else min((gap - hold) / max(ease, 1), 1.0)
        out[i] = last * (1.0 - k * k * (3 - 2 * k))
    return out


# ---------------------------------------------------------------- the pipeline

def _emit(on_event, fraction, message, **data):
    if on_event is not None:
        on_event(ProgressEvent("progress", STAGE, fraction=float(fraction), overall=float(fraction), message=message,
                               data=data))


def video_landmarks(path, *, max_frames: int | None = None, on_event=None, cancel: CancelToken | None = None):
    """(times (T,) s, [(478, 3) | None] per frame, video info) for every decoded frame; the info carries each
    frame's two eye patches ("eye_patches" (T, 2, h, w) uint8, zeros where no face was found) for the blinks, gaze
    and lids, and its brow patch ("brow_patches" (T, h, w)) for the brows."""
    path = Path(path)
    frames = video_frames(path, max_frames)
    info = next(frames)
    total = max_frames if max_frames else max(info["frames"], 1)
    tracker = MeshTracker()
    times, marks, patches, brows = [], [], [], []
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        for i, (t, rgb) in enumerate(frames):
            if cancel is not None and cancel.cancelled:
                raise Cancelled("Video tracking cancelled; nothing was keyed.")
            times.append(t)
            marks.append(tracker(rgb))
            patches.append(None if marks[-1] is None else eye_patches(rgb, marks[-1]))
            brows.append(None if marks[-1] is None else brow_patch(rgb, marks[-1]))
            if i % 10 == 0:
                _emit(on_event, 0.5 * min(i / total, 1.0), f"Landmarks: frame {i + 1} of ~{total}")
    finally:
        tracker.close()
        frames.close()
    info["landmarks_s"] = time.perf_counter() - t0
    info["landmarks_cpu_s"] = time.process_time() - c0  # every thread of this process (MediaPipe's too)
    info["name"] = path.name
    if times:
        shape = next((p.shape for p in patches if p is not None), None)
        info["eye_patches"] = None if shape is None else np.stack(
            [np.zeros(shape, np.uint8) if p is None else p for p in patches])
        shape = next((p.shape for p in brows if p is not None), None)
        info["brow_patches"] = None if shape is None else np.stack(
            [np.zeros(shape, np.uint8) if p is None else p for p in brows])
    if not times:
        raise AnimationError(f"{path.name}: no picture could be decoded (corrupt or truncated file?).",
                             code="animate.video_unreadable")
    if info["frames"] > len(times) + 1 and max_frames is None:
        info["truncated"] = True
        _emit(on_event, 0.5, f"{path.name} ends after {len(times)} of {info['frames']} frames (truncated?)")
    return np.asarray(times, np.float64), marks, info


def track_video(path, *, smoothing: float = 0.5, model=None, focal_px: float | None = None,
                max_frames: int | None = None, on_event=None, cancel: CancelToken | None = None, **fit_options) -> Take:
    """Track the face in a video file into a Take (52 ARKit weights, head and eye rotations, frame times from
    the video). Raises AnimationError (animate.video_* / animate.no_face) or Cancelled."""
    t0 = time.perf_counter()
    times, marks, info = video_landmarks(path, max_frames=max_frames, on_event=on_event, cancel=cancel)
    take = fit_landmarks(times, marks, info, smoothing=smoothing, model=model, focal_px=focal_px,
                         on_event=on_event, cancel=cancel, **fit_options)
    take.name = Path(path).stem
    take.info["source"] = str(path)
    total_s = time.perf_counter() - t0
    tm = take.info["timing"]
    # fps_processed: the whole call (imports, model load, the identity fit included); fps_per_frame: the
    # per-frame work only (decode + landmarks + fit), what a longer video runs at; fps_per_frame_cpu: the same
    # from the CPU time it took, what it runs at with a core to itself (the wall-clock figure follows the load)
    tm.update(total_s=total_s, fps_processed=len(times) / max(total_s, 1e-9),
              fps_per_frame=len(times) / max(tm["landmarks_s"] + tm["fit_s"], 1e-9),
              fps_per_frame_cpu=len(times) / max(tm["landmarks_cpu_s"] + tm["fit_cpu_s"], 1e-9))
    _emit(on_event, 1.0, f"Tracked {len(times)} frames at {take.info['timing']['fps_processed']:.1f} fps")
    return take


def fit_landmarks(times, marks, info, *, smoothing: float = 0.5, model=None, focal_px: float | None = None,
                  n_identity: int = 40, expression_prior: float | None = None, temporal_prior: float = 0.0,
                  hold_s: float = 0.3, ease_s: float = 0.5, identity: np.ndarray | None = None, on_event=None,
                  cancel: CancelToken | None = None, correspondence="video", debias_pose: bool | None = None,
                  prior_scale: dict | None = None, prior_coupling: float | None = None,
                  eye_model: EyeModel | str | None = "shipped",
                  eye_keys_model: EyeKeysModel | str | None = "shipped",
                  brow_model: BrowKeysModel | str | None = "shipped") -> Take:
    """The head-model fit of per-frame landmarks (video_landmarks) into a Take.

    `correspondence`: "video" (the table learned from animated renders, video_correspondence.py, where the
    model has one; its expression prior unless `expression_prior` is given), "photo" (the photo fit's), or a
    VideoCorrespondence. `debias_pose` (FaceFitter.fit), `prior_scale` ({expression name: factor on its
    prior}) and `prior_coupling` (β of FACS_PRIOR_BETA: the expression's re-solve at the debiased pose under the
    coupled prior) default, with a table, to True, VIDEO_PRIOR_SCALE and FACS_PRIOR_BETA (as chosen on held-out
    clips), else to off.
    `eye_model` (eyeBlink), `eye_keys_model` (eyeWide, eyeLook*, eyeSquint) and `brow_model` (the brows): the
    pixel regressors ("shipped", a model, or None for the fit's values), used only where the eyes are as large as
    those they learned from and the blink model reads the eyes as open most of the take."""
    model = model or load_ict()
    found = np.array([m is not None for m in marks])
    table = load_video_correspondence(model) if correspondence == "video" else (
        correspondence if isinstance(correspondence, VideoCorrespondence) else None)
    if table is not None and correspondence == "video" and found.any():
        # the table is learned on faces of 75-100 px between the eyes; on smaller faces (measured at 320×240,
        # ~45 px) it does worse than the photo correspondence, so it is used only from 0.8× that size up
        iod = np.median([np.linalg.norm(marks[i][list(MP_EYES[0]), :2].mean(0)
                                        - marks[i][list(MP_EYES[1]), :2].mean(0)) for i in np.flatnonzero(found)])
        if iod < 0.8 * table.info.get("info_iod_px_min", 0.0):
            table = None
    if table is not None:
        tri, bary, offset, delta, view = table.tri, table.bary, table.offset, table.delta, table.view
        expression_prior = table.expression_prior if expression_prior is None else expression_prior
    else:
        tri, bary = load_mediapipe_correspondence(model)
        offset = delta = view = None
        expression_prior = 1e-4 if expression_prior is None else expression_prior
    if debias_pose is None:
        debias_pose = table is not None
    if prior_scale is None:
        prior_scale = VIDEO_PRIOR_SCALE if table is not None else {}
    if prior_scale:
        expression_prior = expression_prior * np.array([prior_scale.get(n, 1.0) for n in model.expression_names])
    if prior_coupling is None:
        prior_coupling = FACS_PRIOR_BETA if table is not None else 0.0
    coupled = None
    Pf = load_facs_precision(model) if prior_coupling > 0 and debias_pose else None
    if Pf is not None:  # λ → (1 − β) λ on the diagonal + β D½ Pf D½ (D = diag λ)
        lam = np.broadcast_to(np.asarray(expression_prior, np.float64), (model.n_expression,))
        d = np.sqrt(lam)
        coupled = ((1.0 - prior_coupling) * lam, prior_coupling * d[:, None] * Pf * d[None, :])
    W, H = info["width"], info["height"]
    if not found.any():
        raise AnimationError(f"No face was found in any of the {len(times)} frames of {info.get('name', 'the video')}.",
                             code="animate.no_face", hint="The face should be visible and at least ~80 px wide.")
    f = focal_px or default_focal(W, H)
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]])
    w_lm = np.ones(478)
    w_lm[list(MP_FACE_OVAL)] = 0.3
    if table is not None and table.weights is not None:
        w_lm = table.weights.copy()
        w_lm[468:] = 1.0  # the irises: for the identity fit (the per-frame fit leaves them to the gaze)
    good = np.flatnonzero(found)
    # identity from up to three frames spread over the video (or given), then kept
    picks = sorted({int(good[0]), int(good[len(good) // 2]), int(good[-1])})
    ids, first = [], None
    for k in picks:
        pf = fit_photo(model, marks[k][:, :2], tri, bary, (W, H), weights=w_lm, eye_pairs=MP_EYES, focal=f,
                       n_identity=n_identity)
        ids.append(pf.identity)
        first = first or pf
    if identity is None:
        identity = np.mean(ids, axis=0)
    fitter = FaceFitter(model, identity, K, tri, bary, w_lm, expression_prior, temporal_prior, offset=offset,
                        delta=delta, view=view, debias_pose=debias_pose, coupled_prior=coupled)
    state = FrameFit(R=first.w2c[:3, :3], t=first.w2c[:3, 3], expression=first.expression, cost=0.0)
    T, E = len(times), model.n_expression
    expr = np.zeros((T, E))
    head = np.zeros((T, 3))
    eyes = {s: np.zeros((T, 3)) for s in ("eye_left", "eye_right")}
    resid = np.full((T, int((fitter.w > 0).sum()), 2), np.nan)  # the fit's misfit per frame (IOD units)
    t_fit, c_fit = time.perf_counter(), time.process_time()
    # the per-frame solves are small (a few hundred by ~60): OpenBLAS's threads only wait for each other, for a busy
    # core most of all (benchmarks/animate.py's front clip on the 2-core machine with another process on one core:
    # 57-61 ms a frame on 2 threads, 9.2-9.4 on one; ~9 ms either way idle), and one thread makes the fit's figures
    # independent of the environment's thread count
    with threadpool_limits(limits=1, user_api="blas"):
        for n, i in enumerate(good):
            if cancel is not None and cancel.cancelled:
                raise Cancelled("Video tracking cancelled; nothing was keyed.")
            pts = marks[i][:, :2]
            iod = float(np.linalg.norm(pts[list(MP_EYES[0])].mean(0) - pts[list(MP_EYES[1])].mean(0)))
            state = fitter.fit(pts, state, max(iod, 4.0))
            resid[i] = (fitter.project(state) - pts)[fitter.w > 0] / max(iod, 4.0)
            expr[i] = state.expression
            head[i] = matrix_to_euler(R_FRONT.T @ state.R)
            for s, v in fitter.gaze(marks[i], state).items():
                eyes[s][i] = v
            if n % 10 == 0:
                _emit(on_event, 0.5 + 0.45 * n / len(good), f"Fitting: frame {i + 1} of {T}")
    fit_s, fit_cpu_s = time.perf_counter() - t_fit, time.process_time() - c_fit
    # ARKit names, tracking loss, smoothing
    src = arkit_sources(model.expression_names)
    weights = np.stack([expr[:, src[n]].mean(axis=1) if n in src else np.zeros(T) for n in ARKIT_52], 1)
    patches = info.get("eye_patches")
    use_pixels = eye_model is not None and patches is not None and len(patches) == T
    if use_pixels:
        eye_model = load_eye_model() if isinstance(eye_model, str) else eye_model
        # the regressor learned on eyes of at least eye_px_min pixels; smaller ones keep the fit's eyeBlink
        eye_px = float(np.median([eye_widths(marks[i]) for i in good]))
        use_pixels = eye_px >= 0.8 * eye_model.info.get("eye_px_min", 0.0)
    pixel_median, use_brows = None, False
    if use_pixels:
        t_eye, c_eye = time.perf_counter(), time.process_time()
        est = eye_model.predict(np.asarray(patches)[good].reshape(-1, *patches.shape[2:])).reshape(len(good), 2)
        # a take's eyes are open most of the time: eyes the regressor reads as closed through most of it are eyes
        # unlike those it learned (real lashes, make-up; PIXEL_BLINK_MEDIAN_MAX), and keep the fit's eyeBlink
        pixel_median = [round(float(m), 3) for m in np.median(est, axis=0)]
        use_pixels = max(pixel_median) <= PIXEL_BLINK_MEDIAN_MAX
        if use_pixels:
            for k, name in enumerate(EYES):
                weights[good, ARKIT_52.index(name)] = est[:, k]
            if eye_keys_model is not None:  # the gaze and lid keys the landmarks confound (eye_keys.py)
                keys_model = load_eye_keys_model() if isinstance(eye_keys_model, str) else eye_keys_model
                keys_model.apply(weights, ARKIT_52, good, np.asarray(patches)[good],
                                 np.stack([marks[i][:, :2] for i in good]))
                # the eyes' rotations from those look keys (ARKit's look keys are the eyes' turn: LOOK_DEG_PER_UNIT);
                # the fit's iris gaze was 9-19° off in yaw and 11-21° in pitch on the benchmark's clips, the keys'
                # 2-8° (benchmarks/animate_journey.py)
                for side, S, sign in (("eye_left", "Left", 1.0), ("eye_right", "Right", -1.0)):
                    out_, in_, up, down = (weights[good, ARKIT_52.index(f"eyeLook{k}{S}")]
                                           for k in ("Out", "In", "Up", "Down"))
                    a = np.radians(LOOK_DEG_PER_UNIT)
                    eyes[side][good] = np.stack([sign * a * (out_ - in_), a * (down - up), np.zeros(len(good))], 1)
            brow_patches = info.get("brow_patches")
            use_brows = brow_model is not None and brow_patches is not None and len(brow_patches) == T
            if use_brows:  # the brows the fit reads at a fraction of their amplitude (brow_keys.py)
                brows_model = load_brow_keys_model() if isinstance(brow_model, str) else brow_model
                brows_model.apply(weights, ARKIT_52, good, np.asarray(brow_patches)[good])
        fit_s += time.perf_counter() - t_eye  # the blinks' share of the per-frame work
        fit_cpu_s += time.process_time() - c_eye
    blinks_from = "pixels" if use_pixels else "fit"
    open_level = None
    if not use_pixels:  # the fit's lids on real open eyes read partly closed: that take's "open" is its zero
        bi = [ARKIT_52.index(n) for n in EYES]
        weights[np.ix_(good, bi)], open_level = calibrate_open(weights[np.ix_(good, bi)])
    use_brows = use_pixels and use_brows
    times = np.asarray(times) - times[0]
    fps = info["fps"] if info["fps"] > 0 else (1.0 / np.median(np.diff(times)) if T > 1 else 30.0)
    hold, ease = int(round(hold_s * fps)), int(round(ease_s * fps))
    weights = fill_lost(weights, found, hold, ease)
    head = fill_lost(head, found, hold, ease)
    eyes = {s: fill_lost(v, found, hold, ease) for s, v in eyes.items()}
    lost = [int(i) for i in np.flatnonzero(~found)]
    take = Take(times=times, names=ARKIT_52, weights=weights, fps=float(fps), head=head, **eyes, name="video",
                info={"format": "video", "size": [W, H], "focal_px": f, "lost_frames": lost,
                      "correspondence": "photo" if table is None else "video", "blinks_from": blinks_from,
                      "prior_coupling": float(prior_coupling) if coupled is not None else 0.0,
                      "eye_keys_from": "pixels" if use_pixels and eye_keys_model is not None else "fit",
                      "brows_from": "pixels" if use_brows else "fit",
                      "blinks_pixel_median": pixel_median, "blinks_open_level": open_level,
                      "landmark_noise_iod": landmark_noise(resid),
                      "identity": np.asarray(identity).tolist(),
                      "timing": {"landmarks_s": info.get("landmarks_s", 0.0), "fit_s": fit_s,
                                 "landmarks_cpu_s": info.get("landmarks_cpu_s", 0.0), "fit_cpu_s": fit_cpu_s}})
    take = smooth_take(take, smoothing, {n: PIXEL_BLINK_GAIN for n in EYES} if blinks_from == "pixels" else None)
    if pixel_median is not None and blinks_from == "fit" and on_event is not None:
        on_event(ProgressEvent("warning", STAGE, fraction=1.0, overall=1.0,
                               message="Blinks, gaze and brows taken from the landmarks: the eye model reads this "
                                       f"face's eyes as closed most of the time (median {max(pixel_median):.2f}), "
                                       "unlike the eyes it learned", data={"blinks_pixel_median": pixel_median}))
    if lost and on_event is not None:
        on_event(ProgressEvent("warning", STAGE, fraction=1.0, overall=1.0,
                               message=f"No face in {len(lost)} of {T} frames (held, then eased to neutral)",
                               data={"lost": lost}))
    return take
