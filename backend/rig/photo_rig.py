"""Photo → fitted, textured, rigged head (the instant path, and the photo part of the full path)."""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ..errors import FaceError
from ..fitting.correspondence import load_dlib68_correspondence, load_mediapipe_correspondence
from ..fitting.landmarks import MP_EYE_L, MP_EYE_R, MP_FACE_OVAL, MP_IRIS, MP_LIPS_INNER
from ..fitting.photo import IBUG_CONTOUR, IBUG_EYES, MP_EYES, PhotoFit, default_intrinsics, fit_photos, \
    vertex_landmarks
from ..headmodel.parts import eye_centre, visible_faces
from ..render.image import LUMA, lab_to_rgb, rgb_to_lab
from ..render.raster import project, rasterize
from .build import build_rig
from .creases import folds_lifted
from .flame_rig import build_flame_rig
from .hair_mesh import hair_fall_dz, hair_shell
from .photo_parse import HAIR, LABEL_NAMES, SKIN, parse_photo
from .teeth import show_upper_teeth
from .texture import PhotoView, bake_photo_texture


@dataclass
class Landmarks:
    kind: str  # "mediapipe478" | "ibug68"
    points: np.ndarray  # (N, 2) px
    tri: np.ndarray  # (N,) model triangles
    bary: np.ndarray  # (N, 3)
    weights: np.ndarray  # (N,)
    eye_pairs: tuple
    holes: list = field(default_factory=list)  # polygons (M, 2) px to keep out of the texture
    iris: np.ndarray | None = None  # (2, 2) px iris centres when known


def landmarks_from_analysis(model, analysis: dict, prefer: str = "auto") -> Landmarks:
    """Pick the landmark set of face/analysis.json to fit: MediaPipe 478 (licence-clean default) or iBUG 68."""
    face = analysis.get("face") if isinstance(analysis, dict) else None
    if not face:
        raise FaceError("face/analysis.json holds no face; the rig needs a detected face.", code="rig.no_face")
    mp, l68 = face.get("landmarks_478"), face.get("landmarks_68")
    use = prefer
    if prefer == "auto":
        use = "mediapipe478" if mp is not None else "ibug68"
    if use == "mediapipe478" and mp is not None:
        pts = np.asarray(mp, np.float64)[:, :2]
        if pts.shape != (478, 2):
            raise FaceError(f"landmarks_478 has shape {pts.shape}, expected (478, 2|3).", code="rig.bad_landmarks")
        tri, bary = lid_margin_correspondence(model, *load_mediapipe_correspondence(model))
        w = np.ones(478)
        w[list(MP_FACE_OVAL)] = 0.3
        w[list(MP_EYE_R) + list(MP_EYE_L)] = EYE_WEIGHT
        holes = [pts[list(MP_LIPS_INNER)], pts[list(MP_EYE_R)], pts[list(MP_EYE_L)]]
        return Landmarks("mediapipe478", pts, tri, bary, w, MP_EYES, holes, pts[list(MP_IRIS)])
    if l68 is not None and model.landmarks_68 is None and model.name != "ict-facekit-light":
        raise FaceError(f"{model.name} has no 68-point landmark definition; it needs MediaPipe's 478 points "
                        "from the face stage.", code="rig.no_landmarks")
    if l68 is not None:
        pts = np.asarray(l68, np.float64)[:, :2]
        if pts.shape != (68, 2):
            raise FaceError(f"landmarks_68 has shape {pts.shape}, expected (68, 2).", code="rig.bad_landmarks")
        try:  # where dlib puts its points on the model (our correspondence), else the model's own 68

            tri, bary = load_dlib68_correspondence(model)
        except Exception:  # noqa: BLE001  (ModelMissingError: a model without that correspondence)
            tri, bary = vertex_landmarks(model.landmarks_68, model)
        w = np.ones(68)
        w[IBUG_CONTOUR] = 0.3
        holes = [pts[60:68], pts[36:42], pts[42:48]]
        return Landmarks("ibug68", pts, tri, bary, w, IBUG_EYES, holes, None)
    raise FaceError("The face stage found no landmarks (neither 478 nor 68 points); cannot fit the head.",
                    code="rig.no_landmarks")


LID_PX_PER_M = 10000.0  # the lid render's scale: 0.1 mm per pixel
# The lids whose MediaPipe points the instant fit takes on the model's margins. Both give the photo's eye
# opening best (rig opening vs MediaPipe's outline, IoU over the astronaut and group t1's six faces: stored
# 0.21, lower 0.37, both 0.41; astronaut eyes PSNR 13.6 / 14.9 / 15.4 dB), but moving the upper lid's points
# shifted the fitted identity's skull: Lee Perry-Smith novel views (benchmarks/complete_head) 23.14 -> 22.97 dB,
# the back 27.00 -> 26.56 dB, where the lower lid alone keeps or raises them (test scene 24.60 -> 24.85 dB).
LIDS = ("lower",)
EYE_WEIGHT = 2.0  # the eyelid points' weight in the fit (at 1 the lids stayed 1.5-2.7 px above the photo's)
_LID_CACHE: dict = {}  # (model, correspondence) → lid-margin correspondence


def lid_margin_correspondence(model, tri: np.ndarray, bary: np.ndarray,
                              lids: tuple[str, ...] = LIDS) -> tuple[np.ndarray, np.ndarray]:
    """(tri, bary) with MediaPipe's eyelid points (MP_EYE_R/L but the corners) of `lids` ("upper", "lower")
    moved onto the model's lid margins: each point, seen from the front on the mean face, goes straight up or
    down to the edge of the eye opening (the last skin pixel above the eyeball for the upper lid, below it for
    the lower).

    The stored correspondence was learned by running MediaPipe on shaded renders of the model, whose eyes are
    unlike a photo's: on the mean ICT face its lower-lid points lie 4.0 mm below the visible lower lid and its
    upper-lid points 1.8 mm below the upper lid (on the eyeball), while on a photo MediaPipe follows the lid
    margins. Fitted to those points the rig's eye opening sat above the photo's and narrower (slit eyes, and an
    iris measured against the photo's lower lid). Models without eyeball groups are returned unchanged."""
    if "eyeball_right" not in model.groups or "eyeball_left" not in model.groups:
        return tri, bary
    moved = (list(range(1, 8)) if "upper" in lids else []) + (list(range(9, 16)) if "lower" in lids else [])
    key = (model.name, model.n_vertices, float(np.asarray(model.neutral).sum()), tri.tobytes(), bary.tobytes(),
           tuple(moved))
    if key in _LID_CACHE:
        return _LID_CACHE[key][0].copy(), _LID_CACHE[key][1].copy()
    tri, bary = tri.copy(), bary.copy()
    v = np.asarray(model.neutral, np.float64)
    faces_vis = visible_faces(model)
    F = model.faces[faces_vis]
    eyeball = np.zeros(model.n_vertices, bool)
    eyeball[np.concatenate([model.groups["eyeball_right"], model.groups["eyeball_left"]])] = True
    on_eye = np.all(eyeball[F], axis=1)
    for outline, group in ((MP_EYE_R, "eyeball_right"), (MP_EYE_L, "eyeball_left")):
        c = eye_centre(v[model.groups[group]])
        # a far frontal camera (−Y toward +Y) centred on the eye, 40 × 30 mm at 0.1 mm per pixel
        w2c = np.eye(4)
        w2c[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
        w2c[:3, 3] = -w2c[:3, :3] @ (c + [0.0, -2.0, 0.0])
        W, H = 400, 300
        K = np.array([[LID_PX_PER_M * 2.0, 0, W / 2], [0, LID_PX_PER_M * 2.0, H / 2], [0, 0, 1]])
        xy, z = project(v, K, w2c)
        tid, pbary, _ = rasterize(xy, z, F, H, W, cull_backfaces=True)
        opening = (tid >= 0) & on_eye[np.maximum(tid, 0)]
        if not opening.any():
            continue
        ids = list(outline)
        P = project(np.einsum("nk,nkc->nc", bary[ids], v[model.faces[tri[ids]]]), K, w2c)[0]
        cols = np.round(P[:, 0]).astype(int)
        shift = np.full(len(ids), np.nan)  # rows each point moves to reach the margin (0 at the corners)
        shift[[0, 8]] = 0.0
        for k in list(range(1, 8)) + list(range(9, 16)):  # 1-7 the upper lid, 9-15 the lower (0, 8: corners)
            rows = np.nonzero(opening[:, cols[k]])[0] if 0 <= cols[k] < W else np.zeros(0, int)
            if len(rows):
                shift[k] = (rows.min() - 1 if k < 8 else rows.max() + 1) - P[k, 1]
        for k in np.nonzero(np.isnan(shift))[0]:  # beside a corner, past the opening: half the inner neighbour's
            inner = shift[k + 1] if k in (1, 9) else shift[k - 1]
            shift[k] = 0.5 * inner if np.isfinite(inner) else 0.0
        for k in moved:
            row = int(round(P[k, 1] + shift[k]))
            if not (0 <= row < H and 0 <= cols[k] < W) or tid[row, cols[k]] < 0 or on_eye[tid[row, cols[k]]]:
                continue
            tri[ids[k]] = faces_vis[tid[row, cols[k]]]
            bary[ids[k]] = pbary[row, cols[k]]
    _LID_CACHE[key] = (tri, bary)
    return tri.copy(), bary.copy()


def hole_mask(shape: tuple[int, int], polygons: list) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for poly in polygons:
        if poly is not None and len(poly) >= 3 and np.isfinite(poly).all():
            cv2.fillPoly(m, [np.round(poly).astype(np.int32)], 1)
    return m.astype(bool)


TURNED_EYE_WIDTH = 0.6  # an eye outline narrower than this share of the other's is turned away from the camera
SCLERA_FROM_SKIN = (0.92, 0.69)  # the astronaut's seen sclera over her photographed skin: L*, chroma


def plausible_sclera(sclera_rgb, skin_rgb) -> tuple:
    """The sclera colour (0..1 RGB) to paint: the one seen in the photo, unless it is more saturated than the
    photo's skin (no eye white is: what was sampled were lids, lashes and their shadow, as on the group photo's
    small and narrowed eyes, chroma 31-42 against the skin's 16-27), then the skin's colour at SCLERA_FROM_SKIN
    of its lightness and chroma (the ratios of a sclera seen whole: the astronaut's, chroma 13 vs 19)."""
    if skin_rgb is None:
        return tuple(float(c) for c in sclera_rgb)
    seen = rgb_to_lab(255 * np.asarray(sclera_rgb, np.float64)).astype(np.float64)
    skin = rgb_to_lab(255 * np.asarray(skin_rgb, np.float64)).astype(np.float64)
    if np.hypot(*seen[1:]) <= np.hypot(*skin[1:]) + 2.0:  # (2: a just-noticeable chroma, grey photos' noise)
        return tuple(float(c) for c in sclera_rgb)
    lab = np.array([SCLERA_FROM_SKIN[0] * skin[0], *(SCLERA_FROM_SKIN[1] * skin[1:])])
    rgb = lab_to_rgb(lab) / 255.0
    return tuple(float(c) for c in np.clip(rgb, 0, 1))


def eye_colours_from_photo(photo: np.ndarray, lm: Landmarks, skin_rgb=None) -> dict:
    """Iris and sclera colours (0..1 RGB) seen in the photo, so the unlit eyeballs match the photo's light
    (a textbook white sclera glows next to skin that carries the photo's shading), and the iris radius in px.

    Inside each eye's outline: the iris is the ring between the pupil (0.4 of the radius) and 0.9 of the radius
    around its centre, the radius from MediaPipe's four iris-edge points (else 0.22 of the eye's width), without
    lashes and highlights (its darkest and brightest tenth); its colour is the median. The sclera is the brighter
    half of the rest (lashes, lids and shadow are darker), checked against the photo's skin `skin_rgb` (0..1;
    plausible_sclera). An eye turned away (its outline under TURNED_EYE_WIDTH of the other's: group t1 face 4's
    far eye at a 53° turn, whose ring is skin) is left out."""
    H, W = photo.shape[:2]
    img = photo[..., :3].astype(np.float64) / 255.0
    iris_px, sclera_px, radii = [], [], []
    edges = None
    if lm.kind == "mediapipe478" and len(lm.points) >= 478:
        edges = {0: (lm.points[468], lm.points[469:473]), 1: (lm.points[473], lm.points[474:478])}
    outlines = [p for p in lm.holes[1:3] if p is not None and len(p) >= 3 and np.isfinite(p).all()]
    widths = [float(np.linalg.norm(p[:, :2].max(axis=0) - p[:, :2].min(axis=0))) for p in outlines]
    for poly, width_ in zip(outlines, widths):  # the two eye outlines
        if width_ < TURNED_EYE_WIDTH * max(widths):
            continue  # an eye turned away (a head turned past ~50°): its ring is lid, skin or hair
        mask = np.zeros((H, W), np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        ys, xs = np.nonzero(mask)
        if len(xs) < 6:
            continue
        px = img[ys, xs]
        lum = px @ LUMA
        width = np.ptp(poly[:, 0])
        if lm.iris is not None:
            cx, cy = min(lm.iris, key=lambda c: np.hypot(*(c - poly.mean(axis=0))))
            r = 0.22 * width
            if edges is not None:
                centre, ring = min(edges.values(), key=lambda e: np.hypot(*(e[0] - poly.mean(axis=0))))
                r = float(np.mean(np.linalg.norm(ring - centre, axis=1)))
                # the iris's size: its longer semi-axis (a turned eye's iris is an ellipse, narrower across)
                radii.append(0.5 * max(np.linalg.norm(ring[0] - ring[2]), np.linalg.norm(ring[1] - ring[3])))
            d = np.hypot(xs - cx, ys - cy)
            in_iris = d < 0.9 * r
            ring_sel = in_iris & (d > 0.4 * r)
            if ring_sel.sum() >= 6:
                lo, hi = np.percentile(lum[ring_sel], [10, 90])
                ring_sel &= (lum >= lo) & (lum <= hi)
            iris_px.append(px[ring_sel if ring_sel.sum() >= 3 else in_iris])
        else:
            in_iris = lum < np.percentile(lum, 33)
            iris_px.append(px[in_iris])
        rest = px[~in_iris]
        if len(rest):
            rl = rest @ LUMA
            sclera_px.append(rest[rl >= np.median(rl)])
    out = {"iris_rgb": (0.3, 0.2, 0.12), "sclera_rgb": (0.92, 0.9, 0.88)}
    if iris_px and sum(map(len, iris_px)):
        out["iris_rgb"] = tuple(np.median(np.concatenate(iris_px), axis=0))
    if sclera_px and sum(map(len, sclera_px)):
        out["sclera_rgb"] = plausible_sclera(np.median(np.concatenate(sclera_px), axis=0), skin_rgb)
    if radii:
        out["iris_radius_px"] = float(np.mean(radii))
    return out


def iris_angle_deg(model, identity: np.ndarray, iris_radius_px: float, inter_ocular_px: float) -> float:
    """Half-angle (deg) of the iris cap on the fitted eyeball: the photo's iris radius in metres (px × the
    fitted eyes' distance / the photo's) over the eyeball's radius; bounded to human irises (20–40°)."""

    v = model.vertices(identity=identity)
    pl, pr = v[model.groups["eyeball_left"]], v[model.groups["eyeball_right"]]
    cl, cr = eye_centre(pl), eye_centre(pr)
    radius_m = float(np.linalg.norm(pl - cl, axis=1).mean())
    r_m = iris_radius_px * float(np.linalg.norm(cl - cr)) / max(inter_ocular_px, 1e-6)
    return float(np.clip(np.degrees(np.arcsin(np.clip(r_m / radius_m, 0, 1))), 20.0, 40.0))


GAZE_LIMIT_DEG = (30.0, 25.0)  # |yaw|, |pitch| of a gaze the eye can hold (eyes turn about ±30-35°)


def photo_gaze(model, verts: np.ndarray, K: np.ndarray, w2c: np.ndarray, iris_px) -> dict:
    """Where each eye looks in the photo: {"gaze_right_deg": (yaw, pitch), "gaze_left_deg": ...} (build_rig's
    convention), from the camera ray through MediaPipe's iris centre (468 the subject's right, 473 the left)
    met with the fitted eyeball's sphere; bounded to GAZE_LIMIT_DEG. An eye whose ray misses its eyeball (a
    far-turned or hidden eye) takes the other eye's gaze; {} when neither meets its eyeball.

    rig.json keeps it as the portrait's gaze (fit.portrait_gaze_deg), posed by build.eye_rotations wherever the
    rig is shown as the photo shows it (ICT's forward-looking iris lay 0.3-1.1 iris radii off MediaPipe's iris
    centre on the group photo's faces, and the photo's iris colour was compared with lids and sclera)."""
    R, t = np.asarray(w2c)[:3, :3], np.asarray(w2c)[:3, 3]
    cam = -R.T @ t
    out = {}
    for key, group, centre_px in (("gaze_right_deg", "eyeball_right", iris_px[0]),
                                  ("gaze_left_deg", "eyeball_left", iris_px[1])):
        p = np.asarray(verts, np.float64)[model.groups[group]]
        c = eye_centre(p)
        radius = float(np.linalg.norm(p - c, axis=1).mean())
        ray = R.T @ np.linalg.solve(K, [centre_px[0], centre_px[1], 1.0])
        ray /= np.linalg.norm(ray)
        oc = cam - c
        b = float(oc @ ray)
        disc = b * b - float(oc @ oc - radius * radius)
        if disc < 0 or not np.isfinite(disc):
            continue
        d = (cam + (-b - np.sqrt(disc)) * ray - c) / radius  # the nearer meeting point on the eyeball
        yaw = float(np.degrees(np.arctan2(d[0], -d[1])))
        pitch = float(np.degrees(np.arcsin(np.clip(d[2], -1, 1))))
        out[key] = (float(np.clip(yaw, -GAZE_LIMIT_DEG[0], GAZE_LIMIT_DEG[0])),
                    float(np.clip(pitch, -GAZE_LIMIT_DEG[1], GAZE_LIMIT_DEG[1])))
    if len(out) == 1:
        out["gaze_left_deg" if "gaze_right_deg" in out else "gaze_right_deg"] = next(iter(out.values()))
    return out


def parse_summary(parse) -> dict:
    """Fractions of the photo's pixels by label, for rig.json."""
    counts = np.bincount(parse.labels.ravel(), minlength=len(LABEL_NAMES)) / parse.labels.size
    return {n: round(float(c), 4) for n, c in zip(LABEL_NAMES, counts)}


WORK_PIXELS = 4_000_000  # photos larger than this are worked on in a window round the head (head_window)
WINDOW_FACES = 2.0  # the window reaches this many landmark-box sizes from the face's centre each way (hair, shoulders)
FACE_PX = 512  # ... scaled down while the landmark box stays this wide (and the atlas's height) or wider


def head_window(photo: np.ndarray, analysis: dict, matte, texture_size: int = 512):
    """A large photo's part round the head, at the resolution the texture can use: → (photo, analysis, matte, A),
    A (3, 3) mapping the photo's pixel coordinates to the window's (pixel centres at integers). Photos up to
    WORK_PIXELS are returned as they are (A = I). Only the face's landmarks (landmarks_478, landmarks_68) are
    moved into the window: they are what the rig reads from the analysis.

    A 4000 × 4000 photo took 58 s in the rig stage (the parse, the texture's and the hair's passes over 16 MP);
    the window keeps what reaches the head and its hair."""
    H, W = photo.shape[:2]
    face = analysis.get("face") if isinstance(analysis, dict) else None
    pts = (face.get("landmarks_478") or face.get("landmarks_68")) if face else None
    if H * W <= WORK_PIXELS or not pts:
        return photo, analysis, matte, np.eye(3)
    xy = np.asarray(pts, np.float64)[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    c, d = (lo + hi) / 2, float(max(hi - lo))
    x0, y0 = np.maximum(np.floor(c - WINDOW_FACES * d), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(c + WINDOW_FACES * d), [W, H]).astype(int)
    s = min(1.0, max(FACE_PX, texture_size) / max(d, 1.0))
    size = (max(1, int(round((x1 - x0) * s))), max(1, int(round((y1 - y0) * s))))
    sx, sy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    # the crop shifts by (x0, y0); the resize maps pixel centres x + ½ → (x + ½)·s
    A = np.array([[sx, 0.0, sx * (0.5 - x0) - 0.5], [0.0, sy, sy * (0.5 - y0) - 0.5], [0.0, 0.0, 1.0]])

    def cut(img):
        img = np.ascontiguousarray(img[y0:y1, x0:x1])
        return img if s == 1.0 else cv2.resize(img, size, interpolation=cv2.INTER_AREA)

    analysis = copy.deepcopy(analysis)
    for key in ("landmarks_478", "landmarks_68"):
        if analysis["face"].get(key):
            q = np.asarray(analysis["face"][key], np.float64)
            q[:, 0], q[:, 1] = q[:, 0] * sx + A[0, 2], q[:, 1] * sy + A[1, 2]
            if q.shape[1] > 2:  # MediaPipe's depth is in the image's pixel units
                q[:, 2:] *= sx
            analysis["face"][key] = q.tolist()
    return cut(photo), analysis, (None if matte is None else cut(matte)), A


def fit_in_photo(fit: PhotoFit, A: np.ndarray) -> PhotoFit:
    """A fit made in a head_window, in the whole photo's pixels: its intrinsics and pixel measures."""
    if np.array_equal(A, np.eye(3)):
        return fit
    return replace(fit, K=np.linalg.inv(A) @ fit.K, residual_px=fit.residual_px / A[0, 0],
                   inter_ocular_px=fit.inter_ocular_px / A[0, 0])


def landmarks_in_photo(lm: Landmarks, A: np.ndarray) -> Landmarks:
    """Landmarks found in a head_window, in the whole photo's pixels."""
    if np.array_equal(A, np.eye(3)):
        return lm
    back = lambda q: (np.asarray(q) - A[:2, 2]) / np.diag(A)[:2]  # noqa: E731
    return replace(lm, points=back(lm.points), holes=[back(h) for h in lm.holes],
                   iris=None if lm.iris is None else back(lm.iris))


def rig_from_photo(model, photo: np.ndarray, analysis: dict, *, landmarks: str = "auto", texture_size: int = 512,
                   n_identity: int = 60, matte: np.ndarray | None = None, progress=lambda f, m: None):
    """→ (rig, atlas (res, 2res, 3) uint8, fit: PhotoFit, lm: Landmarks, info dict).

    `matte` (H, W) in [0, 1]: the face stage's person matte; with MediaPipe's landmarks the photo's pixels are
    labelled (photo_parse) so that only the head's skin and hair reach the texture."""
    return rig_from_photos(model, [(photo, analysis, matte)], landmarks=landmarks, texture_size=texture_size,
                           n_identity=n_identity, progress=progress)


def rig_from_photos(model, photos: list, *, landmarks: str = "auto", texture_size: int = 512, n_identity: int = 60,
                    progress=lambda f, m: None):
    """Several photos of one person [(photo (H, W, 3) uint8, analysis, matte or None)], the first the main one
    (its expression is the portrait's, its eyes and hair outline are used): one identity fitted to all, a pose
    and an expression per photo, the skin texture fused from all by viewing angle.
    → (rig, atlas, fit of the main photo, its Landmarks, info); info["photos"]: per photo pose and fit error. A
    large photo is worked on in a window round the head (head_window); what this returns is in the photo's pixels."""

    t0 = time.time()
    # a large photo is worked on round the head, its camera the whole photo's (default_intrinsics) seen there
    cams = [default_intrinsics(p.shape[1], p.shape[0]) for p, _, _ in photos]
    windows = [head_window(p, a, m, texture_size) for p, a, m in photos]
    photos, to_window = [w[:3] for w in windows], [w[3] for w in windows]
    lms = [landmarks_from_analysis(model, a, landmarks) for _, a, _ in photos]
    photo, _, matte = photos[0]
    lm = lms[0]
    H, W = photo.shape[:2]
    progress(0.1, f"Fitting {model.name} to {len(lm.points)} landmarks"
             + (f" in {len(photos)} photos" if len(photos) > 1 else ""))
    fits = fit_photos(model, [{"points": m.points, "tri": m.tri, "bary": m.bary, "image_size": p.shape[1::-1],
                               "weights": m.weights, "eye_pairs": m.eye_pairs, "intrinsics": A @ K}
                              for m, (p, _, _), A, K in zip(lms, photos, to_window, cams)],
                      n_identity=n_identity)
    fit: PhotoFit = fits[0]
    t_fit = time.time()
    if model.uv is None:  # FLAME: no UVs in its file; a flat skin colour from the photo, ARKit keys transferred
        progress(0.5, "Building the rig (ARKit keys carried over from ICT-FaceKit)")
        hull = np.zeros((H, W), np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm.points).astype(np.int32)), 1)
        hull &= ~hole_mask((H, W), lm.holes)
        skin_rgb = (tuple(np.median(photo[hull.astype(bool)][:, :3], axis=0) / 255.0) if hull.any()
                    else (0.8, 0.62, 0.52))
        rig = build_flame_rig(model, fit.identity, skin_rgb=skin_rgb)
        info = {"landmarks": lm.kind, "seconds": {"fit": t_fit - t0, "rig": time.time() - t_fit},
                "texture": None, "reprojection_error_iod": fit.error_iod, **fit.stats}
        return rig, None, fit_in_photo(fit, to_window[0]), landmarks_in_photo(lm, to_window[0]), info
    progress(0.4, "Projecting the photo onto the skin" if len(photos) == 1 else
             f"Projecting the {len(photos)} photos onto the skin")
    views = [_photo_view(model, f, m, p, mt) for f, m, (p, _, mt) in zip(fits, lms, photos)]
    parse = views[0].parse
    fall = None
    if parse is not None and parse.hair_rgb is not None:  # where the hair ends beside the head (a bob)
        fall = hair_fall_dz(model, fit.identity, fit.expression, fit.K, fit.w2c, parse.labels == HAIR)
    atlas, tex_stats = bake_photo_texture(model, views[0].verts, fit.K, fit.w2c, photo, res=texture_size,
                                          exclude=views[0].exclude, parse=parse,
                                          more=[v for v in views[1:] if v.parse is not None], fall_dz=fall,
                                          rest=model.vertices(identity=fit.identity))  # the jaw line at rest
    tex_stats["photo_labels"] = None if parse is None else parse_summary(parse)
    atlas = folds_lifted(atlas, model, fit.expression)  # a smile's or a squint's folds are not the skin's colour
    hair, hair_info = None, None
    if parse is not None and parse.hair_rgb is not None:
        progress(0.6, "Shaping the hair")
        hair, hair_info = hair_shell(model, fit.identity, fit.expression, fit.K, fit.w2c, parse.labels == HAIR,
                                     atlas, tex_stats.get("hairline_front_m_above_eyes"), fall_dz=fall,
                                     skin_mask=parse.labels == SKIN,
                                     front_profile=tex_stats.get("hairline_front_profile"), photo=photo)
        if hair_info and "reach_px_max" in hair_info:  # in the whole photo's pixels, as the rest
            hair_info["reach_px_max"] = round(float(hair_info["reach_px_max"]) / to_window[0][0, 0], 1)
    t_tex = time.time()
    progress(0.7, "Building the rig (neutral basis, 52 ARKit keys, bones)")
    eyes = eye_colours_from_photo(photo, lm, None if parse is None else parse.skin_rgb)
    r_px = eyes.pop("iris_radius_px", None)
    if r_px is not None:
        eyes["iris_deg"] = iris_angle_deg(model, fit.identity, r_px, fit.inter_ocular_px)
    # where the photo's eyes look: the portrait's pose of the eye bones (the rig rests looking ahead)
    gaze = photo_gaze(model, views[0].verts, fit.K, fit.w2c, lm.iris) if lm.iris is not None else {}
    if parse is not None and parse.grey:  # the mouth's parts in the photo's own tone, as its skin and eyes are
        eyes["part_tone"] = tuple(parse.skin_rgb / max(float(LUMA @ parse.skin_rgb), 1e-6))
    rig = build_rig(model, fit.identity, **eyes)
    show_upper_teeth(model, rig)  # an open mouth shows the upper teeth
    info = {"landmarks": lm.kind, "seconds": {"fit": t_fit - t0, "texture": t_tex - t_fit,
                                              "rig": time.time() - t_tex},
            "texture": tex_stats, "hair_mesh": hair, "hair": hair_info,
            "eyes": {k: [round(float(c), 4) for c in v] if isinstance(v, tuple) else round(float(v), 2)
                     for k, v in eyes.items()},
            "portrait_gaze_deg": {k: [round(float(a), 2) for a in v] for k, v in gaze.items()},
            "reprojection_error_iod": fit.error_iod, **fit.stats}
    if len(photos) > 1:
        info["photos"] = [photo_record(fit_in_photo(f, A)) for f, A in zip(fits, to_window)]
    return rig, atlas, fit_in_photo(fit, to_window[0]), landmarks_in_photo(lm, to_window[0]), info


def photo_record(fit: PhotoFit) -> dict:
    """One photo's part of a several-photo fit for rig.json: its camera, yaw, expression and fit error."""
    R = fit.w2c[:3, :3]
    fwd = R.T @ np.array([0.0, 0.0, 1.0])  # the camera's viewing direction in the head frame
    # yaw as the face stage gives it: > 0 when the subject turned toward their own left (+X)
    return {"camera": {"K": fit.K.tolist(), "w2c": fit.w2c.tolist()},
            "yaw_deg": round(float(np.degrees(np.arctan2(fwd[0], fwd[1]))), 1),
            "expression": fit.expression.tolist(), "reprojection_error_iod": round(fit.error_iod, 4),
            "single_photo_error_iod": round(float(fit.stats.get("single_photo_error_iod", fit.error_iod)), 4)}


def _photo_view(model, fit: PhotoFit, lm: Landmarks, photo: np.ndarray, matte):
    """A photo ready to texture from: the head in its expression, its eyes and open mouth kept out (dilated by
    6 % of the eye distance), its pixels labelled (MediaPipe's landmarks only)."""

    H, W = photo.shape[:2]
    exclude = hole_mask((H, W), lm.holes)
    r = max(1, int(round(0.06 * fit.inter_ocular_px)))
    exclude = cv2.dilate(exclude.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)).astype(bool)
    parse = None
    if lm.kind == "mediapipe478":
        if matte is not None and matte.shape != photo.shape[:2]:
            matte = None  # a matte of another photo: label without it
        parse = parse_photo(photo, lm.points, matte)
    return PhotoView(model.vertices(fit.identity, fit.expression), fit.K, fit.w2c, photo, exclude, parse)


def load_more_photos(job_path, analysis: dict) -> list:
    """The further photos of a several-photo job [(photo (H, W, 3) uint8, analysis, matte (H, W) or None)], as
    face/analysis.json's "more_photos" lists them (input/more/NN.png, face/more/NN.json, face/more/NN_matte.png);
    `job_path`: job-relative name → path."""
    from PIL import Image

    out = []
    for entry in analysis.get("more_photos") or []:
        name = entry["name"]
        try:
            photo = np.asarray(Image.open(job_path(f"input/more/{name}.png")).convert("RGB"))
            more = json.loads(job_path(f"face/more/{name}.json").read_text())
        except (OSError, ValueError) as e:
            raise FaceError(f"Photo {name} of this job is missing or unreadable ({e}); run the input and face "
                            "stages again.", code="rig.bad_analysis") from e
        matte_path = job_path(f"face/more/{name}_matte.png")
        matte = np.asarray(Image.open(matte_path).convert("L"), np.float32) / 255.0 if matte_path.is_file() else None
        out.append((photo, more, matte))
    return out
