"""The face library's orchestration: one photo → detections, landmarks, head pose, quality warnings, matte,
the multi-view model's framing crop and the identity embedding (`analyse`), without touching a job folder.
The `face` stage (backend/stages/face.py) reads the portrait, calls `analyse` and writes what it returns; the
schema of `analysis.json` is documented there.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FaceError, ModelMissingError
from . import detect as _detect
from . import framing as _framing
from . import identity as _identity
from . import landmarks as _landmarks
from . import matte as _matte
from . import pose as _pose
from . import quality as _quality


@dataclass
class FaceOptions:
    detector: str = "auto"  # auto | scrfd | yunet | mediapipe (auto: SCRFD if its pack is present, else YuNet...)
    pack: str = "buffalo_m"  # insightface model pack for SCRFD (and ArcFace when the pack has a recogniser)
    # which detected face (left-to-right number); -1 = the largest
    face: int = field(default=-1, metadata={"range": (-1, 999)})
    models_root: str = ""  # extra folder holding insightface/ and opencv_zoo/ (else $HEADFORGE_MODELS, ~/.insightface)
    matte: str = "auto"  # auto | alpha | birefnet | mediapipe (auto: the photo's alpha, else BiRefNet, else MediaPipe)
    identity: str = "auto"  # auto | arcface | dlib
    min_face_px: float = field(default=_quality.MIN_FACE_PX, metadata={"range": (1.0, 10_000.0)})
    threshold: float = field(default=0.5, metadata={"range": (0.0, 1.0)})  # detector confidence


CONFIRM_SCORE = 0.7  # detections below this score must be confirmed by MediaPipe's mesh

@dataclass
class FaceResult:
    analysis: dict
    crop: np.ndarray  # (512, 512, 3) uint8
    crop_matte8: np.ndarray  # (512, 512) uint8
    matte8: np.ndarray  # (H, W) uint8
    identity: np.ndarray  # (D,) float32
    faces_preview: np.ndarray  # (h, w, 3) uint8
    timings: dict


def _rot_affine(k: int, w: int, h: int) -> np.ndarray:
    """2×3 affine taking pixel coordinates of an (h, w) image to those of np.rot90(image, k)."""
    m = np.eye(3)
    for _ in range(k % 4):
        step = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w - 1.0], [0.0, 0.0, 1.0]])  # (x, y) → (y, W−1−x)
        m = step @ m
        w, h = h, w
    return m[:2]


def _inv(a: np.ndarray) -> np.ndarray:
    full = np.vstack([a, [0, 0, 1]])
    return np.linalg.inv(full)[:2]


def _tilt_deg(d: _detect.Detection) -> float:
    """Angle between the eyes → mouth direction and the image's down direction (0 for an upright face)."""
    v = d.kps5[3:5].mean(0) - d.kps5[:2].mean(0)
    return float(np.degrees(np.arctan2(-v[0], v[1])))


def detect_upright(photo: np.ndarray, opts: FaceOptions, warn=None):
    """Detect faces; when none is found upright (or the best lies sideways), try the photo turned by 90°, 270°,
    180°; when still none, try it on a grey margin (finds faces cut by the photo's edge, which the caller then
    measures). Weak detections (score < CONFIRM_SCORE) count only when MediaPipe's mesh also finds a face there.
    Returns (faces in photo coords, k: np.rot90 turns that make the faces upright, detector name, file)."""
    kind, path = _detect.resolve_detector(opts.detector, opts.pack, opts.models_root or None, warn=warn)
    h, w = photo.shape[:2]

    def found(img):
        faces = _detect.detect_faces(img, kind, opts.pack, opts.models_root or None, opts.threshold)
        return [f for f in faces if f.score >= CONFIRM_SCORE or kind == "mediapipe" or
                _landmarks.mesh_478(img, f.bbox, f.kps5) is not None]

    for k in (0, 1, 3, 2):
        img = np.ascontiguousarray(np.rot90(photo, k)) if k else photo
        faces = found(img)
        if not faces:
            continue
        best = max(faces, key=lambda f: f.score * f.size_px)
        if abs(_tilt_deg(best)) > 50:
            continue  # a sideways face found by a detector that tolerates it: the turned photo does better
        if k == 0 and kind != "scrfd":
            # YuNet and MediaPipe also report sideways faces with upright-looking keypoints; the mesh knows.
            mesh = _landmarks.mesh_478(img, best.bbox, best.kps5)
            if mesh is not None:
                v = (mesh[61, :2] + mesh[291, :2]) / 2 - (mesh[468, :2] + mesh[473, :2]) / 2
                if abs(np.degrees(np.arctan2(-v[0], v[1]))) > 50:
                    continue
        back = _inv(_rot_affine(k, w, h))
        return [f.transformed(lambda p, b=back: _framing.apply_affine(b, p)) for f in faces], k, kind, path
    return _detect.detect_on_grey_margin(photo, found), 0, kind, path


def analyse(photo: np.ndarray, opts: FaceOptions, alpha: Path | None = None, progress=None) -> FaceResult:
    """The face stage's work on an (H, W, 3) uint8 photo, without touching the job folder."""
    progress = progress or (lambda *a, **k: None)
    if opts.matte not in _matte.MATTE_SOURCES:
        raise FaceError(f"Unknown matte source {opts.matte!r}; choose one of {', '.join(_matte.MATTE_SOURCES)}.",
                        code="face.bad_option")
    if opts.identity not in ("auto", "arcface", "dlib"):
        raise FaceError(f"Unknown identity model {opts.identity!r}; choose auto, arcface or dlib.",
                        code="face.bad_option")
    h, w = photo.shape[:2]
    warnings: list[dict] = []
    warn = lambda code, message: warnings.append({"code": code, "message": message})  # noqa: E731
    timings = {}

    # --- detection ---------------------------------------------------------------------------------------
    progress(0.05, "Detecting faces")
    t0 = time.perf_counter()
    faces, k, det_kind, det_path = detect_upright(photo, opts, lambda m: warn("face.detector_fallback", m))
    timings["detect"] = time.perf_counter() - t0
    if not faces:
        raise FaceError("No face was found in the photo.", code="face.none",
                        hint=f"Use a photo where a face is clearly visible (at least {_quality.MIN_FACE_PX:.0f} px "
                        "across), not too dark, blurred or covered.")
    chosen = _detect.choose_face(faces, opts.face)
    face = faces[chosen]
    if k:
        warn("face.sideways", f"The photo is turned by {k * 90}°; the face was found after turning it upright "
             "(the crop is upright).")
    if len(faces) > 1:
        others = "; ".join(f"{i}: {f.size_px:.0f} px at ({f.bbox[0]:.0f}, {f.bbox[1]:.0f})"
                           for i, f in enumerate(faces) if i != chosen)
        how = "chosen by you" if opts.face >= 0 else "the largest"
        warn("face.multiple", f"The photo has {len(faces)} faces; face {chosen} ({how}, {face.size_px:.0f} px) "
             f"is reconstructed. Others: {others}. Pick another with --set face.face=N or the panel's face chooser.")

    # --- refusals ----------------------------------------------------------------------------------------
    if face.size_px < opts.min_face_px:
        raise FaceError(f"The face is only {face.size_px:.0f} px across; HeadForge needs at least "
                        f"{opts.min_face_px:.0f} px (ideally 200 px or more) to reconstruct a head.",
                        code="face.too_small", hint="Use a larger photo, or one taken closer to the subject.")
    # The detector's box, or the box the keypoints imply when the detector shrank its box to the visible part.
    outside = max(_quality.outside_fraction(face.bbox, (w, h)),
                  _quality.outside_fraction(_quality.keypoint_box(face.kps5), (w, h)))
    if outside > _quality.MAX_OUTSIDE:
        box = np.concatenate([np.minimum(face.bbox[:2], _quality.keypoint_box(face.kps5)[:2]),
                              np.maximum(face.bbox[2:], _quality.keypoint_box(face.kps5)[2:])])
        edges = [name for name, cut in (("left", box[0] < 0), ("top", box[1] < 0),
                                        ("right", box[2] > w), ("bottom", box[3] > h)) if cut]
        raise FaceError(f"The face is cut by the photo's {' and '.join(edges) or ''} edge: {outside:.0%} of it "
                        f"lies outside the photo.", code="face.cut_by_border",
                        hint="Use a photo that shows the whole face with some margin around it.")
    if face.size_px < _quality.SMALL_FACE_PX:
        warn("face.small", f"The face is {face.size_px:.0f} px across; results are sharper from faces of "
             f"{_quality.SMALL_FACE_PX:.0f} px or more.")

    # --- landmarks and pose, in the upright working image -------------------------------------------------
    progress(0.25, "Landmarks")
    t0 = time.perf_counter()
    to_work = _rot_affine(k, w, h)
    work = np.ascontiguousarray(np.rot90(photo, k)) if k else photo
    kps_work = _detect._image_order(_framing.apply_affine(to_work, face.kps5))
    bbox_work = face.transformed(lambda p: _framing.apply_affine(to_work, p)).bbox
    lm68_work, mesh_work = _landmarks.face_landmarks(work, bbox_work, kps_work)
    timings["landmarks"] = time.perf_counter() - t0
    to_photo = _inv(to_work)
    lm68 = _framing.apply_affine(to_photo, lm68_work)
    mesh = None
    if mesh_work is not None:
        mesh = np.concatenate([_framing.apply_affine(to_photo, mesh_work), mesh_work[:, 2:]], axis=1)
    else:
        warn("face.no_mesh", "MediaPipe's face mesh could not place its 478 points on this face; head pose and "
             "framing use the 68-point landmarks instead.")
    poses = [p for p in (_pose.pose_from_mesh(mesh) if mesh is not None else None,
                         _pose.pose_from_68(lm68, (w, h)), _pose.pose_from_kps5(face.kps5, (w, h))) if p]
    if not poses:  # no mesh, and the 68/5-point poses need ICT-FaceKit's model points
        raise FaceError("MediaPipe's mesh could not place its points on this face, and the 68-point and 5-point "
                        "head poses need ICT-FaceKit's model points, which are not installed.", code="face.no_pose",
                        hint="Download ICT-FaceKit Light (`headforge models download ict-facekit`), or use a photo "
                        "where the face is clearly visible.")
    pose = dict(poses[0])
    pose["alternatives"] = [{k2: p[k2] for k2 in ("source", "yaw_deg", "pitch_deg", "roll_deg")} for p in poses[1:]]
    if abs(pose["yaw_deg"]) > 60:
        warn("face.profile", f"The head is turned {abs(pose['yaw_deg']):.0f}° from the camera (a side view); the "
             "hidden side of the face is generated, so it resembles the subject less.")

    # --- quality warnings --------------------------------------------------------------------------------
    face112 = _quality.align_112(work, kps_work)
    q = {"sharpness": round(_quality.sharpness(face112), 2), "luminance": round(_quality.luminance(face112), 1),
         "outside_fraction": round(outside, 3), **_quality.occlusion(face112)}
    if q["sharpness"] < _quality.BLUR_MIN:
        warn("face.blurry", f"The face is very blurred (sharpness {q['sharpness']:.0f}, sharp faces measure "
             f"{_quality.BLUR_MIN:.0f} or more); the head will look soft.")
    if q["luminance"] < _quality.DARK_MAX:
        warn("face.dark", f"The face is very dark (median brightness {q['luminance']:.0f} of 255); details and "
             "skin colour may be wrong.")
    if q["luminance"] > _quality.BRIGHT_MIN:
        warn("face.overexposed", f"The face is washed out (median brightness {q['luminance']:.0f} of 255).")
    if face.score < _quality.WEAK_SCORE:
        warn("face.weak_detection", f"The face was detected with low confidence ({face.score:.2f}): a stylised, "
             "painted or unusual face works, but check the landmarks.")
    if q["eyes_ratio"] < _quality.EYES_DARK and q["eyes_bright"] < _quality.EYES_BRIGHT:
        warn("face.eyes_covered", "The eyes look covered (sunglasses?); the generated eyes will be guessed.")
    if q["skin_chroma"] > _quality.MIN_CHROMA and q["lip_red"] < _quality.LIP_RED:
        warn("face.mouth_covered", "The mouth and chin look covered (a mask, a hand?); the lower face will be "
             "guessed.")

    # --- matte -------------------------------------------------------------------------------------------
    progress(0.5, "Matte")
    t0 = time.perf_counter()
    matte, source = _make_matte(photo, work, k, bbox_work, opts, alpha, warn)
    timings["matte"] = time.perf_counter() - t0

    # --- framing -----------------------------------------------------------------------------------------
    progress(0.7, "Framing")
    t0 = time.perf_counter()
    r_work = _pose.pose_from_mesh(mesh_work)["rotation_cam"] if mesh_work is not None else \
        (_pose.pose_from_68(lm68_work, work.shape[1::-1]) or {}).get("rotation_cam")
    a_work, frame_info = _framing.framing_affine(kps_work, mesh_work, r_work)
    affine = np.vstack([a_work, [0, 0, 1]])[:2] @ np.vstack([to_work, [0, 0, 1]])  # photo → crop, (2, 3)
    size = _framing.CROP_SIZE
    crop = _framing.warp(_framing.composite_white(photo, matte), affine, size)
    crop_matte = _framing.warp(matte, affine, size, border=0.0)
    inside = _framing.warp(np.ones((h, w), np.float32), affine, size, border=0.0)
    head = inside[: int(0.45 * size), int(0.3 * size): int(0.7 * size)]  # where the top of the head belongs
    cut_head = float(1.0 - head.mean())
    if cut_head > 0.05:
        warn("face.head_cut", f"The top of the head is cut off by the photo ({cut_head:.0%} of the head area "
             "is missing); the missing part will be white in the model's input.")
    timings["crop"] = time.perf_counter() - t0

    # --- identity ----------------------------------------------------------------------------------------
    progress(0.8, "Identity")
    t0 = time.perf_counter()
    pack_dir = Path(det_path).parent if det_kind == "scrfd" and det_path else None
    embedding, id_model = _identity.embed(work, kps_work, opts.identity, pack_dir)
    timings["identity"] = time.perf_counter() - t0

    face_rec = face.to_dict()
    face_rec.update(landmarks_68=np.round(lm68, 2).tolist(),
                    landmarks_478=np.round(mesh, 2).tolist() if mesh is not None else None,
                    pose=pose, quality=q)
    analysis = {
        "image_size": [w, h], "faces": [f.to_dict() for f in faces], "chosen": chosen, "face": face_rec,
        "crop": {"size": size, "affine_photo_to_crop": np.round(affine, 6).tolist(), "background": "white",
                 "framing": frame_info},
        "matte": {"source": source, "coverage": round(float(matte.mean()), 4)},
        "identity": {"model": id_model, "dim": int(embedding.shape[0])},
        "orientation": {"upright_deg": k * 90},
        "detector": {"name": det_kind, "file": str(det_path) if det_path else "mediapipe (bundled)",
                     "pack": opts.pack if det_kind == "scrfd" else None},
        "mediapipe": {"runtime": _landmarks.mediapipe_runtime()},
        "timings_s": {n: round(t, 4) for n, t in timings.items()},
        "warnings": warnings,
    }
    return FaceResult(analysis, crop, _to8(crop_matte), _to8(matte), embedding.astype(np.float32),
                      faces_preview(photo, faces, chosen), timings)


def _to8(m: np.ndarray) -> np.ndarray:
    return np.clip(m * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _make_matte(photo, work, k, bbox_work, opts: FaceOptions, alpha: Path | None, warn):
    """(matte (H, W) float32 in photo coords, source name)."""
    want = opts.matte
    if want in ("auto", "alpha") and alpha is not None:
        return _matte.load_alpha(alpha), "alpha"
    if want == "alpha":
        warn("face.matte_fallback", "The photo has no alpha channel; the matte is computed instead.")
    if want in ("auto", "alpha", "birefnet"):
        path = _matte.find_birefnet(opts.models_root or None)
        if path is not None:
            try:
                m = _matte.birefnet_matte(work, path)
                return (np.ascontiguousarray(np.rot90(m, -k)) if k else m), "birefnet"
            except ModelMissingError as e:  # a damaged file: said, and the bundled segmenter does the matte
                if want == "birefnet":
                    raise
                warn("face.matte_fallback", f"{e.message} {e.hint} The matte comes from MediaPipe's selfie "
                     "segmenter instead.")
        else:
            warn("face.matte_fallback", "BiRefNet's weights are not installed; the matte comes from MediaPipe's "
                 "selfie segmenter (coarser around hair). Download them with `headforge models download "
                 "birefnet-portrait`.")
    m = _matte.mediapipe_matte(work, bbox_work)
    return (np.ascontiguousarray(np.rot90(m, -k)) if k else m), "mediapipe"


def faces_preview(photo: np.ndarray, faces, chosen: int, max_side: int = 768) -> np.ndarray:
    """The photo (shrunk to max_side) with every face boxed and numbered; the chosen one in green."""
    import cv2
    h, w = photo.shape[:2]
    s = min(1.0, max_side / max(h, w))
    img = cv2.resize(photo, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else photo.copy()
    for i, f in enumerate(faces):
        x1, y1, x2, y2 = (f.bbox * s).round().astype(int)
        colour = (40, 200, 40) if i == chosen else (230, 180, 40)
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(img, str(i), (x1 + 3, max(y1 - 5, 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2)
    return img


# Several photos of one person: each further photo's face must be the main photo's person.
SAME_PERSON_TURN_SLACK = 0.1  # dlib distance allowed on top of 0.6 for photos ≥ 60° apart in yaw


def dlib_identity(photo: np.ndarray, analysis: dict) -> np.ndarray:
    """dlib's 128-D embedding of the chosen face of an analysed photo (turned upright as the analysis did)."""
    face = analysis["face"]
    k = int(analysis.get("orientation", {}).get("upright_deg", 0)) // 90
    h, w = photo.shape[:2]
    work = np.ascontiguousarray(np.rot90(photo, k)) if k else photo
    kps = _detect._image_order(_framing.apply_affine(_rot_affine(k, w, h), np.asarray(face["kps5"], np.float64)))
    return _identity.dlib_embedding(work, kps)


def same_person_threshold(yaw_a_deg: float, yaw_b_deg: float) -> float:
    """dlib's same-person distance (0.6) loosened with the yaw between the two photos: the embedding of a turned
    face drifts (the Lee Perry-Smith scan at 0° vs 75°: 0.63; different people's frontal photos: 0.71–0.90)."""
    turn = min(abs(yaw_a_deg - yaw_b_deg), 60.0) / 60.0
    return _identity.DLIB_SAME_PERSON + SAME_PERSON_TURN_SLACK * turn


def check_same_person(main: tuple[np.ndarray, dict], others: list[tuple[np.ndarray, dict]]) -> list[dict]:
    """Each further (photo, analysis) against the main one: [{"distance", "threshold"}]; raises FaceError
    face.different_people (with the distance) when one shows someone else."""
    ref = dlib_identity(*main)
    yaw0 = main[1]["face"]["pose"]["yaw_deg"]
    out = []
    for i, (photo, analysis) in enumerate(others, start=2):
        d = _identity.identity_distance(ref, dlib_identity(photo, analysis))
        limit = same_person_threshold(yaw0, analysis["face"]["pose"]["yaw_deg"])
        if d > limit:
            raise FaceError(f"Photo {i} shows someone else than photo 1: their faces are {d:.2f} apart (dlib "
                            f"identity distance; the same person measures below {limit:.2f} at this turn).",
                            code="face.different_people",
                            hint="Give photos of one person only, or run each photo as its own job.")
        out.append({"distance": round(d, 4), "threshold": round(limit, 4)})
    return out
