"""Software renders of a head-model mesh (numpy rasterizer): shaded previews, textured views, masks."""
from __future__ import annotations

import numpy as np

from .raster import interpolate, project, rasterize, vertex_normals

SKIN_RGB = (0.85, 0.66, 0.55)
HIDDEN_GROUPS = ("lacrimal_fluid_left", "lacrimal_fluid_right", "eye_blend_left", "eye_blend_right",
                 "eye_occlusion_left", "eye_occlusion_right", "eyelashes_left", "eyelashes_right")
# (ICT's eyelashes are alpha-textured cards: drawn opaque they read as black bands; the skin texture carries
# the lash line instead.)


def eye_colours(model, verts: np.ndarray, iris_rgb=(0.3, 0.2, 0.12),
                sclera_rgb=(0.92, 0.9, 0.88), iris_deg: float = 33.0) -> dict[str, np.ndarray]:
    """Per-vertex colours of each eyeball (sclera, iris, pupil by angle from the eye's forward axis −Y); the
    iris is a cap of half-angle `iris_deg`, the pupil 0.4 of it."""
    out = {}
    for side in ("left", "right"):
        g = f"eyeball_{side}"
        if g not in model.groups:
            continue
        idx = model.groups[g]
        p = verts[idx]
        c = eye_centre(p)
        d = (p - c) / np.maximum(np.linalg.norm(p - c, axis=1, keepdims=True), 1e-12)
        cosang = -d[:, 1]  # forward is −Y
        col = np.tile(np.asarray(sclera_rgb, np.float64), (len(idx), 1))
        col[cosang > np.cos(np.radians(iris_deg))] = iris_rgb
        col[cosang > np.cos(np.radians(0.4 * iris_deg))] = (0.03, 0.03, 0.03)
        out[g] = col
    return out


def eye_centre(points: np.ndarray) -> np.ndarray:
    """Least-squares sphere centre (3,) of eyeball points (N, 3): |p|² = 2 p·c + (r² − |c|²)."""
    A = np.concatenate([2 * points, np.ones((len(points), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(A, (points**2).sum(axis=1), rcond=None)
    return sol[:3]


def visible_faces(model) -> np.ndarray:
    """Triangles worth rendering (the transparent helper shells ICT carries are left out): (F',) indices."""
    keep = np.ones(model.n_vertices, bool)
    for g in HIDDEN_GROUPS:
        if g in model.groups:
            keep[model.groups[g]] = False
    return np.nonzero(np.all(keep[model.faces], axis=1))[0]


def vertex_albedo(model, verts: np.ndarray, skin=SKIN_RGB) -> np.ndarray:
    alb = np.tile(np.asarray(skin, np.float64), (model.n_vertices, 1))
    for g, col in eye_colours(model, verts).items():
        alb[model.groups[g]] = col
    for g in ("eyelashes_left", "eyelashes_right"):
        if g in model.groups:
            alb[model.groups[g]] = 0.08
    for g, col in (("mouth_socket", (0.35, 0.12, 0.12)), ("gums_and_tongue", (0.7, 0.35, 0.35)),
                   ("teeth", (0.9, 0.88, 0.8))):
        if g in model.groups:
            alb[model.groups[g]] = col
    return alb


def render_shaded(model, verts: np.ndarray, K: np.ndarray, w2c: np.ndarray, size: tuple[int, int],
                  albedo: np.ndarray | None = None, background=0.5, light=(0.3, -1.0, 0.4)):
    """Lambert render (H, W, 3) float in [0, 1] + (tri_id (H, W), bary (H, W, 3)) of `verts` (V, 3)."""
    w, h = size
    F = model.faces[visible_faces(model)]
    xy, z = project(verts, K, w2c)
    tid, bary, _ = rasterize(xy, z, F, h, w, cull_backfaces=True)
    albedo = vertex_albedo(model, verts) if albedo is None else albedo
    attr = interpolate(tid, bary, F, np.concatenate([vertex_normals(verts, F), albedo], axis=1))
    L = np.asarray(light, np.float64)
    L /= np.linalg.norm(L)
    shade = np.clip(attr[..., :3] @ L, 0, 1)[..., None] * 0.75 + 0.3
    rgb = np.where((tid >= 0)[..., None], attr[..., 3:] * shade, background)
    return np.clip(rgb, 0, 1), tid, bary, F


def render_rig(rig, atlas: np.ndarray | None, K: np.ndarray, w2c: np.ndarray, size: tuple[int, int],
               shape_keys: dict[str, float] | None = None, rotations: dict | None = None, background=0.0,
               light: tuple | None = None, attachments: list[dict] | None = None):
    """Unlit render of a Rig (H, W, 3) float in [0, 1] with its skin atlas + a mask (H, W) of pixels showing
    the face skin. `light` = (SH1 coefficients (4,), their mean over the seen skin), as the texture bake
    recorded them: the skin is shaded by the photo's light again (the atlas is an albedo). `attachments`: rigid
    meshes as rig_to_gltf takes them (the hair), drawn at rest with their own texture."""
    from .build import skin_vertices
    from .texture import sample_bilinear

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
        atid, abary, azb = rasterize(axy, az, att["faces"], h, w, cull_backfaces=True)
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
            from .texture_complete import shading_ratio

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


def photo_consistency(job_dir, photo_eyes: bool = True) -> dict:
    """Render an instant-mode rig from its fitted camera, with the portrait's expression and light, and compare
    it with the photo over the face (rendered skin inside the landmarks' hull) and over the eyes (eyeball pixels inside
    the eye outlines): {psnr_db, pixels, eyes_psnr_db, eye_pixels, render, photo, mask}. `photo_eyes=False`
    renders textbook eye colours instead of those the rig read from the photo."""
    import json
    from pathlib import Path

    import cv2
    from PIL import Image

    from ..headmodel import load_ict
    from .build import build_rig
    from .photo_rig import MP_EYE_L, MP_EYE_R, hole_mask

    job = Path(job_dir)
    rec = json.loads((job / "rig" / "rig.json").read_text())
    model = load_ict()
    eyes = (rec.get("eyes") or {}) if photo_eyes else {}
    rig = build_rig(model, np.array(rec["fit"]["identity"]),
                    **{k: (tuple(v) if isinstance(v, list) else v) for k, v in eyes.items()})
    atlas = np.asarray(Image.open(job / "rig" / "skin.png"))
    photo = np.asarray(Image.open(job / "input" / "portrait.png").convert("RGB")).astype(np.float32) / 255
    K, w2c = np.array(rec["fit"]["camera"]["K"]), np.array(rec["fit"]["camera"]["w2c"])
    tex = rec.get("texture") or {}
    light = (tex["light_sh1"], tex["light_mean"]) if tex.get("light_sh1") else None  # the photo's light again
    img, skin = render_rig(rig, atlas, K, w2c, photo.shape[1::-1],
                           shape_keys=rec["fit"]["portrait_expression_arkit"], light=light)
    analysis = json.loads((job / "face" / "analysis.json").read_text())
    mp = analysis["face"]["landmarks_478"]
    pts = np.asarray(mp or analysis["face"]["landmarks_68"])[:, :2]
    hull = np.zeros(skin.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    mask = skin & hull.astype(bool)
    outlines = [pts[list(MP_EYE_R)], pts[list(MP_EYE_L)]] if mp else [pts[36:42], pts[42:48]]
    eye_mask = hole_mask(skin.shape, outlines) & ~skin & (img.sum(axis=-1) > 0)
    return {"psnr_db": masked_psnr(img, photo, mask), "pixels": int(mask.sum()), "render": img, "photo": photo,
            "mask": mask, "eyes_psnr_db": masked_psnr(img, photo, eye_mask) if eye_mask.any() else float("nan"),
            "eye_pixels": int(eye_mask.sum())}
