"""Texture the head model's skin UVs from a photo: visible side projected, hidden side mirrored, the rest
filled by pull-push diffusion of the known colours.

The skin atlas holds ICT's UDIM tiles 0 (face) and 1 (back of the head, neck) side by side:
atlas u = u / 2, glTF v = 1 − v.
"""
from __future__ import annotations

import numpy as np

from .raster import interpolate, project, rasterize, vertex_normals

SKIN_MATERIALS = ("M_Face", "M_BackHead")


def skin_faces(model) -> np.ndarray:
    """Triangle indices (F',) of the skin: face + back of head, without the mouth socket's inside."""
    mats = [model.material_names.index(n) for n in SKIN_MATERIALS if n in model.material_names]
    sel = np.isin(model.face_material, mats)
    if "mouth_socket" in model.groups:
        inside = np.zeros(model.n_vertices, bool)
        inside[model.groups["mouth_socket"]] = True
        sel &= ~np.all(inside[model.faces], axis=1)
    return np.nonzero(sel)[0]


def atlas_uv(uv: np.ndarray) -> np.ndarray:
    """ICT UDIM uv (N, 2), v up, tiles 0..1 → glTF atlas texcoords (N, 2) in [0, 1], v down."""
    u = np.clip(uv[:, 0], 0.0, 2.0) / 2.0
    return np.stack([u, 1.0 - uv[:, 1]], axis=1).astype(np.float32)


_UV_RASTER: dict = {}  # (model name, triangles, res) → (tid, bary): the UV layout never changes


def _uv_raster(model, faces_sel: np.ndarray, res: int):
    key = (model.name, model.n_vertices, len(faces_sel), int(faces_sel.sum()), res)
    if key not in _UV_RASTER:
        uvs = atlas_uv(model.uv[model.face_uv[faces_sel].reshape(-1)])  # (3F', 2)
        H, W = res, 2 * res
        corner_faces = np.arange(3 * len(faces_sel)).reshape(-1, 3)
        _UV_RASTER.clear()
        _UV_RASTER[key] = rasterize(uvs * [W, H] - 0.5, np.zeros(len(uvs)), corner_faces, H, W)[:2]
    return _UV_RASTER[key]


def texel_surface(model, verts: np.ndarray, faces_sel: np.ndarray, res: int):
    """Rasterise the skin's UV layout at (res, 2·res): per texel mask (H, W), positions (H, W, 3), normals
    (H, W, 3) and triangle (H, W) (index into faces_sel, −1 outside)."""
    tris = model.faces[faces_sel]
    tid, bary = _uv_raster(model, faces_sel, res)
    corner_faces = np.arange(3 * len(tris)).reshape(-1, 3)
    mask = tid >= 0
    n = vertex_normals(verts, model.faces)
    corner_pos = verts[tris.reshape(-1)]
    corner_nrm = n[tris.reshape(-1)]
    attr = interpolate(tid, bary, corner_faces, np.concatenate([corner_pos, corner_nrm], axis=1))
    return mask, attr[..., :3].astype(np.float64), attr[..., 3:].astype(np.float64), tid


def bake_photo_texture(model, verts: np.ndarray, K: np.ndarray, w2c: np.ndarray, photo: np.ndarray,
                       res: int = 512, occluders: np.ndarray | None = None,
                       exclude: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Atlas (res, 2·res, 3) uint8 for the skin, from `photo` (H, W, 3) uint8 seen by (K, w2c) with the head
    at `verts` (V, 3) (the fitted, not yet neutralised, shape). `exclude` (H, W) bool marks photo pixels that
    must not colour the skin (open mouth, eyeballs). Returns (atlas, coverage stats)."""
    from .render import visible_faces

    from ..headmodel.base import mirror_map

    Hp, Wp = photo.shape[:2]
    faces_sel = skin_faces(model)
    mask, pos, nrm, tri = texel_surface(model, verts, faces_sel, res)
    # which vertices the photo sees: corners of triangles that win the photo camera's z-buffer
    F_idx = visible_faces(model) if occluders is None else occluders
    xy, _ = project(verts, K, w2c)
    tid, _, _ = rasterize(xy, project(verts, K, w2c)[1], model.faces[F_idx], Hp, Wp, cull_backfaces=True)
    if exclude is not None:
        tid = np.where(exclude, -1, tid)
    seen_v = np.zeros(model.n_vertices, bool)
    seen_v[model.faces[F_idx[np.unique(tid[tid >= 0])]].ravel()] = True
    mirror = mirror_map(model.neutral)
    cam_centre = -w2c[:3, :3].T @ w2c[:3, 3]
    photo_f = photo[..., :3].astype(np.float32)

    def lookup(P, Nn, vis):
        """Colours (M, 3) and weights (M,) of surface points P with normals Nn, `vis` (M,) whether seen."""
        pxy, _ = project(P, K, w2c)
        view = cam_centre - P
        view /= np.linalg.norm(view, axis=1, keepdims=True)
        facing = (Nn * view).sum(axis=1)
        inside = (pxy[:, 0] >= 0) & (pxy[:, 0] <= Wp - 1) & (pxy[:, 1] >= 0) & (pxy[:, 1] <= Hp - 1)
        ok = inside & vis & (facing > 0.15)
        if exclude is not None:  # per texel too: a seen triangle may still reach into an excluded region
            xi = np.clip(np.round(pxy[:, 0]).astype(int), 0, Wp - 1)
            yi = np.clip(np.round(pxy[:, 1]).astype(int), 0, Hp - 1)
            ok &= ~exclude[yi, xi]
        col = sample_bilinear(photo_f, pxy)
        return col, np.where(ok, np.clip(facing, 0, 1) ** 2, 0.0)

    P, Nn = pos[mask], nrm[mask]
    corners = model.faces[faces_sel[tri[mask]]]  # (M, 3) vertices of each texel's triangle
    col, wgt = lookup(P, Nn, seen_v[corners].all(axis=1))
    flip = np.array([-1.0, 1.0, 1.0])
    col_m, wgt_m = lookup(P * flip, Nn * flip, seen_v[mirror[corners]].all(axis=1))
    use_m = (wgt < 0.05) & (wgt_m > wgt)
    colour = np.where(use_m[:, None], col_m, col)
    weight = np.where(use_m, wgt_m, wgt)
    known = weight > 0.02
    atlas = np.zeros((res, 2 * res, 3), np.float32)
    have = np.zeros((res, 2 * res), bool)
    idx = np.nonzero(mask)
    atlas[idx[0][known], idx[1][known]] = colour[known]
    have[idx[0][known], idx[1][known]] = True
    filled = pull_push(atlas, have)
    stats = {"texels": int(mask.sum()), "from_photo": float((wgt > 0.02).sum() / max(mask.sum(), 1)),
             "mirrored": float((use_m & known).sum() / max(mask.sum(), 1))}
    # dilate a little beyond the islands so bilinear lookups at seams do not bleed black
    return np.clip(filled + 0.5, 0, 255).astype(np.uint8), stats


def sample_bilinear(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples (M, C) of image (H, W, C) float32 at pixel coordinates xy (M, 2), edges replicated."""
    import cv2

    M = len(xy)
    cols = 1024
    n = -(-M // cols) * cols
    grid = np.zeros((n, 2), np.float32)
    grid[:M] = xy
    g = grid.reshape(-1, cols, 2)
    out = cv2.remap(image, g[..., 0], g[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(n, -1)[:M]


def pull_push(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill unknown pixels of `image` (H, W, C) from known ones by a coarse-to-fine average pyramid."""
    import cv2

    if not known.any():
        return image.copy()
    levels = []
    img = np.where(known[..., None], image, 0).astype(np.float32)
    w = known.astype(np.float32)
    while True:
        levels.append((img, w))
        if min(img.shape[:2]) <= 2:
            break
        h2, w2 = (img.shape[0] + 1) // 2, (img.shape[1] + 1) // 2
        img_s = cv2.resize(img * w[..., None], (w2, h2), interpolation=cv2.INTER_AREA)
        w_s = cv2.resize(w, (w2, h2), interpolation=cv2.INTER_AREA)
        img = np.where(w_s[..., None] > 1e-6, img_s / np.maximum(w_s[..., None], 1e-6), 0)
        w = np.minimum(w_s * 4, 1.0)
    out, wout = levels[-1]
    for img, w in reversed(levels[:-1]):
        up = cv2.resize(out, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_LINEAR)
        out = img * w[..., None] + up * (1 - w[..., None])
    return out
