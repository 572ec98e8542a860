"""Quality measures for extracted meshes: Chamfer distance, normal consistency, image PSNR, and the reference
head (a textured asset placed in the rig frame the way `render-views` normalises it)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..headmodel.frames import YUP_TO_WORLD


@dataclass
class ReferenceHead:
    """A textured triangle mesh in the rig's world frame (metres). uv [V, 2] in glTF convention (v down);
    texture (H, W, 3) uint8 sRGB or None."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray | None
    texture: np.ndarray | None


def load_reference_head(path, file_to_world: np.ndarray | None = None, extent_m: float = 0.24) -> ReferenceHead:
    """Load a .glb/.obj asset and map it into the rig frame.

    `file_to_world` (4, 4) is the transform `render-views` records in cameras.json
    (normalisation.file_to_world); without it the same rule is applied here: file axes +Y up → world +Z up,
    box centred on the origin, largest extent scaled to `extent_m`."""
    import trimesh

    scene = trimesh.load(str(path), force="scene")
    meshes = []
    for name in scene.graph.nodes_geometry:
        T, geom = scene.graph[name]
        g = scene.geometry[geom].copy()
        g.apply_transform(T)
        meshes.append(g)
    if not meshes:
        raise ValueError(f"{path} holds no mesh")
    m = meshes[0] if len(meshes) == 1 else trimesh.util.concatenate(meshes)
    v = np.asarray(m.vertices, dtype=np.float64)
    if file_to_world is None:
        y_up = YUP_TO_WORLD  # a glTF asset: +Y up
        w = v @ y_up.T
        lo, hi = w.min(0), w.max(0)
        s = extent_m / float((hi - lo).max())
        file_to_world = np.eye(4)
        file_to_world[:3, :3] = s * y_up
        file_to_world[:3, 3] = -s * (lo + hi) / 2.0
    file_to_world = np.asarray(file_to_world, dtype=np.float64)
    verts = v @ file_to_world[:3, :3].T + file_to_world[:3, 3]
    uv, tex = None, None
    vis = getattr(m, "visual", None)
    if vis is not None and getattr(vis, "kind", None) == "texture" and vis.uv is not None:
        uv = np.asarray(vis.uv, dtype=np.float64).copy()
        uv[:, 1] = 1.0 - uv[:, 1]  # trimesh keeps OpenGL's v-up; ours is glTF's v-down
        mat = vis.material
        img = getattr(mat, "baseColorTexture", None) or getattr(mat, "image", None)
        if img is not None:
            tex = np.asarray(img.convert("RGB"))
    return ReferenceHead(verts, np.asarray(m.faces, dtype=np.int64), uv, tex)


def sample_surface(vertices, faces, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform surface samples: points [N, 3] and their face normals [N, 3]."""
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    pts, fid = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(pts), np.asarray(mesh.face_normals[fid])


def chamfer_and_normals(pred_v, pred_f, ref_v, ref_f, count: int = 100_000, seed: int = 0,
                        observed=None) -> dict:
    """Symmetric Chamfer (mean of the two mean nearest-neighbour distances, metres), both one-sided means,
    normal consistency (mean |cos| between nearest-neighbour normals, both ways) and the 95th percentile.

    `observed` (optional): a function of reference surface points [N, 3] → bool [N], True where some camera
    sees the point (see `observed_points`). Then the result also holds `observed_fraction`,
    `completeness_observed` (reference → prediction over the observed reference samples only) and
    `chamfer_observed` = ½(accuracy + completeness_observed): the DTU-style observation mask applied to the
    reference side. Accuracy stays over the whole prediction either way."""
    from scipy.spatial import cKDTree

    pa, na = sample_surface(pred_v, pred_f, count, seed)
    pb, nb = sample_surface(ref_v, ref_f, count, seed + 1)
    da, ia = cKDTree(pb).query(pa, workers=-1)  # pred → ref (accuracy)
    db, ib = cKDTree(pa).query(pb, workers=-1)  # ref → pred (completeness)
    nc = 0.5 * (np.abs((na * nb[ia]).sum(1)).mean() + np.abs((nb * na[ib]).sum(1)).mean())
    out = {"chamfer": 0.5 * (da.mean() + db.mean()), "accuracy": da.mean(), "completeness": db.mean(),
           "p95": float(np.percentile(np.concatenate([da, db]), 95)), "normal_consistency": float(nc)}
    if observed is not None:
        seen = np.asarray(observed(pb), bool)
        out["observed_fraction"] = float(seen.mean())
        out["completeness_observed"] = float(db[seen].mean()) if seen.any() else float("nan")
        out["completeness_unobserved"] = float(db[~seen].mean()) if (~seen).any() else 0.0
        out["chamfer_observed"] = 0.5 * (out["accuracy"] + out["completeness_observed"])
    return out


def observed_points(points: np.ndarray, vertices, faces, cameras: list[dict], tolerance: float = 0.001) -> np.ndarray:
    """bool [N]: True where a surface point of the mesh (vertices, faces) is visible from at least one camera
    ({K, w2c, width, height}): it projects into the image and is no more than `tolerance` (metres) behind the
    mesh's own depth there. Surface that no camera sees (cavities, internal shells, a cut-off base facing
    away from every camera) cannot be reconstructed from the views; this is the observation mask."""
    import torch

    from .raster import render_depth

    pts = np.asarray(points, np.float64)
    seen = np.zeros(len(pts), bool)
    for cam in cameras:
        h, w = int(cam["height"]), int(cam["width"])
        K, w2c = np.asarray(cam["K"], np.float64), np.asarray(cam["w2c"], np.float64)
        zbuf = render_depth(vertices, faces, K, w2c, h, w).depth
        zbuf = (zbuf.numpy() if isinstance(zbuf, torch.Tensor) else np.asarray(zbuf)).astype(np.float64)
        pc = pts @ w2c[:3, :3].T + w2c[:3, 3]
        z = pc[:, 2]
        ok = z > 1e-6
        u = np.full(len(pts), -1)
        v = np.full(len(pts), -1)
        u[ok] = np.round(K[0, 0] * pc[ok, 0] / z[ok] + K[0, 2]).astype(int)
        v[ok] = np.round(K[1, 1] * pc[ok, 1] / z[ok] + K[1, 2]).astype(int)
        ins = ok & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        idx = np.flatnonzero(ins)
        seen[idx[z[idx] <= zbuf[v[idx], u[idx]] + tolerance]] = True
    return seen


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB between images with values in [0, 1] (over `mask` pixels when given)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = (a - b) ** 2
    if mask is not None:
        diff = diff[np.asarray(mask, bool)]
    mse = float(diff.mean())
    return float("inf") if mse == 0 else -10.0 * np.log10(mse)
