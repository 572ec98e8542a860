"""2D facial landmark detectors that ship their weights: MediaPipe Face Mesh (478 points, Apache-2.0) and
dlib's 68-point predictor (face_recognition_models; non-commercial training data).

The rig stage reads landmarks from face/analysis.json; these helpers serve the head-model correspondence
computation, benchmarks and tests.
"""
from __future__ import annotations

import numpy as np

from ..errors import FaceError
from ..face.landmarks import image_mesh_478


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
