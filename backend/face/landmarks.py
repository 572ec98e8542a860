"""Dense landmarks of one detected face: dlib's 68 points (iBUG 300-W order) and MediaPipe's 478-point mesh.

Both run on the face the detector found (its box and five keypoints), not on detectors of their own, so the
landmarks always belong to the chosen face. Coordinates are pixels of the image given.

MediaPipe runs one of two ways (`mediapipe_runtime()`): its model files through OpenCV's DNN and onnxruntime
(`opencv`: backend/face/blaze.py, every Python; the default, and the only way in an installed backend, which has
no mediapipe package), or mediapipe's own `mediapipe.solutions` (the legacy wheels, Python ≤ 3.12: the development
venv keeps mediapipe 0.10.21 as the reference the tests compare with). Both run the same attention mesh in the
same graph: their points agree to 0.02 % of the face (tests/face/test_mediapipe_opencv.py).
$HEADFORGE_MEDIAPIPE_RUNTIME = solutions | opencv chooses.
"""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np

from ..errors import FaceError
from . import blaze

# MediaPipe mesh indices of the five detector keypoints, image order for a subject facing the camera:
# iris centre (subject's right), iris centre (subject's left), nose tip, mouth corner right, mouth corner left.
MESH_KPS5 = [468, 473, 1, 61, 291]


@functools.lru_cache(maxsize=1)
def _dlib_predictor():
    import dlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
        import face_recognition_models as frm
    return dlib.shape_predictor(frm.pose_predictor_model_location())


def dlib_box(kps5: np.ndarray) -> tuple[float, float, float, float]:
    """The square box dlib's predictor was trained on (its HOG detector's framing), from five keypoints.

    Measured on the astronaut: dlib's HOG box is centred 0.03 eye–mouth distances below the midpoint of the
    eye centre and the mouth centre, with a side of 2.35 eye–mouth distances.
    """
    eyes, mouth = kps5[:2].mean(0), kps5[3:5].mean(0)
    d = float(np.linalg.norm(mouth - eyes))
    c = (eyes + mouth) / 2 + (mouth - eyes) * 0.03
    half = 1.175 * d
    return c[0] - half, c[1] - half, c[0] + half, c[1] + half


def dlib_68(rgb: np.ndarray, kps5: np.ndarray):
    """68 landmarks (68, 2) in iBUG order and dlib's shape object (reused by the identity embedding)."""
    import dlib

    x1, y1, x2, y2 = dlib_box(np.asarray(kps5, dtype=np.float64))
    rect = dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2)))
    shape = _dlib_predictor()(np.ascontiguousarray(rgb), rect)
    pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)  # (68, 2)
    return pts, shape


RUNTIMES = ("solutions", "opencv")
# MediaPipe's face oval (FACEMESH_FACE_OVAL) as a closed loop from the top of the forehead, the subject's left
# side first: the silhouette points, which slide along the cheek contour. Kept here because mediapipe ≥ 0.10.30
# has no `solutions` module to read it from.
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)


@functools.lru_cache(maxsize=1)
def _has_solutions() -> bool:
    try:
        from mediapipe import solutions  # noqa: F401  (gone from mediapipe ≥ 0.10.30)
    except (ImportError, AttributeError):
        return False
    return True


def mediapipe_runtime() -> str:
    """'opencv' (MediaPipe's model files through OpenCV's DNN and onnxruntime; the default) or 'solutions' (the
    mediapipe package's own graphs, where mediapipe 0.10.21 is installed)."""
    want = os.environ.get("HEADFORGE_MEDIAPIPE_RUNTIME", "").strip().lower()
    if want and want not in RUNTIMES:
        raise FaceError(f"HEADFORGE_MEDIAPIPE_RUNTIME={want!r}; choose one of {', '.join(RUNTIMES)}.",
                        code="face.bad_option")
    if want == "solutions" and not _has_solutions():
        raise FaceError("HEADFORGE_MEDIAPIPE_RUNTIME=solutions needs `mediapipe.solutions` (mediapipe ≤ 0.10.21, "
                        "Python ≤ 3.12), which is not installed here.",
                        code="face.bad_option", hint="Unset it: the OpenCV runtime runs the same models.")
    return want or "opencv"


@functools.lru_cache(maxsize=1)
def _mp_face_mesh():
    import mediapipe as mp

    return mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                           min_detection_confidence=0.3)


def face_window(bbox: np.ndarray, scale: float = 2.0) -> tuple[float, float, float]:
    """A square window (x0, y0, side) centred on a face box, `scale` times its longer side."""
    x1, y1, x2, y2 = bbox
    side = scale * max(x2 - x1, y2 - y1)
    return (x1 + x2) / 2 - side / 2, (y1 + y2) / 2 - side / 2, side


def crop_window(rgb: np.ndarray, window, size: int, border_value=(0, 0, 0)) -> np.ndarray:
    """Resample the square `window` (x0, y0, side) of `rgb` to size×size (outside the photo: border_value)."""
    import cv2

    x0, y0, side = window
    s = size / side
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(rgb, m, (size, size), flags=interp, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=border_value)


def mesh_478(rgb: np.ndarray, bbox: np.ndarray, kps5: np.ndarray | None = None, size: int = 384) -> np.ndarray | None:
    """MediaPipe's refined face mesh (478, 3) for the face in `bbox`: x, y pixels, z relative depth in pixels
    (MediaPipe's scale: same units as x, smaller = nearer the camera). None when the mesh finds no face.
    `kps5` (the detector's keypoints) sets the OpenCV runtime's first region's rotation."""
    window = face_window(np.asarray(bbox, dtype=np.float64), 2.0)
    patch = crop_window(rgb, window, size)
    x0, y0, side = window
    if mediapipe_runtime() == "opencv":  # the same window, the same models, the same graph
        s = size / side
        eyes = None if kps5 is None else (np.asarray(kps5, np.float64)[:2] - (x0, y0)) * s
        mesh = blaze.face_mesh(patch, (np.asarray(bbox, np.float64).reshape(2, 2) - (x0, y0)).ravel() * s, eyes)
        if mesh is None:
            return None
        pts = mesh / (size, size, size)
    else:
        result = _mp_face_mesh().process(patch)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        pts = np.array([[p.x, p.y, p.z] for p in lm], dtype=np.float64)  # (478, 3) in [0, 1] of the patch
    return np.stack([x0 + pts[:, 0] * side, y0 + pts[:, 1] * side, pts[:, 2] * side], axis=1)


# Faces smaller than this are landmarked on an upsampled window around them (bicubic). Measured on the astronaut,
# its mirror and greyscale copy shrunk to faces of 25–80 px, against the full-size photo's landmarks: dlib's 68
# points 1.48 → 0.69 % of the face size at a 29 px face, 0.88 → 0.62 % at 49 px; MediaPipe's mesh ≤ 0.1 % better
# (its region is resampled to 192 px anyway), 0.64 → 0.48 % at 45 px with the BlazeFace box.
UPSAMPLE_TO_PX = 128.0
WINDOW_FACES = 4.0  # the upsampled window's side, in face-box sides (holds the mesh's 1.5× region and dlib's box)


def face_landmarks(rgb: np.ndarray, bbox, kps5) -> tuple[np.ndarray, np.ndarray | None]:
    """(dlib's 68 points (68, 2), MediaPipe's 478-point mesh (478, 3) or None) of the face in `bbox` with five
    keypoints `kps5`, in pixels of `rgb`. A face smaller than UPSAMPLE_TO_PX is landmarked on a window of
    WINDOW_FACES box sides around it, upsampled bicubically so the face measures UPSAMPLE_TO_PX."""
    import cv2

    bbox, kps5 = np.asarray(bbox, np.float64), np.asarray(kps5, np.float64)
    size = float(np.sqrt(max(bbox[2] - bbox[0], 0.0) * max(bbox[3] - bbox[1], 0.0)))
    if size <= 0 or size >= UPSAMPLE_TO_PX:
        lm68, _ = dlib_68(rgb, kps5)
        return lm68, mesh_478(rgb, bbox, kps5)
    up = UPSAMPLE_TO_PX / size
    half = WINDOW_FACES / 2 * max(bbox[2] - bbox[0], bbox[3] - bbox[1])
    x0, y0 = (bbox[:2] + bbox[2:]) / 2 - half
    n = int(np.ceil(2 * half * up))
    # window pixel q ↔ photo pixel p: q = (p − (x0, y0) + ½)·up − ½ (pixel centres line up as in a resize)
    to_win = np.array([[up, 0.0, (0.5 - x0) * up - 0.5], [0.0, up, (0.5 - y0) * up - 0.5]])
    win = cv2.warpAffine(np.ascontiguousarray(rgb[..., :3]), to_win, (n, n), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_CONSTANT)
    fwd = lambda p: p * up + to_win[:, 2]  # noqa: E731
    back = lambda q: (q - to_win[:, 2]) / up  # noqa: E731
    lm68, _ = dlib_68(win, fwd(kps5))
    mesh = mesh_478(win, fwd(bbox.reshape(2, 2)).ravel(), fwd(kps5))
    if mesh is not None:
        mesh = np.column_stack([back(mesh[:, :2]), mesh[:, 2] / up])
    return back(lm68), mesh


def image_mesh_478(rgb: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray | None:
    """(478, 3) refined mesh of the largest face MediaPipe's own detector finds in the whole image, in either
    runtime (the OpenCV one's detector finds faces larger than about a fifth of the image; the next largest where
    the mesh finds no face in a box), or None.

    `previous`, a video's previous frame's mesh: the OpenCV runtime then tracks as MediaPipe's video graph does
    (the region from those landmarks, no detector; the detector again only when the face is lost there)."""
    rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
    if mediapipe_runtime() == "opencv":
        if previous is not None:
            mesh = blaze.track_mesh(rgb, previous)
            if mesh is not None:
                return mesh
        # the largest detection on which the mesh finds a face: in a real photo a weak, larger false box (score
        # 0.31-0.46 over insightface's group-photo woman's hair and the wall behind her, benchmarks/animate_real.py
        # group_5) would otherwise hide the face beside it (score 0.94) and a video lose the frame
        found = blaze.detect(rgb, 0.3)
        for box, _, kps in sorted(found, key=lambda d: -(d[0][2] - d[0][0]) * (d[0][3] - d[0][1])):
            mesh = blaze.mesh_from_detection(rgb, box, kps[:2])
            if mesh is not None:
                return mesh
        return None
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1,
                                         min_detection_confidence=0.3) as fm:
        res = fm.process(rgb)
    if not res.multi_face_landmarks:
        return None
    h, w = rgb.shape[:2]
    return np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark], np.float64)
