"""A hair volume from one photo: the scalp (the texture's hair region) pushed out along its normals as far as the
photo's hair reaches beyond the fitted head's outline, as a separate mesh skinned to the head bone, textured
with the skin atlas's hair.

The outline is measured in the photo around the head's projected centre: for each direction in the image, how
far the hair (photo_parse's HAIR pixels joined to the head) reaches past the head's own silhouette. Every scalp
vertex takes the reach of the direction it projects to (a bob is as full behind as at its sides), fading to
nothing at the hairline so the shell meets the scalp without a step. Bald and short-haired heads (reach under
`min_reach_m`) get no mesh.
"""
from __future__ import annotations

import numpy as np

from ..headmodel.parts import eye_centre, visible_faces
from ..render.raster import project, rasterize, vertex_normals
from .texture import atlas_uv, skin_faces, texel_surface
from .texture_complete import hair_weight, hairline_height, head_axis

N_DIRECTIONS = 180


def hair_reach_px(head_mask: np.ndarray, hair_mask: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(N_DIRECTIONS,) px the hair reaches beyond the head's silhouette along rays from `centre` (2,) px,
    direction k at angle 2πk/N (image x right, y down); 0 where no hair touches the silhouette."""
    H, W = head_mask.shape
    ang = 2 * np.pi * np.arange(N_DIRECTIONS) / N_DIRECTIONS
    d = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    r = np.arange(0, int(np.hypot(H, W)), dtype=np.float64)
    px = centre[None, None, :] + r[None, :, None] * d[:, None, :]  # (N, R, 2)
    inside = (px[..., 0] >= 0) & (px[..., 0] <= W - 1) & (px[..., 1] >= 0) & (px[..., 1] <= H - 1)
    xi = np.clip(np.round(px[..., 0]).astype(int), 0, W - 1)
    yi = np.clip(np.round(px[..., 1]).astype(int), 0, H - 1)
    head = head_mask[yi, xi] & inside
    hair = hair_mask[yi, xi] & inside
    out = np.zeros(N_DIRECTIONS)
    for k in range(N_DIRECTIONS):
        hk = np.nonzero(head[k])[0]
        if len(hk) == 0:
            continue
        edge = hk.max()  # the head's outline along this ray
        run = hair[k, edge + 1:]
        gap = 3  # the hair may start a few px past the outline (matte and fit disagree by a little)
        start = np.argmax(run[:gap + 1]) if run[:gap + 1].any() else None
        if start is None:
            continue
        stop = np.argmin(run[start:]) if not run[start:].all() else len(run) - start
        out[k] = start + stop
    # a ray through a gap between strands: the neighbours' reach (circular median of 5)
    pad = np.concatenate([out[-2:], out, out[:2]])
    return np.median(np.stack([pad[i:i + N_DIRECTIONS] for i in range(5)]), axis=0)


def hair_shell(model, identity: np.ndarray, expression: np.ndarray, K: np.ndarray, w2c: np.ndarray,
               hair_mask: np.ndarray, atlas: np.ndarray, front_dz: float | None,
               min_reach_m: float = 0.008, max_reach_m: float = 0.09) -> tuple[dict | None, dict]:
    """→ (attachment {name, verts (n, 3) neutral world, faces, uv (n, 2) glTF, texture, bone} or None, info).

    `hair_mask` (H, W) bool: the photo's hair pixels; (K, w2c): the fitted camera; `front_dz`: the hairline's
    front height above the eyes the texture used (None: the default)."""

    H, W = hair_mask.shape
    posed = model.vertices(identity, expression)
    F = model.faces[visible_faces(model)]
    xy, z = project(posed, K, w2c)
    tid, _, _ = rasterize(xy, z, F, H, W, cull_backfaces=True)
    head_mask = tid >= 0
    info = {"reach_px_max": 0.0, "reach_m_max": 0.0}
    if not head_mask.any() or not hair_mask.any():
        return None, info
    ys, xs = np.nonzero(head_mask)
    centre = np.array([xs.mean(), ys.mean()])
    reach_px = hair_reach_px(head_mask, hair_mask, centre)
    depth = float(np.median(z))
    reach_m = np.minimum(reach_px * depth / K[0, 0], max_reach_m)
    info = {"reach_px_max": float(reach_px.max()), "reach_m_max": float(reach_m.max()),
            "reach_m_median_top": float(np.median(reach_m[(np.arange(N_DIRECTIONS) > N_DIRECTIONS // 2)]))}
    if reach_m.max() < min_reach_m:
        return None, info

    # the scalp of the neutral head: the texture's hair region, on vertices
    neutral = model.vertices(identity=identity)
    eye_z = float((eye_centre(model.neutral[model.groups["eyeball_left"]])[2]
                   + eye_centre(model.neutral[model.groups["eyeball_right"]])[2]) / 2)
    axis_y = head_axis(model.neutral, eye_z)
    line = hairline_height(model.neutral, axis_y, eye_z, front_dz)
    in_hair = hair_weight(model.neutral, line) > 0.5  # the texture's own hair region
    w_v = hair_weight(model.neutral, line + 0.02, soft_m=0.02)  # 0 at the hairline, full 4 cm above it
    faces_sel = skin_faces(model)
    scalp = faces_sel[in_hair[model.faces[faces_sel]].all(axis=1)]
    if len(scalp) < 20:
        return None, info
    # each vertex's image direction from the head's centre (posed: where the photo saw it)
    d = xy - centre
    k = np.round(np.arctan2(d[:, 1], d[:, 0]) / (2 * np.pi) * N_DIRECTIONS).astype(int) % N_DIRECTIONS
    # the reach at the silhouette, carried round the back; a little less in front of the face (bangs are thin)
    t = reach_m[k] * w_v
    n = vertex_normals(neutral, model.faces[faces_sel])
    offset = neutral + n * t[:, None]
    # split vertices along UV seams: one output vertex per (vertex, uv) pair
    tri_v = model.faces[scalp].reshape(-1)
    tri_uv = model.face_uv[scalp].reshape(-1)
    pairs, inverse = np.unique(np.stack([tri_v, tri_uv], axis=1), axis=0, return_inverse=True)
    verts = offset[pairs[:, 0]]
    uv = atlas_uv(model.uv[pairs[:, 1]])
    faces = inverse.reshape(-1, 3)
    # two-sided (its own vertices, normals inward): the shell's underside shows below its rim
    faces = np.concatenate([faces, faces[:, ::-1] + len(verts)])
    verts, uv = np.concatenate([verts, verts]), np.concatenate([uv, uv])
    info["vertices"], info["triangles"] = int(len(verts)), int(len(faces))
    return {"name": "hair", "verts": verts, "faces": faces, "uv": uv, "bone": "head",
            "texture": hair_texture(model, atlas, faces_sel, axis_y, eye_z, front_dz)}, info


def hair_texture(model, atlas: np.ndarray, faces_sel: np.ndarray, axis_y: float, eye_z: float,
                 front_dz: float | None) -> np.ndarray:
    """The skin atlas with its skin replaced by the hair's median colour: the shell's rim reaches below the
    hairline, where the atlas holds skin."""
    mask, pos = texel_surface(model, model.neutral, faces_sel, atlas.shape[0])[:2]
    w = np.zeros(mask.shape)
    w[mask] = hair_weight(pos[mask], hairline_height(pos[mask], axis_y, eye_z, front_dz))
    if not (w > 0.5).any():
        return atlas
    hair_rgb = np.median(atlas[w > 0.5].reshape(-1, 3), axis=0)
    out = atlas.astype(np.float32) * w[..., None] + hair_rgb * (1 - w[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
