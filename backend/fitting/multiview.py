"""3D landmarks on a reconstructed, textured surface: render it from several views, detect 2D landmarks
in each render, cast every detection onto the surface and average the hits seen from the front (a
triangulation constrained to the surface)."""
from __future__ import annotations

import numpy as np

from .. import cameras
from ..render.raster import interpolate, project, rasterize, vertex_normals


def render_textured(verts: np.ndarray, faces: np.ndarray, uv_corner: np.ndarray, texture: np.ndarray,
                    K: np.ndarray, w2c: np.ndarray, size: int, light=(0.2, -1.0, 0.3), ambient=0.45):
    """Lambert-lit textured render: (rgb (H, W, 3) uint8, tri_id (H, W), bary (H, W, 3)).

    uv_corner (F, 3, 2) glTF texcoords per triangle corner; texture (h, w, 3) uint8."""
    from ..render.image import sample_bilinear

    xy, z = project(verts, K, w2c)
    tid, bary, _ = rasterize(xy, z, faces, size, size, cull_backfaces=True)
    ok = tid >= 0
    uv = np.einsum("mk,mkc->mc", bary[ok], uv_corner[tid[ok]])
    tex = texture.astype(np.float32)
    col = sample_bilinear(tex, uv * [tex.shape[1], tex.shape[0]] - 0.5)
    n = interpolate(tid, bary, faces, vertex_normals(verts, faces))[ok]
    cam = -w2c[:3, :3].T @ w2c[:3, 3]
    L = np.asarray(light, np.float64)
    L /= np.linalg.norm(L)
    shade = ambient + (1 - ambient) * np.clip(n @ L, 0, 1)
    img = np.full((size, size, 3), 235.0, np.float32)
    img[ok] = col * shade[:, None]
    _ = cam
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), tid, bary


def landmarks_on_mesh(verts: np.ndarray, faces: np.ndarray, uv_corner: np.ndarray, texture: np.ndarray,
                      detector, n_points: int, views=((0, 0), (0, -20), (0, 20), (10, 0)), size: int = 512,
                      fovy_deg: float = 12.0, min_facing: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Average surface hits of `detector(rgb) -> (n_points, ≥2) px | None` over views (elevation, azimuth
    degrees, the head assumed at the origin facing −Y). → (points (n_points, 3), hits (n_points,))."""
    extent = np.linalg.norm(verts.max(0) - verts.min(0))
    radius = 0.75 * extent / np.tan(np.radians(fovy_deg) / 2)
    K = cameras.intrinsics(size, fovy_deg)
    normals = vertex_normals(verts, faces)
    acc = np.zeros((n_points, 3))
    hits = np.zeros(n_points, np.int64)
    for el, az in views:
        w2c = np.linalg.inv(cameras.orbit_c2w_opencv(el, az, radius=radius))
        rgb, tid, bary = render_textured(verts, faces, uv_corner, texture, K, w2c, size)
        pts = detector(rgb)
        if pts is None:
            continue
        px = np.clip(np.round(np.asarray(pts)[:, :2]).astype(int), 0, size - 1)
        t = tid[px[:, 1], px[:, 0]]
        ok = t >= 0
        b = bary[px[:, 1], px[:, 0]]
        p3 = np.einsum("nk,nkc->nc", b[ok], verts[faces[t[ok]]])
        n3 = np.einsum("nk,nkc->nc", b[ok], normals[faces[t[ok]]])
        cam = -w2c[:3, :3].T @ w2c[:3, 3]
        view = cam - p3
        view /= np.linalg.norm(view, axis=1, keepdims=True)
        facing = (n3 * view).sum(1) / np.maximum(np.linalg.norm(n3, axis=1), 1e-12)
        good = np.nonzero(ok)[0][facing > min_facing]
        acc[good] += p3[facing > min_facing]
        hits[good] += 1
    out = np.full((n_points, 3), np.nan)
    out[hits > 0] = acc[hits > 0] / hits[hits > 0, None]
    return out, hits
