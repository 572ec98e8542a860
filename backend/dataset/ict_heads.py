"""Built-in dataset heads: ICT-FaceKit Light with a sampled identity, ARKit expression, skin tone, hair and iris
colour, written as a textured binary glTF (one material, one texture) that Blender's importer reads.

The texture is painted from the head's own 3D surface: the skin atlas (ICT's UDIM tiles 0 and 1, rasterised by
rig/texture.texel_surface) gets the skin tone with low-frequency blotches, the lips, brows along the 68 landmarks'
brow points and a hair cap above a hairline; tiles 2 and 3 (gums and tongue, teeth) are flat colours; a strip under
the tiles holds the eyeball's radial profile (sclera, iris, pupil), which each eyeball vertex samples by the angle
between it and the eye's forward axis, and the mouth cavity's colour.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..headmodel import load_ict
from ..headmodel.arkit import ARKIT_52, arkit_deltas
from ..headmodel.parts import eye_centre, visible_faces
from ..mesh.glb import write_head_glb
from ..render.image import pull_push
from ..render.raster import vertex_normals
from ..rig.texture import lip_region, skin_faces, texel_surface

# Skin albedos (sRGB, 0..1) from light to dark; each head draws one and jitters it a little.
SKIN_TONES = ((0.96, 0.81, 0.71), (0.92, 0.75, 0.63), (0.85, 0.66, 0.55), (0.78, 0.58, 0.46),
              (0.68, 0.49, 0.37), (0.56, 0.39, 0.29), (0.44, 0.30, 0.22), (0.33, 0.22, 0.16))
HAIR_COLOURS = ((0.05, 0.04, 0.035), (0.16, 0.10, 0.06), (0.32, 0.20, 0.11), (0.62, 0.48, 0.30),
                (0.45, 0.20, 0.09), (0.55, 0.54, 0.52))
IRIS_COLOURS = ((0.30, 0.19, 0.10), (0.18, 0.11, 0.06), (0.30, 0.42, 0.55), (0.33, 0.42, 0.28),
                (0.45, 0.35, 0.20))
# Expressions a head is given: ARKit shapes moved together (both sides of a symmetric pair at once).
EXPRESSION_SETS = (
    ("jawOpen",), ("mouthSmileLeft", "mouthSmileRight"), ("browInnerUp",), ("eyeBlinkLeft", "eyeBlinkRight"),
    ("mouthFunnel",), ("mouthPucker",), ("cheekPuff",), ("browDownLeft", "browDownRight"),
    ("eyeWideLeft", "eyeWideRight"), ("mouthFrownLeft", "mouthFrownRight"), ("noseSneerLeft", "noseSneerRight"),
    ("jawLeft",), ("jawRight",), ("mouthSmileLeft",), ("mouthPressLeft", "mouthPressRight"),
    ("browOuterUpLeft", "browOuterUpRight"), ("mouthStretchLeft", "mouthStretchRight"),
    ("eyeSquintLeft", "eyeSquintRight"),
)
N_IDENTITY = 100
IRIS_DEG, PUPIL_DEG = 33.0, 13.0
MOUTH_RGB = (0.30, 0.10, 0.10)
GUMS_RGB, TEETH_RGB = (0.72, 0.38, 0.38), (0.90, 0.87, 0.78)
SCLERA_RGB = (0.92, 0.90, 0.87)


@dataclass
class IctHead:
    """One sampled head: `identity` ICT identity coefficients (N(0, 1) scale), `expression` {ARKit name: weight}."""
    id: str
    identity_id: str
    identity: np.ndarray  # (N_IDENTITY,)
    expression: dict[str, float]
    skin_rgb: tuple[float, float, float]
    skin_tone: int  # index into SKIN_TONES (0 lightest)
    hair_rgb: tuple[float, float, float]
    bald: bool
    iris_rgb: tuple[float, float, float]
    texture_seed: int
    index: int = 0  # position in sample_heads' list (with its seed and expressions_per_identity: the head)
    extra: dict = field(default_factory=dict)

    def meta(self) -> dict:
        return {"identity_coefficients": [round(float(a), 6) for a in self.identity],
                "skin_tone": self.skin_tone, "skin_rgb": [round(c, 4) for c in self.skin_rgb],
                "hair_rgb": None if self.bald else [round(c, 4) for c in self.hair_rgb],
                "iris_rgb": [round(c, 4) for c in self.iris_rgb], "texture_seed": self.texture_seed}


def sample_heads(n: int, seed: int = 0, expressions_per_identity: int = 1) -> list[IctHead]:
    """`n` heads, `expressions_per_identity` of them per sampled identity (the first of each identity neutral when
    that is more than one). Head i depends only on (seed, i): asking for more heads keeps the first ones."""
    heads = []
    per = max(1, int(expressions_per_identity))
    for i in range(n):
        ident_no, expr_no = divmod(i, per)
        rs = np.random.default_rng([seed, ident_no])  # identity, skin, hair, eyes: shared by the identity's heads
        identity = np.clip(rs.standard_normal(N_IDENTITY), -2.5, 2.5) * np.linspace(1.0, 0.5, N_IDENTITY)
        tone = int(rs.integers(len(SKIN_TONES)))
        skin = tuple(float(np.clip(c * (1 + 0.03 * rs.standard_normal()), 0, 1)) for c in SKIN_TONES[tone])
        hair = HAIR_COLOURS[int(rs.integers(len(HAIR_COLOURS)))]
        bald = bool(rs.random() < 0.12)
        iris = IRIS_COLOURS[int(rs.integers(len(IRIS_COLOURS)))]
        re = np.random.default_rng([seed, ident_no, expr_no, 1])
        expression: dict[str, float] = {}
        if not (per > 1 and expr_no == 0) and re.random() > 0.15:
            for _ in range(1 + int(re.random() < 0.35)):
                w = float(np.round(re.uniform(0.25, 0.9), 3))
                for name in EXPRESSION_SETS[int(re.integers(len(EXPRESSION_SETS)))]:
                    expression[name] = max(expression.get(name, 0.0), w)
        identity_id = f"ict-s{seed}-{ident_no:05d}"
        heads.append(IctHead(id=f"{identity_id}-e{expr_no}", identity_id=identity_id, identity=identity,
                             expression=expression, skin_rgb=skin, skin_tone=tone, hair_rgb=hair, bald=bald,
                             iris_rgb=iris, texture_seed=int(rs.integers(2**31)), index=i))
    return heads


def head_vertices(model, head: IctHead) -> np.ndarray:
    """The head's vertices (V, 3) in the world frame, metres: identity, then the ARKit expression."""
    v = model.vertices(identity=head.identity[: model.n_identity])
    if head.expression:
        deltas = arkit_deltas(model, v.astype(np.float32))
        for name, w in head.expression.items():
            v = v + w * deltas[ARKIT_52.index(name)]
    return v


def _noise(p: np.ndarray, rng: np.random.Generator, wavelength_m: float, n: int = 12) -> np.ndarray:
    """Smooth 3D noise in about [-1, 1] at points p (N, 3): a sum of random plane waves."""
    d = rng.standard_normal((n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    k = 2 * np.pi / wavelength_m * rng.uniform(0.7, 1.3, n)
    ph = rng.uniform(0, 2 * np.pi, n)
    return np.sin((p @ d.T) * k + ph).sum(1) * np.sqrt(2.0 / n)


def _segment_distance(p: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Distance (N,) of points p (N, 3) to the polyline through pts (M, 3)."""
    best = np.full(len(p), np.inf)
    for a, b in zip(pts[:-1], pts[1:]):
        ab = b - a
        t = np.clip(((p - a) @ ab) / max(ab @ ab, 1e-12), 0, 1)
        best = np.minimum(best, np.linalg.norm(p - (a + t[:, None] * ab), axis=1))
    return best


def skin_atlas(model, verts: np.ndarray, head: IctHead, res: int) -> np.ndarray:
    """The skin atlas (res, 2·res, 3) float in [0, 1] (sRGB), tiles 0 (face) and 1 (back of head) side by side."""
    faces_sel = skin_faces(model)
    mask, pos, _, _ = texel_surface(model, verts, faces_sel, res)
    p = pos[mask]
    rng = np.random.default_rng(head.texture_seed)
    skin = np.asarray(head.skin_rgb)
    col = skin[None] * (1 + 0.05 * _noise(p, rng, 0.06)[:, None] + 0.02 * _noise(p, rng, 0.015)[:, None])
    # Redder cheeks, nose and ears a touch: a second, warmer low-frequency field.
    col = col * (1 + 0.04 * np.clip(_noise(p, rng, 0.05), 0, None)[:, None] * np.array([0.6, -0.6, -0.6]))
    lips = lip_region(model, res)
    if lips is not None:
        w = lips[mask][:, None]
        col = col * (1 - 0.8 * w) + 0.8 * w * skin * np.array([0.88, 0.58, 0.58])
    lm = verts[model.landmarks_68]
    hair = np.asarray(head.hair_rgb)
    brow_w = np.zeros(len(p))
    for idx in (range(17, 22), range(22, 27)):
        d = _segment_distance(p, lm[list(idx)] + np.array([0, 0, 0.003]))
        brow_w = np.maximum(brow_w, np.clip(1.4 - d / 0.0045, 0, 1))
    col = col * (1 - 0.75 * brow_w[:, None]) + 0.75 * brow_w[:, None] * hair
    if not head.bald:
        z_brow = lm[17:27, 2].mean()
        z_crown = verts[model.group("head_and_neck"), 2].max() if "head_and_neck" in model.groups else p[:, 2].max()
        centre = verts[model.landmarks_68[[0, 16]]].mean(0)
        phi = np.arctan2(p[:, 0] - centre[0], -(p[:, 1] - centre[1]))  # 0 toward the face (−Y)
        front = 0.5 * (1 + np.cos(phi))
        z_hair = front * (z_brow + 0.42 * (z_crown - z_brow)) + (1 - front) * (z_brow - 0.35 * (z_crown - z_brow))
        z_hair = z_hair + 0.006 * _noise(p, rng, 0.03)
        hw = np.clip((p[:, 2] - z_hair) / 0.008 + 0.5, 0, 1)[:, None]
        strands = hair * (1 + 0.06 * _noise(p * np.array([1, 1, 0.3]), rng, 0.003))[:, None]
        col = col * (1 - hw) + hw * strands
    atlas = np.zeros((res, 2 * res, 3), np.float32)
    atlas[mask] = np.clip(col, 0, 1)
    return pull_push(atlas, mask)  # texels outside the layout: from their neighbours (no dark seams)


def eye_profile(head: IctHead, width: int) -> np.ndarray:
    """(width, 3) colours of the eyeball by u = (1 + cos angle from the eye's forward axis) / 2."""
    c = np.linspace(-1, 1, width)
    ang = np.degrees(np.arccos(np.clip(c, -1, 1)))
    col = np.tile(np.asarray(SCLERA_RGB), (width, 1))
    iris = np.asarray(head.iris_rgb)
    t = np.clip((IRIS_DEG - ang) / IRIS_DEG, 0, 1)[:, None]  # 0 at the rim, 1 at the centre
    col = np.where((ang < IRIS_DEG)[:, None], iris * (0.6 + 0.7 * t), col)
    col = np.where((ang < PUPIL_DEG)[:, None], 0.03, col)
    return np.clip(col, 0, 1)


def head_texture(model, verts: np.ndarray, head: IctHead, res: int = 512) -> np.ndarray:
    """The whole texture (res + res/4, 4·res, 3) uint8 sRGB: tiles 0..3 on top, the eye profile and the mouth
    colour in a strip below."""
    strip = res // 4
    tex = np.zeros((res + strip, 4 * res, 3), np.float32)
    tex[:res, : 2 * res] = skin_atlas(model, verts, head, res)
    tex[:res, 2 * res: 3 * res] = GUMS_RGB
    tex[:res, 3 * res:] = TEETH_RGB
    tex[res:, : 2 * res] = eye_profile(head, 2 * res)[None]
    tex[res:, 2 * res:] = MOUTH_RGB
    return np.clip(tex * 255 + 0.5, 0, 255).astype(np.uint8)


def head_mesh(model, verts: np.ndarray, res: int = 512):
    """(vertices (N, 3), faces (F, 3), uv (N, 2) glTF convention, v down, source (N,) model vertex of each) of the
    visible head, with vertices split where a vertex has several texture coordinates."""
    keep = visible_faces(model)
    tris = model.faces[keep]
    mat = np.asarray(model.material_names)[model.face_material[keep]]
    uv_ict = model.uv[model.face_uv[keep]]  # (F, 3, 2) UDIM, v up
    H = res + res // 4
    uv = np.stack([uv_ict[..., 0] / 4.0, (1.0 - uv_ict[..., 1]) * res / H], -1)  # tiles 0..3 on top
    eye = np.isin(mat, ("M_ScleraLeft", "M_IrisLeft", "M_ScleraRight", "M_IrisRight"))
    for side in ("left", "right"):
        g = f"eyeball_{side}"
        if g not in model.groups:
            continue
        idx = model.groups[g]
        c = eye_centre(verts[idx])
        d = verts - c
        cosang = -d[:, 1] / np.maximum(np.linalg.norm(d, axis=1), 1e-12)
        in_eye = np.zeros(model.n_vertices, bool)
        in_eye[idx] = True
        sel = eye & np.all(in_eye[tris], axis=1)
        uv[sel, :, 0] = (1 + cosang[tris[sel]]) / 4.0  # the profile spans the strip's left half
        uv[sel, :, 1] = (res + res / 8.0) / H
    skin = np.zeros(len(model.faces), bool)
    skin[skin_faces(model)] = True
    mouth = ~skin[keep] & ~eye & ~np.isin(mat, ("M_GumsTongue", "M_Teeth"))
    uv[mouth] = (0.75, (res + res / 8.0) / H)
    # Split vertices by (vertex, uv).
    key = np.concatenate([tris.reshape(-1, 1).astype(np.float64), np.round(uv.reshape(-1, 2) * 2**20)], 1)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    first = np.zeros(len(uniq), np.int64)
    first[inverse.ravel()] = np.arange(len(key))
    src = tris.reshape(-1)[first]  # the model vertex of each written vertex
    return verts[src], inverse.reshape(-1, 3), uv.reshape(-1, 2)[first].astype(np.float32), src


def write_head(path, model, head: IctHead, res: int = 512) -> dict:
    """Write the head as a textured .glb (world frame, metres); returns its meta (head.meta())."""
    verts = head_vertices(model, head)
    v, f, uv, src = head_mesh(model, verts, res)
    normals = vertex_normals(verts, model.faces[visible_faces(model)])[src]  # smooth across the uv seams
    write_head_glb(path, v, f, uv, head_texture(model, verts, head, res), vertex_normals=normals, name=head.id)
    return head.meta()


def write_sampled_head(path, seed: int, index: int, expressions_per_identity: int = 1, texture_size: int = 512) -> dict:
    """Write head `index` of sample_heads(…, seed, expressions_per_identity) with the default ICT-FaceKit model (what a
    dataset worker does before rendering it, so that the heads are made in parallel too)."""
    head = sample_heads(index + 1, seed, expressions_per_identity)[index]
    return write_head(path, load_ict(), head, texture_size)


def head_fingerprint(head: IctHead) -> str:
    """What the head's file depends on (to tell a head built before from a different one with the same id)."""
    h = hashlib.sha256(np.asarray(head.identity, np.float64).tobytes())
    h.update(repr((sorted(head.expression.items()), head.skin_rgb, head.hair_rgb, head.bald, head.iris_rgb,
                   head.texture_seed)).encode())
    return h.hexdigest()[:16]
