"""MediaPipe's face models (BlazeFace short-range detector, the attention face mesh with its lips, eyes and irises,
selfie segmenter; Apache-2.0) without the mediapipe package: the face stage's path on every Python (no installed
backend carries mediapipe; `mediapipe.solutions` is gone from mediapipe ≥ 0.10.30, every mediapipe for Python
3.13). The short-range detector and the segmenter run through OpenCV's DNN
module; the full-range detector (a sparse model) and the mesh (attention_mesh.py: MediaPipe's own operators)
through onnxruntime, translated by tflite_onnx.py, which OpenCV's TFLite importer cannot read.

The .tflite files are the ones the legacy mediapipe wheels carry (`mediapipe/modules/...`); `models_dir()` says
where they are looked for. Pre- and post-processing follow MediaPipe's graphs: a rotated square region of
interest resampled to the model's input (values 0..1, or −1..1 for the detector), outputs mapped back through
the same affine. Coordinates returned are pixels of the image given, indexed like OpenCV's warps and the face
stage's rotations (a pixel's centre at an integer); mesh z is MediaPipe's relative depth in the same pixel scale
(smaller = nearer the camera).
"""
from __future__ import annotations

import functools
import importlib.util
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelMissingError
from . import attention_mesh, tflite_onnx

FILES = {
    "detector": "face_detection/face_detection_short_range.tflite",
    "full_range": "face_detection/face_detection_full_range_sparse.tflite",
    "mesh": attention_mesh.FILE,
    "selfie": "selfie_segmentation/selfie_segmentation.tflite",
}
FOLDER = "mediapipe_legacy_models"  # what `extract_models` writes beside the other packages (3.13 installs)
WHEEL = "mediapipe==0.10.21"  # the last mediapipe whose wheels carry the models (cp39–cp312)
ENV = "HEADFORGE_MEDIAPIPE_MODELS"
LEFT_EYE, RIGHT_EYE = (33, 133), (362, 263)  # eye corners (image left eye first)
MESH_SCORE = 0.5  # MediaPipe's face-presence threshold


def _candidates() -> list[Path]:
    out = [Path(os.environ[ENV]).expanduser()] if os.environ.get(ENV) else []
    spec = importlib.util.find_spec("mediapipe")
    if spec is not None and spec.submodule_search_locations:
        out += [Path(p) / "modules" for p in spec.submodule_search_locations]
    out += [Path(p) / FOLDER for p in sys.path if p]
    return out


def models_dir() -> Path:
    """The folder holding FILES: $HEADFORGE_MEDIAPIPE_MODELS, the installed legacy mediapipe's modules/, or a
    `mediapipe_legacy_models/` folder on sys.path (written by `extract_models`)."""
    for d in _candidates():
        if all((d / f).is_file() for f in FILES.values()):
            return d
    raise ModelMissingError(
        f"MediaPipe's face models ({', '.join(Path(f).name for f in FILES.values())}) were not found.",
        code="model.missing",
        hint=f"Reinstall the backend (its installer extracts them from the {WHEEL} wheel), or point ${ENV} "
        "at a folder holding mediapipe/modules/ from that wheel.")


def extract_models(wheel: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy FILES out of a legacy mediapipe wheel into `dest`/mediapipe_legacy_models/; returns that folder."""
    out = Path(dest) / FOLDER
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        missing = [f for f in FILES.values() if f"mediapipe/modules/{f}" not in names]
        if missing:
            raise ModelMissingError(f"{Path(wheel).name} does not carry {', '.join(missing)}.",
                                    code="model.missing", hint=f"Use the {WHEEL} wheel.")
        for f in FILES.values():
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            (out / f).write_bytes(z.read(f"mediapipe/modules/{f}"))
    return out


@functools.lru_cache(maxsize=8)
def _net(path: str):
    import cv2

    return cv2.dnn.readNetFromTFLite(path)


def _run(kind: str, blob: np.ndarray) -> dict[str, np.ndarray]:
    net = _net(str(models_dir() / FILES[kind]))
    net.setInput(blob)
    names = net.getUnconnectedOutLayersNames()
    return {n: o for n, o in zip(names, net.forward(names))}


# --- rotated square regions of interest -----------------------------------------------------------------------

def roi_affine(centre, side: float, angle: float, size: int) -> np.ndarray:
    """2×3 affine from image pixels to the size×size tensor of the square ROI (centre, side, rotation `angle`
    radians: the ROI's x axis points along (cos, sin) in the image)."""
    c, s = np.cos(angle), np.sin(angle)
    r_t = np.array([[c, s], [-s, c]])  # image → ROI axes
    a = r_t * (size / side)
    return np.hstack([a, (size / 2 - a @ np.asarray(centre, np.float64))[:, None]])


def _crop(rgb: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.warpAffine(rgb, affine, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _back(affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]
    return pts[:, :2] @ inv[:, :2].T + inv[:, 2]


def _blob(patch: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    x = patch.astype(np.float32) * ((hi - lo) / 255.0) + lo
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _roi_from_points(pts: np.ndarray, start: int, end: int, scale: float):
    """MediaPipe's landmarks → ROI (its video graph's face_landmark_landmarks_to_roi): the points' box in the
    image's axes, rotated from landmark `start` to `end`, `scale` times its longer side."""
    d = pts[end, :2] - pts[start, :2]
    lo, hi = pts[:, :2].min(0), pts[:, :2].max(0)
    return (lo + hi) / 2, scale * float((hi - lo).max()), float(np.arctan2(d[1], d[0]))


# --- face mesh ------------------------------------------------------------------------------------------------

def _mesh_pass(rgb: np.ndarray, centre, side: float, angle: float):
    """(478, 3) attention mesh of the square region (centre, side, angle) and its face-presence score."""
    size = 192
    aff = roi_affine(centre, side, angle, size)
    pts, logit = attention_mesh.run(models_dir(), _blob(_crop(rgb, aff, size)))
    score = 1.0 / (1.0 + np.exp(-np.clip(logit, -100, 100)))
    return np.column_stack([_back(aff, pts), pts[:, 2] * side / size]), score


def mesh_from_detection(rgb: np.ndarray, box, eyes) -> np.ndarray | None:
    """(478, 3) refined mesh from one of BlazeFace's detections (box, the two eye keypoints): MediaPipe's
    static-image graph, its box turned by the eyes and grown 1.5× to a square (measured: the same 478 points as
    `mediapipe.solutions`' refined mesh to 0.01 % of the face size). None when the mesh finds no face there."""
    box, eyes = np.asarray(box, np.float64), np.asarray(eyes, np.float64)
    d = eyes[1] - eyes[0]
    mesh, score = _mesh_pass(np.ascontiguousarray(np.asarray(rgb)[..., :3]), box.reshape(2, 2).mean(0),
                             1.5 * max(box[2] - box[0], box[3] - box[1]), float(np.arctan2(d[1], d[0])))
    return mesh if score >= MESH_SCORE else None


def face_mesh(rgb: np.ndarray, bbox, eyes=None) -> np.ndarray | None:
    """(478, 3) refined face mesh (MediaPipe's layout: 468 mesh points, then the iris centre and rim of the image
    left eye, then of the image right eye) of the face in `rgb`, a window around the face `bbox` (any detector's
    box). As `mediapipe.solutions` does on such a window: BlazeFace on the whole window, its most confident face
    (`mesh_from_detection`). When BlazeFace finds none, the mesh starts from `bbox` turned by `eyes` (the
    detector's eye keypoints in image order), then once more from its own landmarks (MediaPipe's tracking
    region). None when the mesh says there is no face."""
    rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
    found = detect(rgb, 0.3)  # the face stage's solutions FaceMesh runs with min_detection_confidence=0.3
    if found:
        box, _, kps = max(found, key=lambda d: d[1])
        return mesh_from_detection(rgb, box, kps[:2])
    x1, y1, x2, y2 = np.asarray(bbox, np.float64)
    angle = 0.0
    if eyes is not None:
        d = np.asarray(eyes, np.float64)[1] - np.asarray(eyes, np.float64)[0]
        angle = float(np.arctan2(d[1], d[0]))
    mesh, _ = _mesh_pass(rgb, np.array([(x1 + x2) / 2, (y1 + y2) / 2]), 1.5 * max(x2 - x1, y2 - y1), angle)
    mesh, score = _mesh_pass(rgb, *_roi_from_points(mesh, LEFT_EYE[0], RIGHT_EYE[1], 1.5))
    return mesh if score >= MESH_SCORE else None


def track_mesh(rgb: np.ndarray, previous: np.ndarray) -> np.ndarray | None:
    """(478, 3) refined mesh of the face whose previous frame's mesh was `previous` (MediaPipe's tracking: the
    region from those landmarks, no detector), or None when the face is lost there."""
    rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
    mesh, score = _mesh_pass(rgb, *_roi_from_points(np.asarray(previous)[:468], LEFT_EYE[0], RIGHT_EYE[1], 1.5))
    return mesh if score >= MESH_SCORE else None


# --- BlazeFace short-range detector ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def _anchors(layers: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Anchor centres (N, 2) in 0..1 of SSD layers ((cells per side, anchors per cell), ...)."""
    out = []
    for cells, per in layers:
        yy, xx = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        c = np.stack([(xx + 0.5) / cells, (yy + 0.5) / cells], -1).reshape(-1, 1, 2)
        out.append(np.repeat(c, per, axis=1).reshape(-1, 2))
    return np.concatenate(out)


SHORT_RANGE = (128, ((16, 2), (8, 6)))  # input side, anchors: 896 (stride 8 and 16)
FULL_RANGE = (192, ((48, 1),))  # 2304 anchors (stride 4)
# The full-range graph's own score threshold, which `mediapipe.solutions`' min_detection_confidence does not
# lower (measured: its boxes equal ours to 0.0001 px with it, differ by 1.4–3.5 px without it)
FULL_RANGE_SCORE = 0.6


def _full_range_outputs(blob: np.ndarray) -> dict[str, np.ndarray]:
    """The full-range model is sparse (DENSIFY), which OpenCV cannot read: it runs through onnxruntime."""
    sess = tflite_onnx.session(str(models_dir() / FILES["full_range"]))
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": blob})))


def detect(rgb: np.ndarray, threshold: float = 0.5, nms: float = 0.3, full_range: bool = False):
    """[(bbox (4,), score, keypoints (6, 2))] in image pixels: BlazeFace on the photo letterboxed to its input
    (short range, 128²: faces larger than about a fifth of the photo's longer side, what MediaPipe's face mesh
    runs; full range, 192²: small faces too, what `mediapipe.solutions`' FaceDetection(model_selection=1) runs).
    Keypoints: eye on the image's left, the other eye, nose tip, mouth centre, two ear tragions."""
    size, layers = FULL_RANGE if full_range else SHORT_RANGE
    h, w = rgb.shape[:2]
    side = float(max(h, w))
    # MediaPipe's whole-image region is centred at (W/2, H/2) in these pixel coordinates: measured, its boxes
    # and keypoints to 0.01 px (centred at ((W-1)/2, (H-1)/2) the astronaut's box moved 3 px).
    aff = roi_affine((w / 2, h / 2), side, 0.0, size)
    blob = _blob(_crop(np.ascontiguousarray(rgb[..., :3]), aff, size), -1.0, 1.0)
    out = _full_range_outputs(blob) if full_range else _run("detector", blob)
    reg = next(o for o in out.values() if o.shape[-1] == 16).reshape(-1, 16).astype(np.float64)
    logit = next(o for o in out.values() if o.shape[-1] == 1).reshape(-1).astype(np.float64)
    score = 1.0 / (1.0 + np.exp(-np.clip(logit, -100, 100)))
    keep = np.nonzero(score >= (max(threshold, FULL_RANGE_SCORE) if full_range else threshold))[0]
    if keep.size == 0:
        return []
    anchors = _anchors(layers)[keep] * size
    r = reg[keep]
    cx, cy = anchors[:, 0] + r[:, 0], anchors[:, 1] + r[:, 1]
    boxes = np.stack([cx - r[:, 2] / 2, cy - r[:, 3] / 2, cx + r[:, 2] / 2, cy + r[:, 3] / 2], 1)
    kps = r[:, 4:].reshape(-1, 6, 2) + anchors[:, None, :]
    return [(_back(aff, b.reshape(2, 2)).ravel(), s, _back(aff, k)) for b, s, k in
            _weighted_nms(boxes, score[keep], kps, nms)]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt, rb = np.maximum(a[:2], b[:, :2]), np.minimum(a[2:], b[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda x: np.prod(x[..., 2:] - x[..., :2], axis=-1)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def _weighted_nms(boxes, scores, kps, thr):
    """MediaPipe's weighted non-maximum suppression: overlapping detections are averaged, weighted by score."""
    order = np.argsort(-scores)
    boxes, scores, kps = boxes[order], scores[order], kps[order]
    left = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (_iou(boxes[i], boxes) > thr)
        group[i] = True
        wgt = scores[group] / scores[group].sum()
        out.append(((boxes[group] * wgt[:, None]).sum(0), float(scores[i]),
                    (kps[group] * wgt[:, None, None]).sum(0)))
        left &= ~group
    return out


# --- selfie segmentation --------------------------------------------------------------------------------------

def selfie_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 person probability: MediaPipe's general selfie segmenter (256² input, the whole image
    stretched to it by MediaPipe's bilinear warp, its region centred at (W/2, H/2)), resized back bilinearly.
    Measured: `mediapipe.solutions`' segmentation_mask exactly (with an area-averaging resize instead: IoU
    0.937–0.992)."""
    import cv2

    h, w = rgb.shape[:2]
    to_patch = np.array([[256 / w, 0.0, 0.0], [0.0, 256 / h, 0.0]])  # (W/2, H/2) → (128, 128)
    patch = cv2.warpAffine(np.ascontiguousarray(rgb[..., :3]), to_patch, (256, 256), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    out = next(iter(_run("selfie", _blob(patch)).values())).reshape(256, 256).astype(np.float32)
    return np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
