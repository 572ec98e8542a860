"""Surface clean-up: largest component, smoothing without shrinking, decimation, repair to a watertight,
consistently outward-wound triangle mesh (trimesh + pymeshlab)."""
from __future__ import annotations

import numpy as np

from ..errors import StageError


def largest_component(vertices: np.ndarray, faces: np.ndarray):
    """Keep the connected piece with the largest area (drops floaters and stray islands) → trimesh.Trimesh."""
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=True)
    parts = mesh.split(only_watertight=False)
    if len(parts) == 0:
        raise StageError("The extracted surface has no faces.", code="mesh.empty_surface")
    return max(parts, key=lambda m: m.area)


def smooth(mesh, iterations: int = 10):
    """Taubin λ|μ smoothing (removes voxel terracing without the shrinking of plain Laplacian smoothing)."""
    import trimesh

    mesh = mesh.copy()
    trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=-0.53, iterations=iterations)
    return mesh


def decimate(mesh, target_triangles: int):
    """Quadric edge-collapse to about `target_triangles`, keeping topology and boundaries → trimesh.Trimesh."""
    import pymeshlab
    import trimesh

    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int32)))
    ms.meshing_remove_duplicate_vertices()
    ms.meshing_remove_duplicate_faces()
    ms.meshing_remove_null_faces()
    if len(mesh.faces) > target_triangles:
        ms.meshing_decimation_quadric_edge_collapse(targetfacenum=int(target_triangles), qualitythr=0.5,
                                                    preserveboundary=True, preservenormal=True,
                                                    preservetopology=True, optimalplacement=True,
                                                    planarquadric=True, autoclean=True)
    m = ms.current_mesh()
    return trimesh.Trimesh(m.vertex_matrix(), m.face_matrix(), process=True)


def make_watertight(mesh):
    """Repair non-manifold bits and close holes; orient faces consistently outward → trimesh.Trimesh.

    Raises StageError (mesh.not_watertight) when the repair cannot close the surface."""
    import pymeshlab
    import trimesh

    if not mesh.is_watertight:
        ms = pymeshlab.MeshSet()
        ms.add_mesh(pymeshlab.Mesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int32)))
        ms.meshing_remove_duplicate_faces()
        ms.meshing_remove_null_faces()
        ms.meshing_repair_non_manifold_edges(method=0)
        ms.meshing_repair_non_manifold_vertices()
        ms.meshing_remove_unreferenced_vertices()
        ms.meshing_close_holes(maxholesize=100000, newfaceselected=False)
        m = ms.current_mesh()
        mesh = trimesh.Trimesh(m.vertex_matrix(), m.face_matrix(), process=True)
        if not mesh.is_watertight:
            trimesh.repair.fill_holes(mesh)
        parts = mesh.split(only_watertight=False)
        if len(parts) > 1:
            mesh = max(parts, key=lambda m: m.area)
    if not mesh.is_watertight:
        raise StageError("The cleaned surface still has holes or non-manifold edges.", code="mesh.not_watertight")
    trimesh.repair.fix_winding(mesh)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def remove_slivers(mesh, min_angle_deg: float = 1.0):
    """Collapse near-degenerate triangles (a minimum angle below `min_angle_deg`) with pymeshlab."""
    import pymeshlab
    import trimesh

    angles = mesh.face_angles.min(1)
    if (angles >= np.radians(min_angle_deg)).all():
        return mesh
    ms = pymeshlab.MeshSet()
    ms.add_mesh(pymeshlab.Mesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int32)))
    ms.meshing_remove_t_vertices(method=0, threshold=40)
    ms.meshing_remove_null_faces()
    ms.meshing_remove_unreferenced_vertices()
    m = ms.current_mesh()
    return trimesh.Trimesh(m.vertex_matrix(), m.face_matrix(), process=True)


def clean_surface(vertices: np.ndarray, faces: np.ndarray, target_triangles: int = 30000,
                  smooth_iterations: int = 10, check_cancel=lambda: None):
    """Marching-cubes output → largest component, Taubin-smoothed, decimated, watertight, outward normals.

    Returns (low-poly trimesh, high-resolution smoothed trimesh (for normal maps))."""
    mesh = largest_component(vertices, faces)
    check_cancel()
    hi = smooth(mesh, smooth_iterations)
    hi = make_watertight(hi)
    check_cancel()
    lo = decimate(hi, target_triangles)
    check_cancel()
    lo = remove_slivers(lo)
    lo = make_watertight(lo)
    return lo, hi
