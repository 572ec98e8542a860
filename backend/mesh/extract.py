"""From depth observations and calibrated colour views to a clean, textured head mesh (no file I/O here)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import StageError
from .cleanup import clean_surface
from .fusion import DepthView, extract_surface, fuse
from .normalmap import bake_normal_map
from .texture import ColorView, bake, texel_surface, texture_image, unwrap


@dataclass
class HeadMesh:
    """The result: world-frame vertices [V, 3] (metres), faces [F, 3], uv [V, 2] (glTF), texture (S, S, 3) uint8,
    optional normal map, the high-resolution surface it was decimated from, and figures for job.json."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    texture: np.ndarray
    vertex_normals: np.ndarray
    normal_map: np.ndarray | None = None
    high: object = None  # trimesh.Trimesh, the smoothed surface before decimation
    figures: dict = field(default_factory=dict)


def surface_from_depth(depth_views: list[DepthView], bounds: np.ndarray, voxel_size: float,
                       trunc: float | None = None, target_triangles: int = 30000, smooth_iterations: int = 10,
                       check_cancel=lambda: None, on_progress=lambda f, msg: None):
    """TSDF fusion → marching cubes → largest component, smoothing, decimation, watertight → (low, high)."""
    t0 = time.time()
    volume = fuse(depth_views, bounds, voxel_size, trunc, check_cancel=check_cancel,
                  on_progress=lambda f: on_progress(0.8 * f, "fusing depth"))
    on_progress(0.8, f"marching cubes on a {'×'.join(map(str, volume.tsdf.shape))} grid")
    verts, faces = extract_surface(volume)
    check_cancel()
    on_progress(0.85, f"cleaning {len(faces)} triangles")
    low, high = clean_surface(verts, faces, target_triangles, smooth_iterations, check_cancel)
    on_progress(1.0, f"{len(low.faces)} triangles")
    return low, high, {"fusion_grid": list(volume.tsdf.shape), "marching_cubes_triangles": int(len(faces)),
                       "surface_seconds": round(time.time() - t0, 2)}


def textured_mesh(low, high, color_views: list[ColorView], texture_size: int = 2048, power: float = 4.0,
                  normal_map: bool = False, check_cancel=lambda: None, on_progress=lambda f, msg: None) -> HeadMesh:
    """UV-unwrap the low-poly mesh and bake its texture (and optionally a normal map from `high`)."""
    if not color_views:
        raise StageError("No colour views to bake a texture from.", code="mesh.no_views")
    t0 = time.time()
    on_progress(0.0, "unwrapping UVs")
    vn = np.asarray(low.vertex_normals)
    v, f, uv, vmap = unwrap(np.asarray(low.vertices), np.asarray(low.faces), texture_size)
    check_cancel()
    normals = vn[vmap]
    texels = texel_surface(v, f, uv, normals, texture_size)
    t_uv = time.time() - t0
    colour, weight = bake(color_views, np.asarray(low.vertices), np.asarray(low.faces), texels, power=power,
                          check_cancel=check_cancel,
                          on_progress=lambda x: on_progress(0.1 + 0.8 * x, "baking texture"))
    tex, unseen = texture_image(texels, colour, weight)
    nmap = None
    if normal_map:
        on_progress(0.92, "baking normal map")
        nmap = bake_normal_map(v, f, uv, normals, texels, high)
    on_progress(1.0, "texture done")
    return HeadMesh(v, f, uv, tex, normals, nmap, high,
                    {"texels": int(len(texels.rows)), "unseen_texel_fraction": round(unseen, 4),
                     "uv_seconds": round(t_uv, 2), "texture_seconds": round(time.time() - t0, 2)})
