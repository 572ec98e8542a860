"""Builds backend/headmodel/data/ict_pose_points.npz (`face.pose.POSE_POINTS`): where the face stage's own
detectors put their points on ICT-FaceKit Light. A development tool, run once when a detector or the head model
changes:

    python -m headforge.backend.face.pose_points [MODELS_ROOT]
"""
from __future__ import annotations

import numpy as np

from ..fitting.correspondence import compute_mediapipe_correspondence
from ..headmodel.ict import load_ict
from . import detect as _detect
from . import landmarks as _landmarks
from . import pose as _pose
from .analysis import FaceOptions, detect_upright


def build_pose_points(models_root: str | None = None, n_identities: int = 4, size: int = 512, log=print) -> dict:
    """Measure where the face stage's own detectors put their points on ICT-FaceKit Light: render the model
    (several identities, slight view changes; backend/fitting/correspondence.py), run detection, MediaPipe's mesh
    in its face window, dlib's 68 points in the detector's box and the detector's 5 keypoints exactly as the
    face stage does, and snap each point's mean hit on the neutral head to its surface.
    → {f"{source}_tri", f"{source}_bary", f"{source}_hits"} for each of SOURCES, and "mesh478_rigid"."""
    model = load_ict(_pose._ict_path())
    opts = FaceOptions(models_root=models_root or "")
    cache: dict = {}

    def points(rgb: np.ndarray) -> dict | None:
        key = rgb.tobytes()
        if key not in cache:
            faces, k, _, _ = detect_upright(rgb, opts)
            if not faces or k:
                cache[key] = None
            else:
                face = faces[_detect.choose_face(faces, -1)]
                mesh = _landmarks.mesh_478(rgb, face.bbox)
                lm68, _ = _landmarks.dlib_68(rgb, face.kps5)
                cache[key] = None if mesh is None else {"mesh478": mesh, "dlib68": lm68,
                                                         "kps5": np.asarray(face.kps5, np.float64)}
        return cache[key]

    out = {}
    for name, n in _pose.SOURCES.items():
        c = compute_mediapipe_correspondence(model, n_identities=n_identities, size=size, log=log, n_points=n,
                                             detector=lambda rgb, name=name: (points(rgb) or {}).get(name))
        out.update({f"{name}_tri": c["tri"], f"{name}_bary": c["bary"].astype(np.float32),
                    f"{name}_hits": c["hits"]})
    out["mesh478_rigid"] = _pose.rigid_mesh_subset(out["mesh478_hits"])
    return out


if __name__ == "__main__":
    import sys

    pts = build_pose_points(sys.argv[1] if len(sys.argv) > 1 else None)
    _pose.POSE_POINTS.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(_pose.POSE_POINTS, **pts)
    hits = ", ".join(f"{s} hits {int(pts[s + '_hits'].min())}..{int(pts[s + '_hits'].max())}" for s in _pose.SOURCES)
    print(f"wrote {_pose.POSE_POINTS}: {hits}")
