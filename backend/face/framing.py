"""The multi-view model's input framing: a square, white-background head-and-shoulders crop laid out like the
reference repository's example portraits (`fixtures/idts/framing/`), recorded as a photo → crop affine.

Layout measured from the three reference examples (512² RGBA) with MediaPipe's mesh (`measure_layout`):
  eye midpoint (iris centres) x / size: 0.503, 0.497, 0.504  → EYE_X = 0.501
  eye midpoint y / size:                 0.447, 0.423, 0.393  → EYE_Y = 0.421
  eye–mouth distance / size (3D mesh):   0.198, 0.271, 0.224  → EYE_MOUTH = 0.231
(see tests/face/test_framing.py, which re-measures them). The crop's resolution is 512 (stage 2's input; stage 1
resizes it to 256), and the later centre crop of SPEC 4.2 is then the identity.
"""
from __future__ import annotations

import functools

import numpy as np

from .pose import _ict_path, ict_landmarks_68

CROP_SIZE = 512
EYE_X, EYE_Y, EYE_MOUTH = 0.501, 0.421, 0.231
WHITE = (255, 255, 255)


def eye_mouth_points(kps5: np.ndarray, mesh: np.ndarray | None):
    """(eye midpoint, mouth midpoint) as 3-vectors in pixels: the mesh's iris centres and mouth corners (with its
    relative depth) when present, else the detector's keypoints (depth 0)."""
    if mesh is not None:
        m = np.asarray(mesh, dtype=np.float64)
        return (m[468] + m[473]) / 2, (m[61] + m[291]) / 2
    k = np.asarray(kps5, dtype=np.float64)
    eye, mouth = k[:2].mean(0), k[3:5].mean(0)
    return np.append(eye, 0.0), np.append(mouth, 0.0)


def measure_layout(mesh: np.ndarray, size: int) -> dict:
    """Where a crop puts the face: eye midpoint and eye–mouth distance as fractions of the crop size."""
    eye, mouth = eye_mouth_points(None, mesh)
    return {"eye_x": eye[0] / size, "eye_y": eye[1] / size, "eye_mouth": np.linalg.norm(mouth - eye) / size}


@functools.lru_cache(maxsize=1)
def _head_centre_depth() -> float:
    """How far behind the eye midpoint the head's centre lies, in eye–mouth distances (ICT-FaceKit's neutral
    head: the middle of the skull's front-to-back extent at eye height)."""
    try:
        t = ict_landmarks_68()
        d = np.load(_ict_path())
        v = d["neutral"].astype(np.float64) / 100.0
        v = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)  # world frame, metres
    except FileNotFoundError:
        return 1.35
    eye = (t[36:42].mean(0) + t[42:48].mean(0)) / 2
    mouth = (t[48] + t[54]) / 2
    band = v[(np.abs(v[:, 2] - eye[2]) < 0.01) & (np.abs(v[:, 0]) < 0.02)]  # midline slice at eye height
    centre_y = (band[:, 1].min() + band[:, 1].max()) / 2
    return float((centre_y - eye[1]) / np.linalg.norm(mouth - eye))


def framing_affine(kps5: np.ndarray, mesh: np.ndarray | None, rotation_cam: np.ndarray | None,
                   size: int = CROP_SIZE, upright_deg: int = 0) -> tuple[np.ndarray, dict]:
    """The 2×3 affine photo → crop and a record of how it was chosen.

    The anchor is the eye midpoint, moved sideways onto the head's centre line by the head's own front-to-back
    axis (so turned heads and profiles stay centred like frontal ones). The scale makes the
    eye–mouth distance, measured in 3D (mesh) or corrected for foreshortening (pose), match the reference.
    `upright_deg` (a multiple of 90) turns a sideways photo's head upright in the crop.
    """
    eye, mouth = eye_mouth_points(kps5, mesh)
    em = float(np.linalg.norm(mouth - eye))
    if mesh is None and rotation_cam is not None:
        up_xy = np.linalg.norm(np.asarray(rotation_cam)[:2, 2])  # image-plane length of the head's up axis
        em /= max(up_xy, 0.5)
    anchor = eye[:2].copy()
    if rotation_cam is not None:
        back = np.asarray(rotation_cam, dtype=np.float64)[:, 1]  # head +Y (toward the back) in camera axes
        # Horizontal only: yaw moves the eyes off the head's centre line a lot; the pitch estimate carries a
        # bias of ~10° on frontal portraits (see pose.py) that would shift every crop vertically.
        anchor[0] += _head_centre_depth() * em * back[0]
    scale = EYE_MOUTH * size / max(em, 1e-6)
    a = np.radians(upright_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    lin = scale * rot
    target = np.array([EYE_X * size, EYE_Y * size])
    affine = np.concatenate([lin, (target - lin @ anchor)[:, None]], axis=1)  # (2, 3)
    info = {"scale": round(scale, 5), "anchor_px": [round(float(v), 2) for v in anchor],
            "eye_mouth_px": round(em, 2), "upright_deg": int(upright_deg)}
    return affine, info


def warp(image: np.ndarray, affine: np.ndarray, size: int, border=WHITE, linear: bool = True) -> np.ndarray:
    """Resample `image` (H, W[, C]) through `affine` (photo → crop) into size×size; area-averaged first when
    the crop shrinks the photo by more than 2× (no aliasing on big photos)."""
    import cv2

    affine = np.asarray(affine, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    if scale < 0.5:
        f = 1.0 / np.floor(1.0 / scale)  # shrink by a whole factor first, the rest in the warp
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        fx, fy = small.shape[1] / w, small.shape[0] / h
        affine = affine @ np.array([[1 / fx, 0, 0], [0, 1 / fy, 0], [0, 0, 1]])
        image = small
    bv = border if image.ndim == 3 else (border[0] if isinstance(border, tuple) else border)
    return cv2.warpAffine(image, affine, (size, size), flags=cv2.INTER_LINEAR if linear else cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=bv)


def composite_white(rgb: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 and (H, W) matte in [0, 1] → the photo over white."""
    a = matte[..., None].astype(np.float32)
    return np.clip(rgb.astype(np.float32) * a + 255.0 * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


def apply_affine(affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, dtype=np.float64)
    return pts[..., :2] @ np.asarray(affine)[:, :2].T + np.asarray(affine)[:, 2]
