"""Reconstructed mesh (mesh/head.glb of the full pipeline) → fitted, registered, textured, rigged head.

The head model is fitted to 3D landmarks found on renders of the textured mesh and to its surface (hair,
shoulders and accessories trimmed away); ICT is then registered non-rigidly to the whole surface, face and
skull (rig/register.py: the reconstruction's own shape, eyes and mouth interior kept from the model) and its
52 ARKit shapes are turned into the registered local frames; joints follow the registered eyes and teeth
(rig/build.py). The skin texture is transferred from the mesh's texture through closest points; what lies well
outside the registered head above the chin (hair, hats) becomes a separate mesh parented to the head.
FLAME (no UVs in its file) is refined toward the face only (≤ 6 mm) and gets per-vertex colours from the
mesh's texture instead of a skin atlas.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import FaceError
from ..fitting.correspondence import landmark_points, load_mediapipe_correspondence
from ..fitting.fit3d import fit_3d, sample_surface
from ..fitting.geometry import SurfaceQuery, barycentric
from ..fitting.landmarks import MP_FACE_OVAL, mediapipe_478
from ..fitting.multiview import landmarks_on_mesh
from ..headmodel.arkit import arkit_deltas
from ..mesh.glb import read_head_glb
from ..render.image import pull_push, sample_bilinear
from .bake import bake_skin_from_views, load_bake_views  # noqa: F401  (load_bake_views: the rig stage's)
from .build import build_rig
from .flame_rig import build_flame_rig
from .register import carry_deltas, local_rotations, register_to_surface
from .texture import skin_faces, texel_surface


@dataclass
class TexturedMesh:
    verts: np.ndarray  # (V, 3) world metres
    faces: np.ndarray  # (F, 3)
    uv_corner: np.ndarray  # (F, 3, 2) glTF texcoords
    texture: np.ndarray  # (H, W, 3) uint8


def load_textured_glb(path) -> TexturedMesh:
    """mesh/head.glb (read by mesh/glb.py, its one reader) as a TexturedMesh: world frame, per-corner uv."""
    head = read_head_glb(path)
    if head.uv is None or head.texture is None:
        return TexturedMesh(head.vertices, head.faces, np.zeros((len(head.faces), 3, 2)),
                            np.full((4, 4, 3), 180, np.uint8))
    return TexturedMesh(head.vertices, head.faces, head.uv[head.faces], head.texture)


def _laplacian_smooth_offsets(offsets, faces, movable, iterations=20):
    n = len(offsets)
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    A = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    A.data[:] = 1.0
    deg = np.maximum(np.asarray(A.sum(axis=1)).ravel(), 1)
    o = offsets * movable[:, None]
    for _ in range(iterations):
        o = (0.5 * o + 0.5 * (A @ o) / deg[:, None]) * movable[:, None]
    return o


def _refine_toward(model, fit, shaped, target, refine_max_m):
    """FLAME: per-vertex offsets (V, 3) pulling the face (not the eyeballs) at most `refine_max_m` toward the
    surface, smoothed over the mesh (computed in the fitted pose, applied to the basis)."""
    posed = fit.transform(shaped)
    cp, dist, _ = target.closest(posed)
    face = np.zeros(model.n_vertices, bool)
    face[model.face_region()] = True
    eyes = [model.joint_names.index(n) for n in ("eye_L", "eye_R")]
    face &= model.skin_weights[:, eyes].sum(axis=1) < 0.5
    close = dist < refine_max_m * fit.scale
    off_world = np.where((face & close)[:, None], cp - posed, 0.0)
    return _laplacian_smooth_offsets(off_world @ fit.R / fit.scale, model.faces, face.astype(np.float64))


def rig_from_mesh(model, mesh: TexturedMesh, *, texture_size: int = 512, n_identity: int = 100,
                  refine_max_m: float = 0.006, views=None, progress=lambda f, m: None):
    """→ (rig, atlas (None for FLAME: per-vertex colours), fit (Fit3D), hair (dict | None), info). `views`
    (mesh.texture.ColorView list, the job's views/): the ICT skin atlas is baked from them where they see it."""
    t0 = time.time()
    progress(0.05, "Finding face landmarks on the reconstructed mesh")
    lm3, hits = landmarks_on_mesh(mesh.verts, mesh.faces, mesh.uv_corner, mesh.texture, mediapipe_478, 478,
                                  views=((0, 0), (0, -20), (0, 20), (10, 0)))
    use = hits > 0
    use[list(MP_FACE_OVAL)] = False
    if use.sum() < 50:
        raise FaceError("No face was found on renders of the reconstructed mesh.", code="rig.no_face_on_mesh")
    tri, bary = load_mediapipe_correspondence(model)
    rng = np.random.default_rng(0)
    pts, nrm = sample_surface(mesh.verts, mesh.faces, 8000, rng)
    front = pts[:, 1] < np.mean(lm3[use], axis=0)[1] + 0.06
    progress(0.3, f"Fitting {model.name} to {int(use.sum())} landmarks and the surface")
    fit = fit_3d(model, landmarks=lm3[use], landmark_tri=tri[use], landmark_bary=bary[use], surface=pts[front],
                 surface_normals=nrm[front], n_identity=n_identity, iterations=12, landmark_weight=0.5)
    t_fit = time.time()

    target = SurfaceQuery(mesh.verts, mesh.faces)
    shaped = model.vertices(fit.identity, fit.expression)
    flame = model.uv is None
    deltas = None
    if flame:  # FLAME: a smooth refinement of the face toward the surface, eyeballs kept rigid
        progress(0.55, "Refining the face toward the surface")
        refine = _refine_toward(model, fit, shaped, target, refine_max_m)
        reg_info = {}
    else:  # ICT: the model registered non-rigidly to the whole surface, its expressions carried over
        progress(0.5, "Registering the head model to the surface")
        target_model = (mesh.verts - fit.t) @ fit.R / fit.scale
        registered, reg_info = register_to_surface(
            model, shaped, target_model, mesh.faces, landmarks=(lm3[use] - fit.t) @ fit.R / fit.scale,
            landmark_tri=tri[use], landmark_bary=bary[use],
            progress=lambda f, m: progress(0.5 + 0.2 * f, m))
        refine = registered - model.vertices(fit.identity)
        deltas = carry_deltas(arkit_deltas(model, registered), local_rotations(model.faces, shaped, registered))
        shaped = model.vertices(fit.identity)

    def mesh_colour(points_world):  # closest point on the mesh → its texture colour (N, 3) in 0..255
        cpt, _, ti = target.closest(points_world)
        b = barycentric(cpt, mesh.verts[mesh.faces[ti]])
        uv = np.einsum("nk,nkc->nc", b, mesh.uv_corner[ti])
        tex = mesh.texture.astype(np.float32)
        return sample_bilinear(tex, uv * [tex.shape[1], tex.shape[0]] - 0.5)

    progress(0.7, "Transferring the texture")
    if flame:
        atlas = None
        colours = mesh_colour(fit.transform(shaped + refine)) / 255.0
        rig = build_flame_rig(model, fit.identity, refine=refine, vertex_rgb=np.clip(colours, 0, 1))
        skin_all = model.faces
    else:
        faces_sel = skin_faces(model)
        mask, pos, _, _ = texel_surface(model, shaped + refine, faces_sel, texture_size)
        atlas = np.zeros((texture_size, 2 * texture_size, 3), np.float32)
        atlas[mask] = mesh_colour(fit.transform(pos[mask]))
        atlas = pull_push(atlas, mask)
        if views:
            progress(0.75, f"Baking the skin from {len(views)} views")
            atlas, bake_info = bake_skin_from_views(model, shaped + refine, fit.transform, views, texture_size, atlas)
            reg_info = {**reg_info, **bake_info}
        atlas = np.clip(atlas + 0.5, 0, 255).astype(np.uint8)
        rig = build_rig(model, fit.identity, refine=refine, deltas=deltas)
        skin_all = model.faces[skin_faces(model)]

    # hair and accessories: mesh triangles well outside the fitted head, above the chin (MediaPipe point 152)
    progress(0.85, "Separating hair")
    head_surface = SurfaceQuery(fit.transform(rig.basis.astype(np.float64)), skin_all)
    dv = head_surface.closest(mesh.verts)[1] / fit.scale
    chin_z = fit.transform(landmark_points(model, rig.basis.astype(np.float64), tri[152:153], bary[152:153]))[0, 2]
    outside = (dv > 0.012) & (mesh.verts[:, 2] > chin_z)  # hair adds more than 1 cm of volume
    hair_faces = np.nonzero(outside[mesh.faces].all(axis=1))[0]
    hair = None
    if len(hair_faces) > 20:
        F = mesh.faces[hair_faces]
        vids, local = np.unique(F, return_inverse=True)
        verts_model = (mesh.verts[vids] - fit.t) @ fit.R / fit.scale
        # per-vertex uv: the corner uv of the first triangle using each vertex
        uvv = np.zeros((len(vids), 2))
        uvv[local.reshape(-1, 3)] = mesh.uv_corner[hair_faces]
        hair = {"name": "hair", "verts": verts_model, "faces": local.reshape(-1, 3), "uv": uvv,
                "texture": mesh.texture, "bone": "head"}
    info = {"seconds": {"fit": t_fit - t0, "total": time.time() - t0}, "landmarks_3d": int(use.sum()),
            "refine_mm_max": float(1000 * np.linalg.norm(refine, axis=1).max()),
            "registration": {k: v for k, v in reg_info.items() if k != "iterations"},
            "hair_triangles": int(len(hair_faces)), "scale_model_to_mesh": float(fit.scale),
            "surface_pairs": fit.stats["surface_pairs"][-1]}
    return rig, atlas, fit, hair, info
