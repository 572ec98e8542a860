"""Head pose (yaw, pitch, roll in degrees) from landmarks, relative to the photo's camera.

Sign convention (DESIGN's world frame: +X the subject's left, +Z up, the face looks toward −Y):
  yaw   > 0: the subject turned toward their own left (the nose points toward +X, the viewer's right)
  pitch > 0: the subject looks up
  roll  > 0: the head tilts toward the subject's left shoulder (the crown moves toward +X)
The head rotation H (head frame → world, camera looking along +Y at the face) is H = Rz(yaw)·Rx(−pitch)·Ry(roll).
`rotation_cam` is the head → OpenCV-camera rotation R = R0·H, where R0 maps world axes to camera axes for a
camera that faces the subject (camera x = +X, camera y = −Z, camera z = +Y).

Angles are relative to the line of sight to the face (as the face appears in the photo), not to the lens's
unknown optical axis. Three estimators, best first: MediaPipe's 478-point mesh (its own relative depth, works to near-profile),
dlib's 68 points against ICT-FaceKit's 3D landmarks (PnP), and the detector's 5 keypoints (PnP).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

R0 = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # world → camera for a camera facing the subject

# Symmetric MediaPipe mesh pairs (subject's right, subject's left): outer eye corners, cheek edges, mouth
# corners, inner eye corners, brow ends.
_MESH_PAIRS = [(33, 263), (234, 454), (61, 291), (133, 362), (70, 300), (127, 356)]
_MESH_UP = (152, 10)  # chin → top of the forehead
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


def pose_from_mesh(mesh: np.ndarray) -> dict:
    """Pose from MediaPipe's (478, 3) mesh: the face's left-right and up axes measured directly in 3D.

    "Up" is measured from the mouth corners to the outer eye corners, a line that leans back from vertical in a
    neutral head by the angle ICT-FaceKit's neutral head gives it (`_eye_mouth_tilt`, 12.8°).
    """
    m = np.asarray(mesh, dtype=np.float64)
    x = np.mean([m[l] - m[r] for r, l in _MESH_PAIRS], axis=0)  # toward the subject's left
    d = (m[33] + m[263]) / 2 - (m[61] + m[291]) / 2  # mouth-corner midpoint → outer-eye-corner midpoint
    x /= np.linalg.norm(x)
    d = d - (d @ x) * x
    d /= np.linalg.norm(d)
    t = np.radians(_eye_mouth_tilt())
    up = np.cos(t) * d + np.sin(t) * np.cross(x, d)
    back = np.cross(up, x)  # the head's +Y (out of the back of the head) = Z × X
    return _result(np.stack([x, back, up], axis=1), "mesh478")


@functools.lru_cache(maxsize=1)
def _eye_mouth_tilt() -> float:
    """Degrees the mouth-corner → outer-eye-corner line leans back from vertical in ICT-FaceKit's neutral head."""
    try:
        t = ict_landmarks_68()
    except FileNotFoundError:
        return 12.84  # the value the archive gives, for installs without it
    v = (t[36] + t[45]) / 2 - (t[48] + t[54]) / 2
    return float(np.degrees(np.arctan2(v[1], v[2])))


@functools.lru_cache(maxsize=1)
def ict_landmarks_68() -> np.ndarray:
    """ICT-FaceKit's 68 landmark positions (68, 3) in DESIGN's world frame, metres (head-model neutral)."""
    path = _ict_path()
    d = np.load(path)
    p = d["neutral"][d["landmarks_68"]].astype(np.float64) / 100.0  # cm → m, ICT frame (+Y up, face +Z)
    return np.stack([p[:, 0], -p[:, 2], p[:, 1]], axis=1)  # → world: X = x, Y = −z, Z = y


def _ict_path() -> Path:
    """ICT-FaceKit Light's .npz, found by the head model's own lookup ($HEADFORGE_ICT, else the model store)."""
    from ..headmodel.ict import default_ict_path

    path = default_ict_path()
    if path is None or not path.is_file():
        raise FileNotFoundError("ICT-FaceKit archive (ict_face_light.npz) not found")
    return path


def _solve_pnp(obj: np.ndarray, img: np.ndarray, image_size: tuple[int, int], source: str) -> dict | None:
    import cv2

    w, h = image_size
    f = 1.2 * max(w, h)  # an assumed ~50 mm-equivalent lens; pose angles depend on it only weakly
    # Principal point on the face: the pose is measured relative to the line of sight to the face (how the face
    # appears), the same as the mesh estimate, not relative to the unknown optical axis.
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
        obj = ict_landmarks_68()[_RIGID_68]
    except FileNotFoundError:
        return None
    return _solve_pnp(obj, np.asarray(lm68, dtype=np.float64)[_RIGID_68], image_size, "dlib68")


def pose_from_kps5(kps5: np.ndarray, image_size: tuple[int, int]) -> dict | None:
    try:
        t = ict_landmarks_68()
    except FileNotFoundError:
        return None
    obj = np.stack([t[36:42].mean(0), t[42:48].mean(0), t[30], t[48], t[54]])  # (5, 3) subject R, L, nose, ...
    return _solve_pnp(obj, np.asarray(kps5, dtype=np.float64), image_size, "kps5")
