"""The registered head's skin atlas baked straight from the calibrated views (views/ of a full or views-mode
job): every skin texel's surface point, carried into the reconstruction's frame, is projected into each view
where the registered head itself does not hide it, weighted by cos(view angle)^power (mesh/texture.bake, the
same bake the mesh stage uses). Texels no view saw (the inside of the lips, under the chin) keep the colour
the caller had for them (the reconstructed mesh's texture); pull-push fills the atlas' gutters."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..render.image import pull_push
from ..views import read_views
from .texture import skin_faces, texel_surface


def load_bake_views(views_dir):
    """The job's views/ as mesh.texture.ColorView list, or None when it holds no cameras.json."""
    from ..mesh.texture import ColorView  # torch, lazily: the rig stage imports this module

    if not (Path(views_dir) / "cameras.json").is_file():
        return None
    _, views = read_views(views_dir, code="rig", need_alpha=False, skip_missing=True)
    return [ColorView(v.rgba[..., :3], v.rgba[..., 3] if v.has_alpha else None, v.K, v.w2c, v.camera_index)
            for v in views]


def bake_skin_from_views(model, basis: np.ndarray, to_world, views, texture_size: int,
                         fallback: np.ndarray | None = None, power: float = 4.0) -> tuple[np.ndarray, dict]:
    """basis (V, 3) the registered neutral in the model frame; `to_world` maps model-frame points (N, 3) into the
    views' frame (Fit3D.transform); views: mesh.texture.ColorView list; fallback (H, 2H, 3) float 0..255, the atlas
    from the mesh's texture, for the texels no view sees (None: those are filled from the seen ones, pull-push).
    → (atlas (H, 2H, 3) float 0..255, {"seen_fraction"})."""
    from ..mesh.texture import TexelSurface, bake  # torch, lazily: the rig stage imports this module

    faces_sel = skin_faces(model)
    mask, pos, nrm, _ = texel_surface(model, basis, faces_sel, texture_size)
    rows, cols = np.nonzero(mask)
    R = np.asarray(to_world(np.eye(3)) - to_world(np.zeros((1, 3))))  # scale · rotation, rows: images of axes
    normals = nrm[rows, cols] @ R
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    texels = TexelSurface(rows, cols, to_world(pos[rows, cols]), normals, texture_size)
    verts_w = to_world(basis.astype(np.float64))
    colour, weight = bake(views, verts_w, model.faces[faces_sel].astype(np.int64), texels, power=power)
    seen = weight > 0
    atlas = np.zeros(mask.shape + (3,), np.float32) if fallback is None else np.array(fallback, np.float32)
    atlas[rows[seen], cols[seen]] = 255.0 * colour[seen]
    known = mask.copy()
    if fallback is None:
        known[:] = False
        known[rows[seen], cols[seen]] = True
    return pull_push(atlas, known), {"seen_fraction": float(seen.mean()) if len(seen) else 0.0}
