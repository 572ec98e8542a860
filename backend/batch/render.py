"""Front and three-quarter pictures of a job's head (rig/head_rigged.glb, else mesh/head.glb) for the batch
report: the glTF's triangles with their base-colour texture or vertex colours, drawn with the rig's numpy
rasterizer (backend/rig/raster.py) and a soft light from the camera. No Blender, no GPU."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..render.image import sample_bilinear
from ..render.raster import interpolate, project, rasterize, vertex_normals

HEADS = ("rig/head_rigged.glb", "mesh/head.glb")
VIEWS = {"front": 0.0, "three_quarter": 45.0}  # azimuth in degrees, toward the subject's left
FOV_DEG = 20.0
BACKGROUND = (0.93, 0.93, 0.93)


def head_file(job_dir) -> Path | None:
    return next((Path(job_dir) / h for h in HEADS if (Path(job_dir) / h).is_file()), None)


def load_primitives(glb) -> list[dict]:
    """Every triangle primitive of a glb in its scene's (glTF: +Y up, face toward +Z) frame:
    {verts (N, 3), faces (F, 3), colour (N, 3) float, or uv (N, 2) + texture (H, W, 3) float}."""
    import trimesh

    scene = trimesh.load(str(glb), force="scene")
    prims = []
    for node in scene.graph.nodes_geometry:
        transform, geom_name = scene.graph[node]
        g = scene.geometry[geom_name]
        if not isinstance(g, trimesh.Trimesh) or not len(g.faces):
            continue
        p = {"verts": trimesh.transform_points(np.asarray(g.vertices, np.float64), transform),
             "faces": np.asarray(g.faces, np.int64)}
        vis, n = g.visual, len(g.vertices)
        mat = getattr(vis, "material", None)
        tex = getattr(mat, "baseColorTexture", None) if mat is not None else None
        factor = np.asarray(getattr(mat, "baseColorFactor", None) if mat is not None else None
                            or (255, 255, 255, 255), np.float64)[:3] / 255.0
        uv = getattr(vis, "uv", None)
        colour = getattr(vis, "vertex_attributes", {}).get("color") if hasattr(vis, "vertex_attributes") else None
        if tex is not None and uv is not None:
            p["texture"] = np.asarray(tex.convert("RGB"), np.float32) / 255.0 * factor.astype(np.float32)
            p["uv"] = np.asarray(uv, np.float64)
        elif colour is not None and len(colour) == n:
            c = np.asarray(colour, np.float64)[:, :3]
            p["colour"] = (c / 255.0 if c.max() > 1.0 else c) * factor
        elif getattr(vis, "kind", None) == "vertex":
            p["colour"] = np.asarray(vis.vertex_colors, np.float64)[:, :3] / 255.0
        else:
            p["colour"] = np.tile(factor, (n, 1))
        prims.append(p)
    return prims


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """World-to-camera (4, 4), OpenCV convention (x right, y down, z forward)."""
    f = target - eye
    f /= np.linalg.norm(f)
    x = np.cross(f, up)
    x /= np.linalg.norm(x)
    y = np.cross(f, x)
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([x, y, f])
    w2c[:3, 3] = -w2c[:3, :3] @ eye
    return w2c


def render_head(prims: list[dict], azimuth_deg: float, size: int = 256, supersample: int = 2) -> np.ndarray:
    """(size, size, 3) uint8 picture of the primitives seen from `azimuth_deg` around the vertical axis through
    their bounding box's centre, the whole head in frame."""
    allv = np.concatenate([p["verts"] for p in prims])
    lo, hi = allv.min(axis=0), allv.max(axis=0)
    centre, radius = (lo + hi) / 2, np.linalg.norm(hi - lo) / 2
    dist = radius / np.tan(np.radians(FOV_DEG) / 2) * 1.05
    a = np.radians(azimuth_deg)
    eye = centre + dist * np.array([np.sin(a), 0.0, np.cos(a)])
    w2c = look_at(eye, centre)
    s = size * supersample
    fpx = s / 2 / np.tan(np.radians(FOV_DEG) / 2)
    K = np.array([[fpx, 0, (s - 1) / 2], [0, fpx, (s - 1) / 2], [0, 0, 1]])
    xy, z, F, off = [], [], [], 0
    for p in prims:
        pxy, pz = project(p["verts"], K, w2c)
        xy.append(pxy)
        z.append(pz)
        F.append(p["faces"] + off)
        off += len(p["verts"])
    F = np.concatenate(F)
    tid, bary, _ = rasterize(np.concatenate(xy), np.concatenate(z), F, s, s, cull_backfaces=True)
    img = np.tile(np.asarray(BACKGROUND, np.float32), (s, s, 1))
    owner = np.repeat(np.arange(len(prims)), [len(p["faces"]) for p in prims])
    first_face = np.cumsum([0] + [len(p["faces"]) for p in prims])
    light = -w2c[2, :3]  # toward the camera
    for k, p in enumerate(prims):
        mask = (tid >= 0) & (owner[np.maximum(tid, 0)] == k)
        if not mask.any():
            continue
        local = np.where(mask, tid - first_face[k], -1)
        normals = interpolate(local, bary, p["faces"], vertex_normals(p["verts"], p["faces"]))[mask]
        shade = 0.55 + 0.45 * np.clip(normals @ light / np.maximum(np.linalg.norm(normals, axis=1), 1e-9), 0, 1)
        if "texture" in p:
            T = p["texture"]
            uv = interpolate(local, bary, p["faces"], p["uv"])[mask]
            # trimesh gives glTF UVs flipped to OpenGL's convention (v up): image row = (1 − v)·H
            col = sample_bilinear(T, np.stack([uv[:, 0] * T.shape[1] - 0.5, (1 - uv[:, 1]) * T.shape[0] - 0.5], 1))
        else:
            col = interpolate(local, bary, p["faces"], p["colour"])[mask]
        img[mask] = np.clip(col[:, :3] * shade[:, None], 0, 1)
    img = img.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
    return (img * 255 + 0.5).astype(np.uint8)


def render_job(job_dir, size: int = 256) -> dict[str, np.ndarray]:
    """{view name: picture} of the job's head; {} when the job has no head yet."""
    glb = head_file(job_dir)
    if glb is None:
        return {}
    prims = load_primitives(glb)
    return {name: render_head(prims, az, size) for name, az in VIEWS.items()} if prims else {}
