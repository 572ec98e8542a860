"""MediaPipe 478-point ↔ head-model surface correspondence, computed ourselves.

We render the head model (several identities and slight view changes) with the numpy rasterizer, run MediaPipe
Face Mesh on each render, cast every detected 2D point onto the rendered surface (triangle + barycentrics),
average the hits on the neutral template and snap the mean to its surface. The result, (tri, bary) per point,
is stored beside the model (`ict_mediapipe478.npz`) and regenerated with
`python -m headforge.backend.fitting.correspondence`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import cameras
from ..errors import ModelMissingError
from ..headmodel.parts import visible_faces
from ..render.shade import render_shaded
from .geometry import SurfaceQuery, barycentric
from .landmarks import mediapipe_478

DATA = Path(__file__).resolve().parent.parent / "headmodel" / "data"
ICT_MP_FILE = DATA / "ict_mediapipe478.npz"
ICT_DLIB_FILE = DATA / "ict_dlib68.npz"  # dlib's 68 points as dlib places them on renders of the model


def compute_mediapipe_correspondence(model, n_identities: int = 4, size: int = 512, seed: int = 0,
                                     log=print, detector=None, n_points: int = 478) -> dict:
    """→ {"tri": (N,) int64 into model.faces, "bary": (N, 3), "hits": (N,) renders that saw each point}.

    `detector(rgb) -> (N, ≥2) px | None` defaults to MediaPipe's 478 points; dlib's 68 work the same way."""
    detector = detector or mediapipe_478
    rng = np.random.default_rng(seed)
    ids = [np.zeros(model.n_identity)] + [rng.standard_normal(model.n_identity) * 0.8 for _ in range(n_identities - 1)]
    views = [(0, 0), (0, -12), (0, 12), (-8, 0), (8, 0)]  # (elevation, azimuth) degrees
    K = cameras.intrinsics(size, 12.0)
    acc = np.zeros((n_points, 3))
    hits = np.zeros(n_points, np.int64)
    for a in ids:
        verts = model.vertices(identity=a)
        if model.landmarks_68 is not None:
            centre = verts[model.landmarks_68].mean(axis=0)
        else:  # the front half's middle: the face sits around there
            front = verts[verts[:, 1] < np.median(verts[:, 1])]
            centre = np.array([0.0, 0.0, 0.5 * (front[:, 2].min() + front[:, 2].max())])
        verts_c = verts - centre
        for el, az in views:
            w2c = np.linalg.inv(cameras.orbit_c2w_opencv(el, az, radius=1.2))
            rgb, tid, bary, F = render_shaded(model, verts_c, K, w2c, (size, size))
            pts = detector((rgb * 255).astype(np.uint8))
            if pts is None:
                log(f"  no face found in render el={el} az={az}")
                continue
            px = np.clip(np.round(pts[:, :2]).astype(int), 0, size - 1)
            t = tid[px[:, 1], px[:, 0]]
            ok = t >= 0
            b = bary[px[:, 1], px[:, 0]]
            on_neutral = np.einsum("nk,nkc->nc", b[ok], model.neutral[F[t[ok]]].astype(np.float64))
            acc[ok] += on_neutral
            hits[ok] += 1
    if (hits == 0).any():
        raise RuntimeError(f"{int((hits == 0).sum())} landmarks never landed on the head model")
    mean = acc / hits[:, None]

    F = model.faces[visible_faces(model)]
    closest, _, t = SurfaceQuery(model.neutral, F).closest(mean)
    tri = visible_faces(model)[t]
    bary = barycentric(closest, model.neutral[model.faces[tri]].astype(np.float64))
    return {"tri": tri.astype(np.int64), "bary": bary.astype(np.float64), "hits": hits}


_COMPUTED: dict = {}


def load_mediapipe_correspondence(model) -> tuple[np.ndarray, np.ndarray]:
    """(tri (478,), bary (478, 3)): for ICT-FaceKit Light from the stored file; for another model (FLAME)
    computed on first use and cached beside its file (`<file>.mediapipe478.npz`)."""
    if model.name != "ict-facekit-light":
        src = model.info.get("file")
        key = (model.name, src, model.n_vertices)
        if key not in _COMPUTED:
            cache = Path(str(src) + ".mediapipe478.npz") if src else None
            if cache is not None and cache.is_file():
                z = np.load(cache)
                _COMPUTED[key] = (z["tri"].astype(np.int64), z["bary"].astype(np.float64))
            else:
                try:
                    c = compute_mediapipe_correspondence(model, n_identities=2, log=lambda *a: None)
                except RuntimeError as e:
                    raise ModelMissingError(f"MediaPipe does not find a face on renders of {model.name}: {e}.",
                                            code="model.no_correspondence") from e
                _COMPUTED[key] = (c["tri"], c["bary"])
                if cache is not None:
                    try:
                        np.savez_compressed(cache, tri=c["tri"], bary=c["bary"].astype(np.float32))
                    except OSError:
                        pass  # a read-only folder: recomputed next time
        return _COMPUTED[key]
    if not ICT_MP_FILE.is_file():
        raise ModelMissingError(f"No MediaPipe correspondence for head model {model.name!r}.",
                                code="model.no_correspondence",
                                hint="Use the 68-point landmarks, or compute one with "
                                     "headforge.backend.fitting.correspondence.")
    z = np.load(ICT_MP_FILE)
    return z["tri"].astype(np.int64), z["bary"].astype(np.float64)


def load_dlib68_correspondence(model) -> tuple[np.ndarray, np.ndarray]:
    """(tri (68,), bary (68, 3)) where dlib's detector puts its 68 points on ICT-FaceKit Light."""
    if model.name != "ict-facekit-light" or not ICT_DLIB_FILE.is_file():
        raise ModelMissingError(f"No dlib-68 correspondence for head model {model.name!r}.",
                                code="model.no_correspondence")
    z = np.load(ICT_DLIB_FILE)
    return z["tri"].astype(np.int64), z["bary"].astype(np.float64)


def landmark_points(model, verts: np.ndarray, tri: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Surface points (N, 3) of `verts` (V, 3) at (tri, bary)."""
    return np.einsum("nk,nkc->nc", bary, verts[model.faces[tri]])


if __name__ == "__main__":
    import sys
    import time

    from ..headmodel import load_ict
    from .landmarks import dlib_68

    m = load_ict()
    DATA.mkdir(parents=True, exist_ok=True)
    which = sys.argv[1:] or ["mediapipe", "dlib"]
    for name, path, det, n in (("mediapipe", ICT_MP_FILE, None, 478), ("dlib", ICT_DLIB_FILE, dlib_68, 68)):
        if name not in which:
            continue
        t0 = time.time()
        c = compute_mediapipe_correspondence(m, detector=det, n_points=n)
        np.savez_compressed(path, tri=c["tri"], bary=c["bary"].astype(np.float32), hits=c["hits"])
        print(f"wrote {path} ({time.time() - t0:.1f} s); hits per point min {c['hits'].min()} "
              f"max {c['hits'].max()}")
