"""The identity embedding of a sequence's frontal view (meta.json's `identity_embedding`): the face stage's detector
(SCRFD, YuNet or the bundled MediaPipe) finds the face, backend/face/identity.embed gives insightface's ArcFace when
the pack holds a recogniser, else dlib's 128-D ResNet embedding (offline, in face_recognition_models)."""
from __future__ import annotations

import numpy as np

from ..cameras import project
from ..face import detect
from ..face.identity import embed

MIN_SIDE = 512  # renders smaller than this are enlarged before detection (the detectors miss small faces)


def model_kps5(landmarks_68: np.ndarray, cam: dict) -> np.ndarray:
    """Five keypoints (5, 2) in image order from 68 iBUG landmarks (68, 3) in the rig's world and the view's camera:
    the eyes' centres, the nose tip, the mouth corners."""
    pts = np.stack([landmarks_68[36:42].mean(0), landmarks_68[42:48].mean(0), landmarks_68[30], landmarks_68[48],
                    landmarks_68[54]])
    kps = project(pts, cam)[0]
    for a, b in ((0, 1), (3, 4)):
        if kps[a, 0] > kps[b, 0]:
            kps[[a, b]] = kps[[b, a]]
    return kps


def skin_ita_deg(rgb: np.ndarray, kps5: np.ndarray) -> float:
    """Individual typology angle (Chardon et al. 1991) of the skin between the eyes and the mouth, in degrees:
    atan2(L* − 50, b*) of the region's median CIELAB colour (> 55 very light … < −30 dark)."""
    from skimage.color import rgb2lab

    k = np.asarray(kps5, np.float64)
    eye_y, mouth_y = k[:2, 1].mean(), k[3:, 1].mean()
    x0, x1 = k[0, 0], k[1, 0]
    y0, y1 = eye_y + 0.25 * (mouth_y - eye_y), eye_y + 0.7 * (mouth_y - eye_y)  # cheeks and nose, below the eyes
    h, w = rgb.shape[:2]
    ys = slice(max(int(y0), 0), min(int(np.ceil(y1)), h))
    xs = slice(max(int(x0), 0), min(int(np.ceil(x1)), w))
    lab = rgb2lab(rgb[ys, xs].reshape(-1, 1, 3) / 255.0).reshape(-1, 3)
    L, b = np.median(lab[:, 0]), np.median(lab[:, 2])
    return float(np.degrees(np.arctan2(L - 50.0, b)))


def over_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 straight RGBA → (H, W, 3) uint8 over white."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.clip(rgba[..., :3] * a + 255.0 * (1 - a) + 0.5, 0, 255).astype(np.uint8)


def frontal_embedding(rgba: np.ndarray, *, kps5: np.ndarray | None = None, detector: str = "auto",
                      pack: str = "buffalo_m", models_root=None, method: str = "auto") -> dict:
    """{"identity_embedding": list | None, "identity_model": str | None, "identity_note": str, "skin_ita_deg":
    float | None} for a frontal view (the skin's typology angle measured where the embedding's face is).
    `kps5` (5, 2) pixels (eyes, nose tip, mouth corners in image order) when known (a head model's landmarks
    projected by the view's camera): no detection then."""
    from PIL import Image

    rgb = over_white(rgba)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        s = MIN_SIDE / min(h, w)
        rgb = np.asarray(Image.fromarray(rgb).resize((round(w * s), round(h * s)), Image.Resampling.BICUBIC))
        kps5 = None if kps5 is None else (np.asarray(kps5, np.float64) + 0.5) * s - 0.5
    scrfd = detect.find_scrfd(pack, models_root)
    if kps5 is not None:
        emb, model = embed(rgb, kps5, method, scrfd.parent if scrfd is not None else None)
        return {"identity_embedding": [round(float(x), 6) for x in emb], "identity_model": model,
                "identity_note": "face aligned on the head model's landmarks projected into the view",
                "skin_ita_deg": round(skin_ita_deg(rgb, kps5), 2)}
    tried, faces = [], []
    for kind in detect.KINDS if detector == "auto" else [k for k in detect.KINDS if k.name == detector]:
        if kind.missing is not None and kind.find(pack, models_root) is None:
            if detector != "auto":
                detect.resolve_detector(detector, pack, models_root)  # the coded "not installed" error
            continue
        name = kind.name  # auto: the next installed detector when one finds no face (small or dark faces)
        tried.append(name)
        faces = detect.detect_faces(rgb, detector=name, pack=pack, models_root=models_root)
        if faces:
            break
    if not faces:
        return {"identity_embedding": None, "identity_model": None, "skin_ita_deg": None,
                "identity_note": f"no face found in the frontal view by {', '.join(tried)}"}
    face = max(faces, key=lambda d: d.size_px)
    emb, model = embed(rgb, face.kps5, method, scrfd.parent if scrfd is not None else None)
    return {"identity_embedding": [round(float(x), 6) for x in emb], "identity_model": model,
            "identity_note": f"face found by {name} (score {face.score:.2f}, {face.size_px:.0f} px)",
            "skin_ita_deg": round(skin_ita_deg(rgb, face.kps5), 2)}
