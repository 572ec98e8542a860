"""Face detectors: SCRFD (insightface packs), YuNet (OpenCV Zoo, MIT) and MediaPipe (Apache-2.0, bundled; through
its own graphs or through OpenCV, see landmarks.mediapipe_runtime).

Every detector returns `Detection`s in the pixel coordinates of the image it was given, with five keypoints in
image order: the eye on the image's left, the eye on the image's right, the nose tip, the mouth corner on the
image's left, the mouth corner on the image's right (for a subject facing the camera: right eye first).
Loaded models are cached per process (keyed by file path), so a second photo pays only inference.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import FaceError, ModelMissingError
from ..models import store
from ..models.store import open_model
from . import blaze
from .landmarks import MESH_KPS5, mediapipe_runtime, mesh_478

DETECTORS = ("auto", "scrfd", "yunet", "mediapipe")
SCRFD_PACKS = {  # pack name -> detector file inside <root>/models/<pack>/
    "buffalo_sc": "det_500m.onnx",
    "buffalo_s": "det_500m.onnx",
    "buffalo_m": "det_2.5g.onnx",
    "buffalo_l": "det_10g.onnx",
    "antelopev2": "scrfd_10g_bnkps.onnx",
}
YUNET_GLOB = "opencv_zoo/face_detection_yunet/face_detection_yunet_*.onnx"


@dataclass
class Detection:
    bbox: np.ndarray  # (4,) x1, y1, x2, y2 in pixels
    score: float
    kps5: np.ndarray  # (5, 2) pixels, image order (see module docstring)
    detector: str = ""

    @property
    def size_px(self) -> float:
        """The face box's geometric-mean side in pixels: the face's size, independent of its aspect."""
        w, h = self.bbox[2] - self.bbox[0], self.bbox[3] - self.bbox[1]
        return float(np.sqrt(max(w, 0.0) * max(h, 0.0)))

    def to_dict(self) -> dict:
        return {"bbox": [round(float(v), 2) for v in self.bbox], "score": round(float(self.score), 4),
                "kps5": [[round(float(x), 2), round(float(y), 2)] for x, y in self.kps5],
                "size_px": round(self.size_px, 2), "detector": self.detector}

    def transformed(self, fn) -> "Detection":
        """Map the detection through a point function `fn((N, 2)) -> (N, 2)` (e.g. undoing a rotation). The
        keypoints keep their order: the detector's image order in the frame it ran in."""
        corners = fn(np.array([[self.bbox[0], self.bbox[1]], [self.bbox[2], self.bbox[3]]], dtype=np.float64))
        box = np.concatenate([corners.min(0), corners.max(0)])
        return Detection(box, self.score, fn(np.asarray(self.kps5, dtype=np.float64)), self.detector)


def _image_order(kps: np.ndarray) -> np.ndarray:
    """Put each pair (eyes, mouth corners) in image left-to-right order after a rotation or mirror."""
    kps = np.array(kps, dtype=np.float64)
    for a, b in ((0, 1), (3, 4)):
        if kps[a, 0] > kps[b, 0]:
            kps[[a, b]] = kps[[b, a]]
    return kps


def default_models_roots(models_root: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for detector files, first match wins: the option, the model registry's root (set by the
    add-on's preferences, else $HEADFORGE_MODELS, else ~/.cache/headforge/models), $HEADFORGE_MODELS,
    ~/.insightface. All share the layout insightface/models/<pack>/, opencv_zoo/face_detection_yunet/."""
    roots = []
    if models_root:
        roots.append(Path(models_root).expanduser())
    try:
        roots.append(Path(store.models_root()))
    except Exception:  # noqa: BLE001  (registry absent or misconfigured: the other folders still apply)
        pass
    if os.environ.get("HEADFORGE_MODELS"):
        roots.append(Path(os.environ["HEADFORGE_MODELS"]).expanduser())
    roots.append(Path.home())  # ~/.insightface/models/<pack>, insightface's own download folder
    return roots


def find_scrfd(pack: str, models_root=None) -> Path | None:
    if pack not in SCRFD_PACKS:
        raise FaceError(f"Unknown insightface model pack {pack!r}; choose one of {', '.join(SCRFD_PACKS)}.",
                        code="face.bad_option")
    for root in default_models_roots(models_root):
        for base in (root / "insightface" / "models" / pack, root / "models" / pack,
                     root / ".insightface" / "models" / pack):
            if (base / SCRFD_PACKS[pack]).is_file():
                return (base / SCRFD_PACKS[pack]).resolve()
    return None


def find_yunet(models_root=None) -> Path | None:
    for root in default_models_roots(models_root):
        found = sorted(root.glob(YUNET_GLOB))
        if found:
            return found[-1].resolve()  # the newest release (names carry their date)
    return None


@dataclass(frozen=True)
class DetectorKind:
    """One detector: where its file is (`find(pack, models_root)`: None when absent; MediaPipe's ship in packages),
    how it loads (`load(path, pack)`, a ModelMissingError when the file does not), how it runs (`run(rgb, path,
    threshold)`) and what to say when it was asked for by name but is not installed (`missing(pack, roots)`)."""
    name: str
    find: Callable[[str, object], Path | None]
    load: Callable[[Path, str], object]
    run: Callable[[np.ndarray, str, float], list[Detection]]
    missing: Callable[[str, str], ModelMissingError] | None = None


def _scrfd_missing(pack: str, roots: str) -> ModelMissingError:
    return ModelMissingError(f"The insightface pack {pack!r} ({SCRFD_PACKS[pack]}) was not found under {roots}.",
                             code="model.missing", hint=f"Download it with `headforge models download insightface-"
                             f"{pack}` (non-commercial licence), or choose --set face.detector=yunet or mediapipe.")


def _yunet_missing(pack: str, roots: str) -> ModelMissingError:
    return ModelMissingError("The YuNet detector (face_detection_yunet_*.onnx) was not found.", code="model.missing",
                             hint="Download it with `headforge models download yunet`, or choose "
                             "--set face.detector=mediapipe.")


def resolve_detector(detector: str, pack: str, models_root=None, warn=None) -> tuple[str, Path | None]:
    """`auto` → the first detector of KINDS whose file is present and loads: SCRFD, else YuNet, else MediaPipe
    (always bundled); `warn(message)` hears why an installed detector was passed over. A named detector whose
    file is missing or does not load is a ModelMissingError."""
    if detector not in DETECTORS:
        raise FaceError(f"Unknown face detector {detector!r}; choose one of {', '.join(DETECTORS)}.",
                        code="face.bad_option")
    for kind in KINDS:
        if detector not in ("auto", kind.name):
            continue
        if kind.missing is None:  # bundled: nothing to find or load here
            return kind.name, None
        path = kind.find(pack, models_root)
        if path is not None:
            try:
                kind.load(path, pack)
                return kind.name, path
            except ModelMissingError as e:
                if detector != "auto":
                    raise
                if warn is not None:
                    warn(f"{e.message} {e.hint} Another detector was used.")
                continue
        if detector != "auto":
            raise kind.missing(pack, ", ".join(str(r) for r in default_models_roots(models_root)))
    raise AssertionError("KINDS ends with a bundled detector")


def detect_on_grey_margin(img: np.ndarray, find: Callable[[np.ndarray], list]) -> list:
    """`find(image)`'s faces (Detections) on `img` (H, W, 3) uint8 set on a grey margin of 0.3 of its longer side,
    in `img`'s pixel coordinates: the retry that finds faces cut by the image's edge or filling the frame."""
    pad = int(0.3 * max(img.shape[:2]))
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), constant_values=128)
    return [f.transformed(lambda p: p - pad) for f in find(padded)]


def detect_faces(rgb: np.ndarray, detector: str = "auto", pack: str = "buffalo_m", models_root=None,
                 threshold: float = 0.5) -> list[Detection]:
    """All faces in `rgb` (H, W, 3) uint8, ordered left to right by box centre (stable face numbers)."""
    name, path = resolve_detector(detector, pack, models_root)
    dets = next(k for k in KINDS if k.name == name).run(rgb, str(path) if path else "", threshold)
    return sorted(dets, key=lambda d: d.bbox[0] + d.bbox[2])


# --- SCRFD through insightface -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _scrfd_model(path: str):
    from insightface.model_zoo import get_model

    model = get_model(path, providers=["CPUExecutionProvider"])
    model.prepare(ctx_id=-1, input_size=(640, 640), det_thresh=0.3)
    return model


def _detect_scrfd(rgb: np.ndarray, path: str, threshold: float) -> list[Detection]:
    model = _scrfd_model(path)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    boxes, kpss = model.detect(bgr, input_size=(640, 640))  # (N, 5) x1 y1 x2 y2 score; (N, 5, 2)
    out = []
    for box, kps in zip(boxes, kpss):
        if box[4] >= threshold:
            out.append(Detection(box[:4].astype(np.float64), float(box[4]), _image_order(kps), "scrfd"))
    return out


# --- YuNet through OpenCV -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def _yunet_model(path: str):
    import cv2

    return cv2.FaceDetectorYN.create(path, "", (320, 320), 0.3, 0.3, 5000)


def _detect_yunet(rgb: np.ndarray, path: str, threshold: float, max_side: int = 960) -> list[Detection]:
    import cv2

    h, w = rgb.shape[:2]
    s = min(1.0, max_side / max(h, w))
    img = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else rgb
    model = _yunet_model(path)
    model.setInputSize((img.shape[1], img.shape[0]))
    _, rows = model.detect(np.ascontiguousarray(img[..., ::-1]))  # rows: x y w h, 5x(x, y), score
    out = []
    for r in rows if rows is not None else []:
        if r[14] < threshold:
            continue
        box = np.array([r[0], r[1], r[0] + r[2], r[1] + r[3]], dtype=np.float64) / s
        out.append(Detection(box, float(r[14]), _image_order(r[4:14].reshape(5, 2) / s), "yunet"))
    return out


# --- MediaPipe: full-range detector for boxes, face mesh for the five keypoints -------------------------------

@functools.lru_cache(maxsize=1)
def _mp_detector():
    import mediapipe as mp

    return mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.3)


def _mediapipe_boxes(rgb: np.ndarray, threshold: float):
    """[(box, score, keypoints whose first two are the eyes, or None)]: MediaPipe's full-range detector, through
    the solutions or (OpenCV runtime, Python 3.13) through onnxruntime (the same boxes to 0.0001 px)."""
    if mediapipe_runtime() == "opencv":
        return blaze.detect(rgb, threshold, full_range=True)
    h, w = rgb.shape[:2]
    out = []
    for d in _mp_detector().process(np.ascontiguousarray(rgb)).detections or []:
        rb = d.location_data.relative_bounding_box
        box = np.array([rb.xmin * w, rb.ymin * h, (rb.xmin + rb.width) * w, (rb.ymin + rb.height) * h])
        if float(d.score[0]) >= threshold:
            out.append((box, float(d.score[0]), None))
    return out


def _detect_mediapipe(rgb: np.ndarray, threshold: float) -> list[Detection]:
    out = []
    for box, score, eyes in _mediapipe_boxes(rgb, threshold):
        mesh = mesh_478(rgb, box, eyes)
        if mesh is None:
            continue  # the mesh cannot place eyes and mouth: not a usable face
        kps = mesh[MESH_KPS5, :2]
        out.append(Detection(box, score, _image_order(kps), "mediapipe"))
    return out


# The detectors in the order `auto` tries them (the last one is bundled, so auto always finds one).
KINDS = (
    DetectorKind("scrfd", find_scrfd, lambda path, pack: open_model(path, _scrfd_model, (f"insightface-{pack}",)),
                 lambda rgb, path, t: _detect_scrfd(rgb, path, t), _scrfd_missing),
    DetectorKind("yunet", lambda pack, root: find_yunet(root), lambda path, pack: open_model(path, _yunet_model,
                 ("yunet",)), lambda rgb, path, t: _detect_yunet(rgb, path, t), _yunet_missing),
    DetectorKind("mediapipe", lambda pack, root: None, lambda path, pack: None,
                 lambda rgb, path, t: _detect_mediapipe(rgb, t)),
)


def choose_face(faces: list[Detection], index: int) -> int:
    """The face to reconstruct: `index` when given (≥ 0), otherwise the largest."""
    if not faces:
        raise ValueError("no faces")
    if index is None or index < 0:
        return int(np.argmax([f.size_px for f in faces]))
    if index >= len(faces):
        listing = "; ".join(f"{i}: {f.size_px:.0f} px at ({f.bbox[0]:.0f}, {f.bbox[1]:.0f})"
                            for i, f in enumerate(faces))
        raise FaceError(f"Face {index} was chosen but the photo has {len(faces)} face(s) ({listing}).",
                        code="face.bad_choice", hint="Choose a face between 0 and "
                        f"{len(faces) - 1} (--set face.face=N), or -1 for the largest.")
    return index
