"""2D facial landmark detectors that ship their weights: MediaPipe Face Mesh (478 points, Apache-2.0) and
dlib's 68-point predictor (face_recognition_models; non-commercial training data).

The rig stage reads landmarks from face/analysis.json; these helpers serve the head-model correspondence
computation, benchmarks and tests.
"""
from __future__ import annotations

import numpy as np

from ..errors import FaceError
from ..face.landmarks import image_mesh_478

# MediaPipe Face Mesh index sets (contours in drawing order; single points).
MP_FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
                148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
MP_LIPS_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
MP_LIPS_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
MP_EYE_R = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
MP_EYE_L = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
MP_BROW_R = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
MP_BROW_L = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
MP_CHIN, MP_NOSE_TIP, MP_FOREHEAD = 152, 1, 10
MP_JAW_R, MP_JAW_L = 172, 397  # the jaw's corners
MP_CHEEK_R, MP_CHEEK_L = 234, 454  # the face's widest points (beside the eyes)
MP_IRIS = (468, 473)  # the iris centres (refined mesh): the subject's right, left


def mediapipe_478(image: np.ndarray) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) → (478, 3) [x px, y px, z px-scaled] of the largest face, or None when none is found
    (MediaPipe's mesh in whichever runtime this Python has: face/landmarks.py)."""
    return image_mesh_478(image)


def dlib_68(image: np.ndarray) -> np.ndarray | None:
    """RGB uint8 (H, W, 3) → (68, 2) iBUG points of the largest face, or None."""
    import dlib
    import face_recognition_models

    det = dlib.get_frontal_face_detector()
    pred = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    img = np.ascontiguousarray(image[..., :3])
    rects = det(img, 1)
    if len(rects) == 0:
        return None
    r = max(rects, key=lambda r: r.width() * r.height())
    s = pred(img, r)
    return np.array([[s.part(i).x, s.part(i).y] for i in range(68)], np.float64)


def require(points, what: str):
    if points is None:
        raise FaceError(f"No face landmarks ({what}) were found in the photo.", code="face.no_landmarks")
    return points
