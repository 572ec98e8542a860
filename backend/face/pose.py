"""Head pose (yaw, pitch, roll in degrees) from landmarks, relative to the photo's camera.

Sign convention (DESIGN's world frame: +X the subject's left, +Z up, the face looks toward −Y):
  yaw   > 0: the subject turned toward their own left (the nose points toward +X, the viewer's right)
  pitch > 0: the subject looks up
  roll  > 0: the head tilts toward the subject's left shoulder (the crown moves toward +X)
The head rotation H (head frame → world, camera looking along +Y at the face) is H = Rz(yaw)·Rx(−pitch)·Ry(roll).
`rotation_cam` is the head → OpenCV-camera rotation R = R0·H, where R0 maps world axes to camera axes for a
camera that faces the subject (camera x = +X, camera y = −Z, camera z = +Y). Zero is ICT-FaceKit's neutral head
seen from straight in front (the frame the head model, the rig and the multi-view rings share).

Angles are relative to the line of sight to the face (as the face appears in the photo), not to the lens's
unknown optical axis. Every estimator is a PnP fit of 2D points to the 3D points where the same detector puts
them on ICT-FaceKit's neutral head (`POSE_POINTS`: measured on renders of the model, so a detector's own
conventions, e.g. where it puts the nose tip or MediaPipe's points inside its face crop, do not bias the angles).
Best first: MediaPipe's 478-point mesh (its rigid interior: eyes, brows, nose, cheeks; works to near-profile),
dlib's 68 points (nose, eyes, mouth corners) and the detector's 5 keypoints.
`python -m headforge.backend.face.pose_points MODELS_ROOT` re-measures `POSE_POINTS` (backend/face/pose_points.py).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import ModelMissingError
from ..headmodel.ict import default_ict_path, load_ict

R0 = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # world → camera for a camera facing the subject

POSE_POINTS = Path(__file__).resolve().parents[1] / "headmodel" / "data" / "ict_pose_points.npz"
SOURCES = {"mesh478": 478, "dlib68": 68, "kps5": 5}
_RIGID_68 = list(range(27, 48)) + [48, 54]  # nose, eyes, mouth corners (no jaw contour, no brows)


def euler_from_head_rotation(h: np.ndarray) -> dict:
    """(3, 3) head rotation in the world frame → {"yaw_deg", "pitch_deg", "roll_deg"}."""
    from scipy.spatial.transform import Rotation

    yaw, b, roll = Rotation.from_matrix(h).as_euler("ZXY", degrees=True)
    return {"yaw_deg": float(yaw), "pitch_deg": float(-b), "roll_deg": float(roll)}


def head_rotation_from_euler(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("ZXY", [yaw_deg, -pitch_deg, roll_deg], degrees=True).as_matrix()


def _result(r_cam: np.ndarray, source: str, **extra) -> dict:
    # Snap to the nearest rotation (SVD) in case the axes were only near-orthogonal.
    u, _, vt = np.linalg.svd(r_cam)
    r_cam = u @ np.diag([1, 1, np.linalg.det(u @ vt)]) @ vt
    out = euler_from_head_rotation(R0.T @ r_cam)
    out = {k: round(v, 2) for k, v in out.items()}
    out.update(source=source, rotation_cam=np.round(r_cam, 5).tolist(), **extra)
    return out


def _rigid_mesh_points() -> np.ndarray:
    """MediaPipe mesh indices the pose uses (`mesh478_rigid`, chosen by `rigid_mesh_subset` when measured)."""
    return np.load(POSE_POINTS)["mesh478_rigid"]


def rigid_mesh_subset(hits: np.ndarray) -> np.ndarray:
    """Mesh indices seen on every calibration render, not on the face oval (a silhouette, view-dependent), the
    lips (expressions) or the irises (gaze). Needs `mediapipe.solutions` (build time only)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL, FACEMESH_IRISES, FACEMESH_LIPS

    skip = {i for edges in (FACEMESH_FACE_OVAL, FACEMESH_LIPS, FACEMESH_IRISES) for e in edges for i in e}
    return np.array([i for i in range(468) if hits[i] == hits.max() and i not in skip], np.int64)


@functools.lru_cache(maxsize=1)
def model_points() -> dict[str, np.ndarray]:
    """{source: (N, 3)} where each detector's points lie on ICT-FaceKit's neutral head, world frame, metres.
    Raises FileNotFoundError without the ICT-FaceKit archive."""
    model = load_ict(_ict_path())
    z = np.load(POSE_POINTS)
    v = model.neutral.astype(np.float64)
    return {name: np.einsum("nk,nkc->nc", z[f"{name}_bary"].astype(np.float64), v[model.faces[z[f"{name}_tri"]]])
            for name in SOURCES}


def pose_from_mesh(mesh: np.ndarray, image_size: tuple[int, int] | None = None) -> dict:
    """Pose from MediaPipe's (478, ≥2) mesh (pixel x, y). Without `image_size` the lens is assumed from the
    face's size (a face a third of the frame wide). Raises ModelMissingError without ICT-FaceKit."""
    try:
        obj = model_points()["mesh478"]
    except FileNotFoundError as e:
        raise ModelMissingError("The head pose needs ICT-FaceKit Light (its 3D face points), which is not "
                                "installed.", code="model.ict_missing",
                                hint="headforge models download ict-facekit, or set HEADFORGE_ICT.") from e
    idx = _rigid_mesh_points()
    img = np.asarray(mesh, dtype=np.float64)[idx, :2]
    return _solve_pnp(obj[idx], img, image_size, "mesh478")


@functools.lru_cache(maxsize=1)
def ict_landmarks_68() -> np.ndarray:
    """ICT-FaceKit's 68 landmark positions (68, 3) in DESIGN's world frame, metres (head-model neutral)."""
    path = _ict_path()
    d = np.load(path)
    p = d["neutral"][d["landmarks_68"]].astype(np.float64) / 100.0  # cm → m, ICT frame (+Y up, face +Z)
    return np.stack([p[:, 0], -p[:, 2], p[:, 1]], axis=1)  # → world: X = x, Y = −z, Z = y


def _ict_path() -> Path:
    """ICT-FaceKit Light's .npz, found by the head model's own lookup ($HEADFORGE_ICT, else the model store)."""
    path = default_ict_path()
    if path is None or not path.is_file():
        raise FileNotFoundError("ICT-FaceKit archive (ict_face_light.npz) not found")
    return path


def _solve_pnp(obj: np.ndarray, img: np.ndarray, image_size: tuple[int, int] | None, source: str) -> dict | None:
    import cv2

    # An assumed ~50 mm-equivalent lens (1.2 × the frame's long side; without the frame's size, a face a third
    # of the frame wide); pose angles depend on it only weakly.
    f = 1.2 * max(image_size) if image_size else 3.6 * max(np.ptp(img, axis=0))
    # Principal point on the face: the pose is measured relative to the line of sight to the face (how the face
    # appears), not relative to the unknown optical axis.
    c = img.mean(0)
    k = np.array([[f, 0, c[0]], [0, f, c[1]], [0, 0, 1]], dtype=np.float64)
    # Start from a frontal head 10 face-widths away so the iterative solver cannot flip behind the camera.
    rvec0 = cv2.Rodrigues(R0)[0]
    tvec0 = np.array([[0.0], [0.0], [f * 0.09 / max(np.ptp(img[:, 0]), 1.0)]])
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, None, rvec0, tvec0, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return None
    r_cam = cv2.Rodrigues(rvec)[0]
    proj, _ = cv2.projectPoints(obj, rvec, tvec, k, None)
    err = float(np.sqrt(np.mean(np.sum((proj[:, 0] - img) ** 2, axis=1))))
    return _result(r_cam, source, reprojection_px=round(err, 2))


def pose_from_68(lm68: np.ndarray, image_size: tuple[int, int]) -> dict | None:
    try:
        obj = model_points()["dlib68"][_RIGID_68]
    except FileNotFoundError:
        return None
    return _solve_pnp(obj, np.asarray(lm68, dtype=np.float64)[_RIGID_68], image_size, "dlib68")


def pose_from_kps5(kps5: np.ndarray, image_size: tuple[int, int]) -> dict | None:
    """Pose from the detector's 5 keypoints (subject's right eye, left eye, nose tip, right and left mouth corner)."""
    try:
        obj = model_points()["kps5"]
    except FileNotFoundError:
        return None
    return _solve_pnp(obj, np.asarray(kps5, dtype=np.float64), image_size, "kps5")
