"""Writing and reading `mesh/head.glb`.

glTF is +Y up with the front toward +Z; Blender's importer turns that into its own +Z up, front −Y, so a head
written here in DESIGN's world frame (+Z up, metres, facing −Y) lands in Blender exactly where it was.
world (x, y, z) → glTF (x, z, −y).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import atomic_path
from ..headmodel.frames import WORLD_TO_GLTF
from .metrics import load_reference_head


def write_head_glb(path, vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, texture: np.ndarray,
                   normal_map: np.ndarray | None = None, vertex_normals: np.ndarray | None = None,
                   name: str = "head") -> None:
    """Write a textured triangle mesh given in the world frame (vertices [V, 3] metres, faces [F, 3],
    uv [V, 2] glTF convention, texture (H, W, 3) uint8 sRGB, optional tangent-space normal map (H, W, 3)
    uint8) as a binary glTF, atomically."""
    import trimesh
    from PIL import Image

    v = np.asarray(vertices, dtype=np.float64) @ WORLD_TO_GLTF.T
    uv_gl = np.asarray(uv, dtype=np.float64).copy()
    uv_gl[:, 1] = 1.0 - uv_gl[:, 1]  # trimesh holds OpenGL's v-up and flips it back when writing glTF
    material = trimesh.visual.material.PBRMaterial(
        name=f"{name}_skin", baseColorTexture=Image.fromarray(np.asarray(texture, dtype=np.uint8)),
        normalTexture=Image.fromarray(np.asarray(normal_map, dtype=np.uint8)) if normal_map is not None else None,
        metallicFactor=0.0, roughnessFactor=0.8, doubleSided=False)
    mesh = trimesh.Trimesh(v, np.asarray(faces, dtype=np.int64), process=False,
                           visual=trimesh.visual.TextureVisuals(uv=uv_gl, material=material))
    if vertex_normals is not None:
        mesh.vertex_normals = np.asarray(vertex_normals, dtype=np.float64) @ WORLD_TO_GLTF.T
    scene = trimesh.Scene()
    scene.add_geometry(mesh, node_name=name, geom_name=name)
    data = scene.export(file_type="glb", include_normals=True)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_head_glb(path):
    """Read a head glb back into the world frame → metrics.ReferenceHead (vertices, faces, uv, texture)."""
    to_world = np.eye(4)
    to_world[:3, :3] = WORLD_TO_GLTF.T
    return load_reference_head(path, file_to_world=to_world)
