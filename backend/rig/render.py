"""Renders of a built Rig (numpy rasterizer): its skin atlas and vertex colours, the photo's light, attachments."""
from __future__ import annotations

import numpy as np

from ..render.image import sample_bilinear
from ..render.raster import interpolate, project, rasterize, vertex_normals
from .build import skin_vertices
from .texture_complete import shading_ratio

def render_rig(rig, atlas: np.ndarray | None, K: np.ndarray, w2c: np.ndarray, size: tuple[int, int],
               shape_keys: dict[str, float] | None = None, rotations: dict | None = None, background=0.0,
               light: tuple | None = None, attachments: list[dict] | None = None):
    """Unlit render of a Rig (H, W, 3) float in [0, 1] with its skin atlas + a mask (H, W) of pixels showing
    the face skin. `light` = (SH1 coefficients (4,), their mean over the seen skin), as the texture bake
    recorded them: the skin is shaded by the photo's light again (the atlas is an albedo). `attachments`: rigid
    meshes as rig_to_gltf takes them (the hair), drawn at rest with their own texture, from both sides unless one
    says `double_sided: False` (a glb read back, e.g. complete_head.load_hair, does not carry it)."""
    w, h = size
    verts = skin_vertices(rig, rotations or {}, shape_keys=shape_keys)
    # one z-buffer over every primitive: stack them with their own corner attributes
    xy_all, z_all, faces_all, col_all, uv_all, is_skin = [], [], [], [], [], []
    extra_layers = []
    off = 0
    for p in rig.primitives:
        xy, z = project(verts[p.vertex_ids], K, w2c)
        xy_all.append(xy)
        z_all.append(z)
        faces_all.append(p.faces + off)
        n = len(p.vertex_ids)
        col_all.append(p.colour if p.colour is not None else np.zeros((n, 3)))
        uv_all.append(p.uv if p.uv is not None else np.full((n, 2), -1.0))
        is_skin.append(np.full(len(p.faces), p.material == "skin"))
        off += n
    xy, z, F = np.concatenate(xy_all), np.concatenate(z_all), np.concatenate(faces_all)
    tid, bary, hz = rasterize(xy, z, F, h, w, cull_backfaces=True)
    for att in attachments or []:  # over the head where nearer (its own z-buffer, compared per pixel)
        axy, az = project(np.asarray(att["verts"], np.float64), K, w2c)
        atid, abary, azb = rasterize(axy, az, att["faces"], h, w,
                                     cull_backfaces=not att.get("double_sided", True))
        front = (atid >= 0) & (azb < hz)
        if front.any():
            uv = interpolate(atid, abary, att["faces"], np.asarray(att["uv"], np.float64))[front]
            T = np.asarray(att["texture"], np.float32) / 255.0
            att_px = np.zeros((h, w, 3), np.float32)
            att_px[front] = sample_bilinear(T, uv * [T.shape[1], T.shape[0]] - 0.5)
            extra_layers.append((front, att_px))
    extra = [np.concatenate(col_all), np.concatenate(uv_all)]
    if light is not None:
        ids = np.concatenate([p.vertex_ids for p in rig.primitives])
        extra.append(vertex_normals(verts, np.concatenate([p.vertex_ids[p.faces] for p in rig.primitives]))[ids])
    attr = interpolate(tid, bary, F, np.concatenate(extra, axis=1))
    skin = np.concatenate(is_skin)
    skin_px = (tid >= 0) & skin[np.maximum(tid, 0)]
    img = np.where((tid >= 0)[..., None], attr[..., :3], background).astype(np.float32)
    if atlas is not None and skin_px.any():
        A = atlas.astype(np.float32) / 255.0
        uv = attr[skin_px][:, 3:5]
        img[skin_px] = sample_bilinear(A, uv * [A.shape[1], A.shape[0]] - 0.5)
        if light is not None:
            n = attr[skin_px][:, 5:8].astype(np.float64)
            n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
            img[skin_px] /= shading_ratio(n, np.asarray(light[0], np.float64), float(light[1]))[:, None]
    for front, att_px in extra_layers:
        img[front] = att_px[front]
        skin_px = skin_px & ~front
    return np.clip(img, 0, 1), skin_px


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) between images in [0, 1] over mask pixels."""
    mse = float(((a[mask] - b[mask]) ** 2).mean())
    return 10 * np.log10(1.0 / max(mse, 1e-12))
