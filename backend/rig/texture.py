"""Texture the head model's skin UVs from a photo: visible side projected, hidden side mirrored, the rest
filled by pull-push diffusion of the known colours.

The skin atlas holds ICT's UDIM tiles 0 (face) and 1 (back of the head, neck) side by side:
atlas u = u / 2, glTF v = 1 − v.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree

from ..fitting.correspondence import load_mediapipe_correspondence
from ..fitting.landmarks import MP_BROW_L, MP_BROW_R, MP_LIPS_OUTER
from ..headmodel.base import mirror_map
from ..headmodel.parts import eye_height, visible_faces
from ..render.image import LUMA, lab_to_rgb, pull_push, rgb_to_lab, sample_bilinear
from ..render.raster import interpolate, project, rasterize, vertex_normals
from .photo_parse import BACKGROUND, CLOTHES, HAIR, LIPS, MOUTH, OCCLUDER, SKIN
from .texture_complete import (
    complete_atlas,
    delight,
    fit_shading,
    front_hairline,
    hair_weight,
    hairline_height,
    head_axis,
    jaw_tone_field,
    light_tint,
    sh1,
)

SKIN_MATERIALS = ("M_Face", "M_BackHead")


def skin_faces(model) -> np.ndarray:
    """Triangle indices (F',) of the skin: face + back of head, without the mouth socket's inside."""
    mats = [model.material_names.index(n) for n in SKIN_MATERIALS if n in model.material_names]
    sel = np.isin(model.face_material, mats)
    if "mouth_socket" in model.groups:
        inside = np.zeros(model.n_vertices, bool)
        inside[model.groups["mouth_socket"]] = True
        sel &= ~np.all(inside[model.faces], axis=1)
    return np.nonzero(sel)[0]


def atlas_uv(uv: np.ndarray) -> np.ndarray:
    """ICT UDIM uv (N, 2), v up, tiles 0..1 → glTF atlas texcoords (N, 2) in [0, 1], v down."""
    u = np.clip(uv[:, 0], 0.0, 2.0) / 2.0
    return np.stack([u, 1.0 - uv[:, 1]], axis=1).astype(np.float32)


_UV_RASTER: dict = {}  # (model name, triangles, res) → (tid, bary): the UV layout never changes


def _uv_raster(model, faces_sel: np.ndarray, res: int):
    key = (model.name, model.n_vertices, len(faces_sel), int(faces_sel.sum()), res)
    if key not in _UV_RASTER:
        uvs = atlas_uv(model.uv[model.face_uv[faces_sel].reshape(-1)])  # (3F', 2)
        H, W = res, 2 * res
        corner_faces = np.arange(3 * len(faces_sel)).reshape(-1, 3)
        _UV_RASTER.clear()
        _UV_RASTER[key] = rasterize(uvs * [W, H] - 0.5, np.zeros(len(uvs)), corner_faces, H, W)[:2]
    return _UV_RASTER[key]


def texel_surface(model, verts: np.ndarray, faces_sel: np.ndarray, res: int):
    """Rasterise the skin's UV layout at (res, 2·res): per texel mask (H, W), positions (H, W, 3), normals
    (H, W, 3) and triangle (H, W) (index into faces_sel, −1 outside)."""
    tris = model.faces[faces_sel]
    tid, bary = _uv_raster(model, faces_sel, res)
    corner_faces = np.arange(3 * len(tris)).reshape(-1, 3)
    mask = tid >= 0
    n = vertex_normals(verts, model.faces)
    corner_pos = verts[tris.reshape(-1)]
    corner_nrm = n[tris.reshape(-1)]
    attr = interpolate(tid, bary, corner_faces, np.concatenate([corner_pos, corner_nrm], axis=1))
    return mask, attr[..., :3].astype(np.float64), attr[..., 3:].astype(np.float64), tid


@dataclass
class PhotoView:
    """One photo of the head: the fitted head's vertices (V, 3) in it (its own expression), its camera
    (K (3, 3), w2c (4, 4)), the photo (H, W, 3) uint8, pixels kept out (H, W) bool, its labels (PhotoParse)."""
    verts: np.ndarray
    K: np.ndarray
    w2c: np.ndarray
    photo: np.ndarray
    exclude: np.ndarray | None = None
    parse: object = None
    occluders: np.ndarray | None = None


@dataclass
class _Samples:
    """Per skin texel (M,) what one photo says: colour (M, 3), weight (facing², 0 where unseen), label, the
    texel's normal in that photo's head shape, and the normal whose shading the photo's pixel there shows
    (shading_normals); `_m`: the same read at the mirrored point (its shading normal in the world frame); `rim`,
    `rim_m`: how far each skin read is from the head's outline in the photo (outline_trust, 1 without a parse)."""
    col: np.ndarray
    wgt: np.ndarray
    lab: np.ndarray
    nrm: np.ndarray
    col_m: np.ndarray
    wgt_m: np.ndarray
    lab_m: np.ndarray
    shade: np.ndarray
    shade_m: np.ndarray
    rim: np.ndarray
    rim_m: np.ndarray


def _sample_view(model, faces_sel, res: int, view: PhotoView, mirror: np.ndarray) -> _Samples:
    """Read one photo at every skin texel: directly, and at the texel's mirror image across the midline."""
    Hp, Wp = view.photo.shape[:2]
    mask, pos, nrm, tri = texel_surface(model, view.verts, faces_sel, res)
    K, w2c, exclude = view.K, view.w2c, view.exclude
    if exclude is not None and view.parse is not None:  # the photo's lips are read up to the mouth's opening
        opening = (view.parse.labels == MOUTH).astype(np.uint8)
        exclude = exclude & ((view.parse.labels != LIPS) | (cv2.distanceTransform(1 - opening, cv2.DIST_L2, 3)
                                                            < LIP_OPENING_PX))
    # which vertices the photo sees: corners of triangles that win the photo camera's z-buffer
    F_idx = visible_faces(model) if view.occluders is None else view.occluders
    xy, z = project(view.verts, K, w2c)
    seen_v, normal_img = _seen_vertices(xy, z, model.faces[F_idx], Hp, Wp, exclude, model.n_vertices,
                                        vertex_normals(view.verts, model.faces))
    cam_centre = -w2c[:3, :3].T @ w2c[:3, 3]
    photo_f = view.photo[..., :3].astype(np.float32)
    soft, pure, outline = None, None, None
    if view.parse is not None:
        soft, pure = _label_layers(view.parse.labels, photo_f)
        outline = outline_distance(view.parse.labels, K[0, 0] / max(float(np.median(z)), 1e-6))

    def lookup(P, Nn, vis):
        pxy, _ = project(P, K, w2c)
        view_dir = cam_centre - P
        view_dir /= np.linalg.norm(view_dir, axis=1, keepdims=True)
        facing = (Nn * view_dir).sum(axis=1)
        inside = (pxy[:, 0] >= 0) & (pxy[:, 0] <= Wp - 1) & (pxy[:, 1] >= 0) & (pxy[:, 1] <= Hp - 1)
        ok = inside & vis & (facing > 0.15)
        xi = np.clip(np.round(pxy[:, 0]).astype(int), 0, Wp - 1)
        yi = np.clip(np.round(pxy[:, 1]).astype(int), 0, Hp - 1)
        if exclude is not None:  # per texel too: a seen triangle may still reach into an excluded region
            ok &= ~exclude[yi, xi]
        lab = label_at(soft, pxy) if soft is not None else np.full(len(P), SKIN, np.uint8)
        col = sample_bilinear(photo_f, pxy) if pure is None else sample_pure(photo_f, pure, pxy, lab)
        rim = np.ones(len(P)) if outline is None else np.where(lab == SKIN, outline_trust(outline, pxy), 1.0)
        return col, np.where(ok, np.clip(facing, 0, 1) ** 2, 0.0), lab, shading_normals(normal_img, pxy, Nn), rim

    P, Nn = pos[mask], nrm[mask]
    corners = model.faces[faces_sel[tri[mask]]]  # (M, 3) vertices of each texel's triangle
    col, wgt, lab, shade, rim = lookup(P, Nn, seen_v[corners].all(axis=1))
    col_m, wgt_m, lab_m, shade_m, rim_m = lookup(P * _FLIP, Nn * _FLIP, seen_v[mirror[corners]].all(axis=1))
    return _Samples(col, wgt, lab, Nn, col_m, wgt_m, lab_m, shade, shade_m, rim, rim_m)


OUTLINE_BAND_M = (0.006, 0.012)  # skin read this near the head's outline in the photo (metres at the head): none
# of it trusted within the first, all beyond the second
OUTSIDE_HEAD = (BACKGROUND, CLOTHES, OCCLUDER)  # the labels beyond the head's outline
OUTLINE_BELOW_EYES_M = 0.02  # outline_trust applies below the eyes, fully from this far below them


def outline_distance(labels: np.ndarray, px_per_m: float) -> np.ndarray:
    """Distance (H, W) float32 of each pixel of a photo's `labels` (H, W) to the nearest pixel beyond the head
    (OUTSIDE_HEAD: background, clothes, an occluder), in metres at the head (`px_per_m`: the photo's pixels per
    metre there); OUTLINE_BAND_M[1] everywhere where nothing is beyond the head."""
    outside = np.isin(labels, OUTSIDE_HEAD)
    if not outside.any():
        return np.full(labels.shape, OUTLINE_BAND_M[1], np.float32)
    dist = cv2.distanceTransform((~outside).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return (dist / max(px_per_m, 1e-6)).astype(np.float32)


def outline_trust(outline: np.ndarray, pxy: np.ndarray) -> np.ndarray:
    """How far skin read at photo positions pxy (M, 2) is the skin's colour, by its distance to the head's outline
    (outline_distance (H, W)): a smooth step (M,) from 0 within OUTLINE_BAND_M[0] of the outline to 1 beyond
    OUTLINE_BAND_M[1].

    Where the photo's head turns away at its outline (the chin's far side in a ¾ view, seen against the collar),
    its skin is darker than the surface the fitted head puts there, which that head sees far more squarely (a
    misfit of a few millimetres at the silhouette moves the outline across many texels): projected, it drew a
    dark line down the chin beside the mirrored side (group face 4), its mirror image on the other side, and the
    completion spread it (the jaw's crease-like line). Such reads weigh less (none within OUTLINE_BAND_M[0]) and
    give way to the mirror image (blend_mirrored's `trust`) or the completion; below the eyes only
    (OUTLINE_BELOW_EYES_M): above them the outline is the scalp's and the hair's, which the hairline's own
    handling reads. Tried on group face 4: a ramp over 0-6 mm (the line's reads lie 3-5 mm inside the parse's
    outline: it stayed, seen/mirrored step p90 6.1 -> 5.7), 0-12 mm (its upper half stayed, p90 4.5). Everywhere
    (not only below the eyes): LPS novel views 24.94 dB / SSIM 0.726, but the astronaut's front render against
    the photo 22.39 -> 21.13 dB, hairline edge 2.01 -> 2.37, off-colour band 11.3 -> 15.3 % (tests/rig/
    test_instant), the ears lose their colour; only on the face_area group: LPS 23.77 dB, SSIM 0.717. Figures of
    the committed version: see the commit message and benchmarks/complete_head.py's outline_step."""
    d = sample_bilinear(outline[..., None], pxy)[:, 0].astype(np.float64)
    t = np.clip((d - OUTLINE_BAND_M[0]) / (OUTLINE_BAND_M[1] - OUTLINE_BAND_M[0]), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def shading_normals(normal_img: np.ndarray, pxy: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """The normals (M, 3) whose light the photo's pixels at pxy (M, 2) show: the head's normals averaged over each
    pixel (normal_img (H, W, 3), _seen_vertices'), bilinear, unit length; `fallback` (M, 3) where the pixel shows
    little of the head (its silhouette, outside the photo).

    A pixel's colour is the light of the surface it sees, averaged over the pixel, not that of every texel that
    projects into it: a lid's margin or a nostril's rim, a strip thinner than a pixel that faces away from the
    light, is painted from a pixel that mostly shows the lit lid or nose beside it, and divided by its own dark
    shading it came out far too bright (bright slivers along the eyes' openings, pale rings round the nostrils;
    tests/rig/test_complete_head::test_thin_features_are_delit_by_the_light_their_pixels_show). The normal image
    is blurred a little (SHADING_BLUR) for the fit's misregistration (the photo's lid a pixel or two from the
    fitted one), and it replaces the texel's normal only where the two differ by more than THIN_DEG (blended in
    between): used everywhere, and for the light's fit too, it scored a little better on the dataset heads
    (benchmarks/complete_head_expression.py) and the scan (gain-free 25.17 dB) but moved the astronaut's
    hairline measures (edge 2.00 -> 2.17, off-colour band 12.9 -> 17.2 %) with no change one can see. As
    committed, against the texel normals (three dataset heads, gain-fitted mean |error| / SSIM, neutral photo):
    lips 6.3 / 0.964 -> 6.2 / 0.966, around the mouth 7.4 / 0.873 -> 7.3 / 0.875, the face 9.6 / 0.861 -> 9.6 /
    0.863 (open smile: lips 6.9 -> 6.7); Lee Perry-Smith novel views 23.38 dB / 0.713 -> 23.32 / 0.714, after the
    best single gain 25.04 -> 25.15 dB; the astronaut's hairline edge 2.00 -> 2.02, band 12.9 % either way."""
    n = sample_bilinear(normal_img, pxy)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(length > 0.5, n / np.maximum(length, 1e-9), fallback)
    # only where the two disagree (a thin feature): elsewhere the texel's own normal, as the light was fitted
    ang = np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", n, fallback), -1.0, 1.0)))
    t = np.clip((ang - THIN_DEG[0]) / (THIN_DEG[1] - THIN_DEG[0]), 0.0, 1.0)[:, None]
    n = t * n + (1 - t) * fallback
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)


SHADING_BLUR = 0.003  # shading_normals' normal image is blurred by this share of the head's span (Gaussian σ)
THIN_DEG = (10.0, 25.0)  # shading_normals: the pixel's normal taken from this angle to the texel's, wholly from this
VIS_MIN_FACE_PX = 400  # the seen test's z-buffer is drawn finer until the head spans at least this many pixels


def _seen_vertices(xy: np.ndarray, z: np.ndarray, faces: np.ndarray, Hp: int, Wp: int, exclude, n_vertices: int,
                   normals: np.ndarray):
    """(which vertices (n_vertices,) bool the photo sees: corners of the triangles `faces` (F, 3) (projected to xy
    (V, 2) at depths z (V,) in an (Hp, Wp) photo) that win its z-buffer somewhere outside `exclude` (Hp, Wp); the
    seen surface's vertex `normals` (V, 3) averaged over each pixel (Hp, Wp, 3), not unit length (shorter at the
    silhouette, zero off the head), blurred by SHADING_BLUR of the head's span).
    The z-buffer is drawn at up to 4× the photo's resolution, so that the head spans VIS_MIN_FACE_PX: in a small
    photo (a 240p portrait: the eyes 20 px apart) most of the small triangles around the eyes, the nose's folds
    and the mouth's corners cover no pixel centre and would count as unseen, leaving holes that the completion
    filled with the skin's median tone (the 240p photo's blotchy islands)."""
    used = np.unique(faces)
    span = float(np.max(xy[used].max(axis=0) - xy[used].min(axis=0)))
    scale = int(np.clip(np.ceil(VIS_MIN_FACE_PX / max(span, 1.0)), 1, 4))
    tid, bary, _ = rasterize((xy + 0.5) * scale - 0.5, z, faces, Hp * scale, Wp * scale, cull_backfaces=True)
    n = np.where((tid >= 0)[..., None], interpolate(np.maximum(tid, 0), bary, faces, normals), 0.0)
    normal_img = n.reshape(Hp, scale, Wp, scale, 3).mean(axis=(1, 3)).astype(np.float32)
    # softened by the fit's own misregistration (a lid's margin a pixel off in a small photo)
    normal_img = cv2.GaussianBlur(normal_img, (0, 0), max(SHADING_BLUR * span, 0.3))
    if exclude is not None:
        ex = np.repeat(np.repeat(exclude, scale, axis=0), scale, axis=1) if scale > 1 else exclude
        tid = np.where(ex, -1, tid)
    seen_v = np.zeros(n_vertices, bool)
    seen_v[faces[np.unique(tid[tid >= 0])].ravel()] = True
    return seen_v, normal_img


def _label_layers(labels: np.ndarray, photo_f: np.ndarray):
    """The photo's skin, lips and hair (_SOFT_LABELS' order): softened masks (soft_labels) to read the labels from,
    and per label the photo premultiplied by its mask (H, W, 4: colour × mask, mask), once from the label's pixels
    eroded by one (its boundary pixels mix in the neighbouring label's colour) and once from all of them, for
    sample_pure. The labels are read from the eroded skin and lips masks where an eroded region survives at all;
    a region that the erosion removes (a small photo's lips, 2 px thick) keeps its own pixels."""
    kernel = np.ones((3, 3), np.uint8)
    full = [(labels == L).astype(np.uint8) for L in _SOFT_LABELS]
    core = [cv2.erode(m, kernel) if L != HAIR else m for m, L in zip(full, _SOFT_LABELS)]
    keep = []
    for m, c in zip(full, core):  # components of the full mask that the erosion empties keep their pixels
        n, comp = cv2.connectedComponents(m, connectivity=8)
        survives = np.zeros(n, bool)
        survives[np.unique(comp[c > 0])] = True
        keep.append(np.where(survives[comp], c, m).astype(np.uint8))
    soft = soft_labels(np.stack(keep, axis=-1))
    pure = []
    for m in (*keep, *full):
        mf = m.astype(np.float32)[..., None]
        pure.append(np.concatenate([photo_f * mf, mf], axis=-1))
    return soft, pure


def sample_pure(photo_f: np.ndarray, pure: list, pxy: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Photo (H, W, 3) colours (M, 3) at positions pxy (M, 2) for texels labelled `lab` (M,): a label's texel
    averages only that label's pixels among the four around it (bilinear weights renormalised over them: its
    eroded pixels when any is there, else any of its pixels; _label_layers' `pure`), so no neighbouring label's
    colour mixes in however small the region; texels without a label: plain bilinear."""
    col = sample_bilinear(photo_f, pxy)
    n = len(_SOFT_LABELS)
    for i, L in enumerate(_SOFT_LABELS):
        sel = lab == L
        if sel.any():
            a = sample_bilinear(pure[i], pxy[sel])
            b = sample_bilinear(pure[n + i], pxy[sel])
            use = np.where((a[:, 3] > 0.05)[:, None], a, b)
            col[sel] = np.where((use[:, 3] > 1e-3)[:, None], use[:, :3] / np.maximum(use[:, 3:], 1e-3), col[sel])
    return col


_SOFT_LABELS = (SKIN, LIPS, HAIR)
LABEL_BLUR_PX = 0.7  # the photo's labels are softened this much before they are read between pixels


def soft_labels(masks: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 of the photo's skin, lips and hair masks (H, W, 3) (_SOFT_LABELS' order), softened
    (Gaussian, LABEL_BLUR_PX) so that read between pixels their boundaries are curves, not the photo's pixel
    staircase magnified onto the finer texel grid (a forehead's texels are smaller than its pixels)."""
    return cv2.GaussianBlur(masks.astype(np.float32), (0, 0), LABEL_BLUR_PX)


def label_at(soft: np.ndarray, pxy: np.ndarray) -> np.ndarray:
    """Labels (M,) uint8 at photo positions pxy (M, 2): the soft label (soft_labels) weighing most there when it
    weighs at least one half (bilinear), else 255 (no label)."""
    w = sample_bilinear(soft, pxy)
    best = np.argmax(w, axis=1)
    return np.where(w[np.arange(len(w)), best] >= 0.5, np.array(_SOFT_LABELS, np.uint8)[best], 255).astype(np.uint8)


_FLIP = np.array([-1.0, 1.0, 1.0])
# a photo besides the main one colours only the skin it sees within this angle of head-on: its reads at a glance
# (foreshortened, at its silhouette, lit by its light's extrapolation) score worse than the main photo's, the other
# side photo's, the mirror image's or the completion's colour there (bake_photo_texture's `more`)
MORE_SEEN_DEG = 45.0
MORE_SEEN_MIN = float(np.cos(np.radians(MORE_SEEN_DEG)) ** 2)  # the reads' weight is facing²: 0.5
CAST_SHADOW_LUM = 0.85  # de-lit skin darker than this share of the lit skin's median ...
CAST_SHADOW_GLANCE = 0.3  # ... facing down and seen at a glance (facing² below this) is taken for a cast shadow


def bake_photo_texture(model, verts: np.ndarray, K: np.ndarray, w2c: np.ndarray, photo: np.ndarray,
                       res: int = 512, occluders: np.ndarray | None = None,
                       exclude: np.ndarray | None = None, parse=None,
                       more: list[PhotoView] | None = None,
                       fall_dz: tuple[float, float] | None = None,
                       rest: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Atlas (res, 2·res, 3) uint8 for the skin, from `photo` (H, W, 3) uint8 seen by (K, w2c) with the head
    at `verts` (V, 3) (the fitted, not yet neutralised, shape). `exclude` (H, W) bool marks photo pixels that
    must not colour the skin (open mouth, eyeballs). `parse` (photo_parse.PhotoParse) labels the photo: only
    its skin colours the skin, its hair only the scalp, and the texture is completed (light divided out, hair
    region, unseen skin synthesised); without it every unexcluded pixel is projected and the rest diffused.
    `more`: other photos of the same person (PhotoView, each with its parse): each one's light is divided out,
    its exposure matched to the main photo's on the skin both see, and the photos' colours are blended by
    viewing angle (facing⁴), feathered toward where each photo's view ends, so no seam shows between them, each
    photo's skin weighed by how little its de-lit colour varies locally (variation_trust: the shading its light
    leaves, a misfit's edges), the brows excepted; the other photos colour only the skin they see within
    MORE_SEEN_DEG of head-on (three photos at yaw 0, ±60°, mean over ±30°, ±90°, 180°: Lee Perry-Smith 26.01 dB /
    SSIM 0.749 -> 26.20 / 0.751, the ICT head 22.05 / 0.779 -> 22.20 / 0.783, no view worse).
    Skin that faces down, is seen at a glance and stays dark after the light is divided out (a cast shadow under
    the jaw or nose) is left to the completion (LPS novel views 22.53 -> 22.8 dB), and so is skin below the
    chin that stays dark, however squarely seen (the neck in the jaw's shadow: 22.8 -> 23.13 dB). The hair's own
    cast shadow on the forehead below its edge (a fringe's) is lifted to the skin further from it
    (hair_shadow_lifted).
    `fall_dz` (hair_mesh.hair_fall_dz): where the photo's hair ends beside the head; the hair region reaches
    down to it (the scalp under a bob's shell is hair, not skin). Skin seen above the hairline (between the
    strands of a hairline) is not painted on the scalp: the scalp is hair there.
    The lips' tone is the photo's lips under the light divided out of the skin round them (lip_tone); the photo's
    lips are read up to its mouth's opening and keep their grain round that tone (lips_evened).
    `rest` (V, 3): the person's head at rest (identity, no expression; default the model's mean neutral head):
    where the face's tone is carried across the jaw line onto the skin below it (carry_tone_below_jaw).
    Returns (atlas, stats: texel fractions by source, the light's SH coefficients)."""


    faces_sel = skin_faces(model)
    mask = texel_surface(model, verts, faces_sel, res)[0]
    mirror = mirror_map(model.neutral)
    views = [PhotoView(verts, K, w2c, photo, exclude, parse, occluders)]
    if parse is not None:
        views += list(more or [])
    samples = [_sample_view(model, faces_sel, res, v, mirror) for v in views]
    main = samples[0]
    if parse is None:
        return _diffused(res, mask, main.col, main.wgt, main.col_m, main.wgt_m)

    # the scalp: the hairline on the neutral head, its front where the photo's hair meets the forehead

    Pn = texel_surface(model, model.neutral, faces_sel, res)[1][mask]
    eye_z = eye_height(model)
    axis_y = head_axis(model.neutral, eye_z)
    hair_w = np.zeros(len(Pn))
    front_dz, profile = None, None
    lab, wgt = main.lab, main.wgt
    if parse.hair_rgb is not None:
        phi = np.degrees(np.arctan2(np.abs(Pn[:, 0]), -(Pn[:, 1] - axis_y)))
        fore = (wgt > 0.1) & (phi < 35) & (Pn[:, 2] > eye_z + 0.03)
        fh, fs = fore & (lab == HAIR), fore & (lab == SKIN)
        if fh.sum() > 20:  # the hairline sits between the forehead's highest skin and its lowest hair
            lo = np.percentile(Pn[fh, 2], 5)
            hi = np.percentile(Pn[fs, 2], 95) if fs.sum() > 20 else lo
            front_dz = float(np.clip((lo + min(hi, lo)) / 2 - eye_z, 0.035, 0.11))
            seen = wgt > 0.1
            profile = front_hairline(Pn, seen & (lab == HAIR), seen & (lab == SKIN), axis_y, eye_z, front_dz)
        hair_w = hair_weight(Pn, hairline_height(Pn, axis_y, eye_z, front_dz, fall_dz, profile))
        scalp0 = hair_weight(Pn, hairline_height(Pn, axis_y, eye_z, front_dz, None, profile)) > 0.5
    else:
        scalp0 = np.zeros(len(Pn), bool)
    # a texel takes a photo colour when the pixel is skin, or hair on the scalp
    # hair where the photo shows it above the brows too (bangs, a low hairline): painted as seen
    phi = np.degrees(np.arctan2(np.abs(Pn[:, 0]), -(Pn[:, 1] - axis_y)))
    bangs = (lab == HAIR) & (Pn[:, 2] > eye_z + 0.02) & (phi < 35) & (wgt > 0.02)  # (beside: hanging hair)
    hair_w = np.maximum(hair_w, fringe_weight(bangs, hair_w > 0.5, mask, res))
    scalp = hair_w > 0.5
    use = lambda lb: ((lb == SKIN) & ~scalp0) | (lb == LIPS) | ((lb == HAIR) & scalp)  # noqa: E731
    chin = model.landmarks_68[8] if model.landmarks_68 is not None else int(np.argmin(model.neutral[:, 2]))
    below_jaw = Pn[:, 2] < model.neutral[chin, 2]
    idx = np.nonzero(mask)
    brow_soft = brow_region(model, res)
    brows = None if brow_soft is None else brow_soft[idx] > BROW_EDGE
    near_brows = None if brow_soft is None else brow_soft[idx] > HAIR_SHADOW_BROW  # kept out of the hair's shadow
    below_eyes = np.clip((eye_z - Pn[:, 2]) / OUTLINE_BELOW_EYES_M, 0.0, 1.0)
    lights = []
    raw = main.col.copy()  # the main photo's colours, before its light is divided out (lip_tone)
    for s in samples:  # each photo's own light divided out, fitted on its well-seen skin
        s.rim, s.rim_m = 1 - below_eyes * (1 - s.rim), 1 - below_eyes * (1 - s.rim_m)  # outline_trust's scope
        s.wgt, s.wgt_m = np.where(use(s.lab), s.wgt * s.rim, 0.0), np.where(use(s.lab_m), s.wgt_m * s.rim_m, 0.0)
        fit_sel = (s.wgt > 0.3) & (s.lab == SKIN)
        light, mean_s = None, None
        if fit_sel.sum() > 200:
            light = fit_shading(s.col[fit_sel], s.nrm[fit_sel])
            mean_s = float((sh1(s.nrm[fit_sel]) @ light).mean())
            tint = light_tint(s.col[fit_sel], s.nrm[fit_sel], light, mean_s)
            # the light's tint is the skin's: hair, lips and the hair region's texels keep their own colour
            s.col = delight(s.col, s.shade, light, mean_s, tint, (s.lab == SKIN) & ~scalp)
            s.col_m = delight(s.col_m, s.shade_m, light, mean_s, tint, (s.lab_m == SKIN) & ~scalp)
            # cast shadows (under the jaw, the nose, the brows), which a smooth light cannot explain: skin that
            # faces down and stays darker than the lit skin is left to the completion, unless the photo sees it
            # squarely (then it is what the photo shows); mirrored reads fill the unseen side: never trusted there
            dark = CAST_SHADOW_LUM * float(np.median(s.col[fit_sel] @ LUMA))
            down = s.nrm[:, 2] < 0.0
            s.wgt[down & (s.wgt < CAST_SHADOW_GLANCE) & (s.lab == SKIN) & (s.col @ LUMA < dark)] = 0.0
            # the neck below the chin lies in the jaw's shadow under most lights, however squarely it is seen
            s.wgt[below_jaw & (s.lab == SKIN) & (s.col @ LUMA < dark)] = 0.0
            s.wgt_m[down & (s.lab_m == SKIN) & (s.col_m @ LUMA < dark)] = 0.0
            # the photo's sideburns taken for skin at the temples: left to the completion (temple_hair_dropped);
            # hair that falls past the eyes beside the head (a bob) covers the temples, its strands over the
            # face's sides are the photo's (dropped, the astronaut's front render lost 0.6 dB)
            short_hair = fall_dz is not None and min(fall_dz) > TEMPLE_SHORT_DZ
            if short_hair:
                s.wgt = temple_hair_dropped(s.col, s.wgt, s.lab, Pn, hair_w, idx, mask.shape, eye_z, axis_y,
                                            s.col[fit_sel], near_brows)
                s.wgt_m = temple_hair_dropped(s.col_m, s.wgt_m, s.lab_m, Pn, hair_w, idx, mask.shape, eye_z, axis_y,
                                              s.col[fit_sel], near_brows)
            # the hair's own shadow on the skin below its edge (a fringe's on the forehead), lifted
            s.col = hair_shadow_lifted(s.col, s.wgt, s.lab, Pn, hair_w, idx, mask.shape, res, eye_z, axis_y,
                                       near_brows)
            s.col_m = hair_shadow_lifted(s.col_m, s.wgt_m, s.lab_m, Pn, hair_w, idx, mask.shape, res, eye_z, axis_y,
                                         near_brows)
            # ... and the band it leaves darker further down: its low frequencies from the skin below
            s.col = hair_shadow_rebuilt(s.col, s.wgt, s.lab, Pn, hair_w, idx, mask.shape, res, eye_z, axis_y,
                                        near_brows)
            s.col_m = hair_shadow_rebuilt(s.col_m, s.wgt_m, s.lab_m, Pn, hair_w, idx, mask.shape, res, eye_z,
                                          axis_y, near_brows)
            # a highlight (the sun on a nose, a lamp's sheen), lifted further by the light's division, is not the
            # skin's colour: brighter than the well-seen skin's HIGHLIGHT_PCT-th percentile is compressed
            top = float(np.percentile(s.col[fit_sel] @ LUMA, HIGHLIGHT_PCT))
            s.col = highlights_compressed(s.col, s.lab == SKIN, top)
            s.col_m = highlights_compressed(s.col_m, s.lab_m == SKIN, top)
        lights.append((light, mean_s))
    for s in samples[1:]:  # the other photos: only what they see within MORE_SEEN_DEG of head-on
        s.wgt, s.wgt_m = np.where(s.wgt < MORE_SEEN_MIN, 0.0, s.wgt), np.where(s.wgt_m < MORE_SEEN_MIN, 0.0, s.wgt_m)
    for s in samples[1:]:  # exposure and white balance of the other photos matched to the main one
        both = (main.wgt > 0.2) & (s.wgt > 0.2) & (main.lab == SKIN) & (s.lab == SKIN)
        if both.sum() > 100:
            gain = np.clip(np.median(main.col[both], axis=0) / np.maximum(np.median(s.col[both], axis=0), 1.0),
                           0.75, 1.33)
            s.col, s.col_m = s.col * gain, s.col_m * gain
    if len(samples) == 1:
        col_d, w_d, lab_d, col_f, w_f, lab_f = main.col, main.wgt, main.lab, main.col_m, main.wgt_m, main.lab_m
        best = np.zeros(len(w_d), np.int64)
        trust = main.rim
    else:  # each photo's skin weighed by how well its light was divided out there (variation_trust)
        direct = [(s.col, s.wgt * variation_trust(s.col, s.wgt, s.lab, idx, mask.shape, res, brows), s.lab)
                  for s in samples]
        mirrored = [(s.col_m, s.wgt_m * variation_trust(s.col_m, s.wgt_m, s.lab_m, idx, mask.shape, res, brows),
                     s.lab_m) for s in samples]
        col_d, w_d, lab_d, best = _fuse(direct, idx, mask.shape, res)
        col_f, w_f, lab_f, _ = _fuse(mirrored, idx, mask.shape, res)
        untrusted = (np.max([s.wgt for s in samples], axis=0) > 0.02) & (w_d <= 0.02)  # seen, left to the others
        trust = np.stack([s.rim for s in samples])[best, np.arange(len(best))]
    wgt = w_d
    colour, weight, lab_src, use_m = blend_mirrored(col_d, w_d, lab_d, col_f, w_f, lab_f, idx, mask.shape, res,
                                                    trust)
    light, mean_s = lights[0]
    lip_soft = lip_region(model, res)
    if lip_soft is not None:  # the photo's lips that the fit put on the skin beside the lips (a laugh's corner)
        weight = np.where((lab_src == LIPS) & (lip_soft[idx] < LIP_READ_EDGE), 0.0, weight)
    known = weight > 0.02
    skin_sel = known & (lab_src == SKIN) & (hair_w < 0.05) & (weight > 0.5)  # well seen: the face itself
    skin_rgb = np.median(colour[skin_sel], axis=0) if skin_sel.sum() > 50 else parse.skin_rgb * 255
    hair_rgb = None
    if parse.hair_rgb is not None:
        hair_sel = known & (lab_src == HAIR)
        hair_rgb = np.median(colour[hair_sel], axis=0) if hair_sel.sum() > 50 else parse.hair_rgb * 255
    lips_sel = known & (lab_src == LIPS)
    lip_rgb = np.median(colour[lips_sel], axis=0) if lips_sel.sum() > 20 else None
    toned = None if lip_soft is None else lip_tone(photo[parse.labels == LIPS], raw, main.col, main.lab, main.wgt,
                                                   Pn, lip_soft[idx] > 0.5)
    if lip_rgb is not None and toned is not None:  # the seen lips keep their detail round the photo's lip tone
        colour[lips_sel] = lips_evened(colour[lips_sel], idx[0][lips_sel], idx[1][lips_sel], Pn[lips_sel], toned)
        lip_rgb = toned
    atlas = np.zeros((res, 2 * res, 3), np.float32)
    have = np.zeros((res, 2 * res), bool)
    conf = np.zeros((res, 2 * res), np.float32)
    hair_map = np.zeros((res, 2 * res), np.float32)
    atlas[idx[0][known], idx[1][known]] = colour[known]
    have[idx] = known
    conf[idx] = weight
    hair_map[idx] = hair_w
    lips = lip_region(model, res) if lip_rgb is not None else None
    pos_map = np.zeros((res, 2 * res, 3))
    pos_map[idx] = Pn
    seen_hair = np.zeros((res, 2 * res), bool)
    seen_hair[idx] = known & (lab_src == HAIR)
    filled = complete_atlas(atlas, have, conf, mask, hair_map, skin_rgb, hair_rgb, lips=lips, lip_rgb=lip_rgb,
                            pos=pos_map, seen_hair=seen_hair)
    if model.landmarks_68 is not None:  # the skin below the jaw continues the face's tone, without a step
        # at rest: the rig's jaw line (a smile's or an open mouth's is not where it shows)
        rest_v = model.neutral if rest is None else rest
        P_rest = Pn if rest is None else texel_surface(model, rest, faces_sel, res)[1][mask]
        filled[idx] = carry_tone_below_jaw(filled[idx], P_rest, rest_v[model.landmarks_68[1:16]], 1 - hair_w)
    n = max(int(mask.sum()), 1)
    stats = {"texels": int(mask.sum()), "from_photo": float((known & ~use_m).sum() / n),
             "by_photo": [round(float((known & ~use_m & (best == i)).sum() / n), 4) for i in range(len(samples))],
             "mirrored": float((known & use_m).sum() / n), "completed": float((~known).sum() / n),
             "hair_region": float((hair_w > 0.5).sum() / n), "holes": holes_in_seen(have, mask),
             "hairline_front_m_above_eyes": front_dz, "hairline_front_profile": profile,
             "light_sh1": None if light is None else [round(float(c), 4) for c in light],
             "light_mean": None if light is None else round(mean_s, 4),
             "skin_albedo_rgb": [round(float(c) / 255, 4) for c in skin_rgb],
             "hair_rgb": None if hair_rgb is None else [round(float(c) / 255, 4) for c in hair_rgb],
             "lip_rgb": None if lip_rgb is None else [round(float(c) / 255, 4) for c in lip_rgb]}
    if len(samples) > 1:  # skin the photos see but explain too badly to be taken as albedo (variation_trust)
        stats["untrusted"] = round(float((untrusted & ~(known & use_m)).sum() / n), 4)
    return np.clip(filled + 0.5, 0, 255).astype(np.uint8), stats


LIP_OPENING_PX = 2.0  # the photo's lip pixels this near its mouth's opening (MOUTH label) stay kept out
LIP_READ_EDGE = 0.25  # photo lip reads on texels where lip_region is under this (beside the lips): completed
LIP_EVEN_MM = 2.0  # lips_evened: the lips' reads keep their detail finer than this (Gaussian σ) round the lip tone


def lips_evened(col: np.ndarray, rows: np.ndarray, cols: np.ndarray, pos: np.ndarray, tone: np.ndarray) -> np.ndarray:
    """The lips' reads (N, 3) at atlas texels (rows, cols) (N,), neutral positions pos (N, 3), with their low
    frequencies (a Gaussian mean over the reads, σ LIP_EVEN_MM on the head) replaced by the lips' tone (3,): the
    photo's light and the lips' stretch across them (a smile's thin lower lip lit from above, a lip corner in the
    light) leave the texture; the lips' grain and the darker line where they meet stay.
    Issue 16 (2026-12-08, group face 1's lips "filled in", face 2's red-orange lip corner). Most of a smiling photo's
    lips never reached the texture: the open mouth's hole is kept out dilated by 6 % of the eye distance
    (photo_rig._photo_view), a margin as thick as a smile's lips (face 1: 1093 of his 1685 lip pixels kept out, the
    astronaut 248 of 279; 779 of face 1's 6091 lip texels read, 64 of the astronaut's), so the lips were a flat
    tone. The parse's lip pixels are now read past that margin (_sample_view; LIP_OPENING_PX from its MOUTH label:
    teeth and the mouth's shade at the corners), where the fit puts them on the lips (LIP_READ_EDGE: a laugh's lip
    corner painted on the skin beside the lips is completed as skin), evened here (face 1: 2313 lip texels read).
    Measured before -> after: the dataset heads photographed smiling (benchmarks/complete_head_expression.py, lips /
    around the mouth, mean |error| of 255): heads 0-2 neutral 3.96 / 6.53 -> 3.53 / 6.59, smile 4.97 / 7.71 -> 4.83
    / 7.79, open smile 2.89 / 8.34 -> 3.70 / 8.37, smile+folds 5.51 / 10.06 -> 4.85 / 10.14; held-out heads 3-5
    12.13 / 7.45 -> 12.18 / 7.43, 8.90 / 8.36 -> 8.32 / 8.37, 8.98 / 8.53 -> 8.84 / 8.30, 10.42 / 9.96 -> 10.05 / 9.96
    (their albedo's lips are one flat red: any grain read costs here); benchmarks/texture_look.py lips ΔE: group face
    1 7.8 -> 5.7, face 4 4.8 -> 2.8, face 5 3.5 -> 2.8, face 0 2.5 -> 2.4, the 240 px astronaut 5.8 -> 5.1, the
    astronaut 3.8 and the cameraman 3.4 unchanged, face 2 6.3 -> 7.2, face 3 2.2 -> 3.2; Lee Perry-Smith novel views
    24.61 dB / SSIM 0.726 -> 24.59 / 0.726 (the scan's lips' own broad shades evened: without lips_evened 24.61);
    the ICT head (complete_head.py --ict-several) 22.91 / 0.788 and 21.11 / 0.781 -> 21.11 / 0.780;
    tests/rig/test_instant.py's astronaut front render 22.00 -> 22.04 dB.
    Tried: the lips read past the margin, shifted by one colour to the tone as before (no evening): heads 0-2 lips
    4.52 / 5.34 / 5.17 / 6.48 (open smile's reads of teeth and shade at the corners), held-out 12.41 / 9.01 / 8.89
    / 11.02, face 4 8.3 (its lit lower lip pale, its upper lip dark), face 2 3.6 but its upper lip a blotchy orange
    band; the same with LIP_OPENING_PX and LIP_READ_EDGE: heads 0-2 lips 3.99 / 5.01 / 4.72 / 5.82, held-out 12.29 /
    9.38 / 9.10 / 11.07 (Lee Perry-Smith 24.61); half the low frequencies kept: held-out lips 11.80 / 8.54 / 8.49 /
    10.11, but faces 0-5 lips ΔE 3.9 / 5.5 / 7.8 / 3.7 / 3.6 / 3.5, Lee Perry-Smith 24.60; LIP_EVEN_MM 4: 24.59;
    read up to the MOUTH label itself: open smile lips 3.92; LIP_READ_EDGE 0.02 (reads kept up to ~2 mm beyond the
    lip line): heads 0-2 around the mouth 6.68 / 7.79 / 8.55 / 10.14, held-out 7.50 / 8.43 / 8.50 / 10.00.
    Tests: tests/rig/test_lips.py."""
    if len(col) < 2:
        return col
    r0, c0 = rows.min(), cols.min()
    shape = (int(rows.max() - r0) + 1, int(cols.max() - c0) + 1)
    near = cKDTree(pos).query(pos, k=2)[0][:, 1]  # the texels' spacing on the head (m)
    sigma = max(0.5, LIP_EVEN_MM / 1e3 / max(float(np.median(near)), 1e-6))
    grid, w = np.zeros(shape + (3,), np.float32), np.zeros(shape, np.float32)
    grid[rows - r0, cols - c0], w[rows - r0, cols - c0] = col, 1.0
    low = cv2.GaussianBlur(grid, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(w, (0, 0), sigma), 1e-6)[..., None]
    return col - low[rows - r0, cols - c0] + tone


LIP_TONE_MIN = 20  # lip_tone: at least this many lip pixels, and skin reads round the lips
LIP_TONE_NEAR_M = (0.004, 0.015)  # the skin this far from the lips sets the lips' light


def lip_tone(photo_lips: np.ndarray, raw: np.ndarray, delit: np.ndarray, lab: np.ndarray, wgt: np.ndarray,
             pos: np.ndarray, lips: np.ndarray) -> np.ndarray | None:
    """The lips' albedo (3,) 0..255: the photo's lip pixels `photo_lips` (N, 3) (those the parse labels lips; their
    median) times the light divided out of the skin round the lips: over the main photo's well-seen skin reads
    LIP_TONE_NEAR_M from the atlas's lips (`lips` (M,) bool, lip_region), the median of their de-lit colours
    `delit` (M, 3) over that of their colours as the photo shows them (`raw` (M, 3)), per channel: the light's
    strength and its colour at the mouth, which delight divided out of that skin (its tint); `lab`, `wgt` (M,):
    the reads' labels and weights, `pos` (M, 3) their neutral positions. None with fewer than LIP_TONE_MIN of
    either. The lips keep the contrast the photo shows between them and the skin round them.
    The lips' own reads, de-lit on the fitted head's normals, had lost it on a laughing photo (group face 2): the
    lips stretched thin, the mouth's hole kept out of the texture (dilated) leaves few lip reads, at the label's
    edge and mixed with the skin beside it (their median (226, 133, 102) against the photo's lip pixels' (203, 112,
    74)), and the fit's rolled upper lip (mouthRollUpper 0.68) faces away from the light, so the de-lit lips came
    out nearly as pale as the skin. Measured 2026-12-07 (benchmarks/texture_look.py lip_contrast: ΔE76 between the
    atlas's lips-minus-skin and the photo's, before -> after): group face 2 13.9 -> 8.9, face 0 13.0 -> 5.7, face 3
    4.5 -> 4.1, face 4 9.6 -> 6.1, face 5 5.9 -> 4.2, the cameraman 12.7 -> 0.2 (his de-lit lips were lighter than
    his skin), the astronaut 4.7 -> 4.4, face 1 14.7 -> 16.6 (the skin round his mouth is as red as his lips in the
    photo, and de-tinted in the atlas: lip_rgb (0.93, 0.52, 0.37) -> (0.96, 0.53, 0.36), much the same);
    Lee Perry-Smith (known albedo) novel views with lids_evened 23.38 dB / SSIM 0.717 -> 23.40 / 0.719, the lips'
    mean |error| at 0° / +45° / −45° 19.6 / 23.7 / 28.0 -> 19.7 / 24.0 / 28.4; the dataset heads' lips against
    their albedo (benchmarks/complete_head_expression.py, three heads, mean |error| of 255): neutral 6.2 -> 4.1,
    smile 5.9 -> 4.2, open smile 6.9 -> 4.3, squint 6.2 -> 4.5, squint+folds 7.1 -> 4.6, but smile+folds 6.7 ->
    7.6 (head 0 9.0 -> 12.0: the folds painted at the mouth's corners darken the photo's lip pixels). Tried: the
    photo's lips over its face's median skin (parse.skin_rgb) times the skin's albedo: face 2 5.3, but the scan's
    lips, shaded darker than the face's median, 23.9 / 30.2 / 34.3 and novel views 23.36 dB; the lips' own reads
    times the skin's gain round them: face 2 17.5 (the reads are the label's pale edge); that gain per channel (the
    light's tint too): face 2 11.6 (the lips de-tinted as skin, less red); the lip pixels of the middle 60 % of the
    mouth's width only (the corners left out): the dataset heads' lips worse throughout (neutral 7.4, smile+folds
    10.2), face 2 11.3, face 0 9.7; the lip label eroded by a pixel: dataset heads neutral 5.1, smile 3.8, open
    smile 5.6, smile+folds 9.1, face 2 12.6, the astronaut 2.1.
    Per channel since 2026-12-07 (issue 16: group face 1's lips a pale orange band; the photo's lip pixels, not the
    lips' reads as tried above; test: tests/rig/test_lips.py). The light's strength alone divided out left the lips the
    colour of the light at the mouth, which delight takes out of the skin round them: face 1's skin beside his lips
    (205, 114, 70) as the photo shows it, as orange as his lips (209, 116, 78), de-lit (213, 148, 105); his lips came
    out (250, 139, 93), now (217, 151, 117). texture_look's lips ΔE, before -> after (this alone; in brackets with
    creases.mouth_evened too, which lifts the skin round a smiling mouth, where the measure's skin ring lies): face 1
    17.2 -> 7.3 (7.8), face 0 4.5 -> 2.5, face 3 6.7 -> 2.2 (2.2), face 5 4.1 -> 3.5, the astronaut 3.9 -> 3.8 (3.8; its
    240 px copy 5.8 with both), the cameraman 3.4, but face 2 2.6 -> 6.8 (6.3) and face 4 3.2 -> 4.8 (their lips less
    red and yellow against the skin than the photo's by 3-6 a*, b*); Lee Perry-Smith novel views 24.61 dB / SSIM 0.726
    and the ICT head (complete_head.py --ict-several) 22.91 / 0.788 unchanged (white light: the channels' gains are the
    same). Tried: the same over the skin 4-25 mm from the lips: face 1 6.9, face 2 5.4, face 0 1.2, the cameraman 0.2,
    the astronaut 2.0, but that ring is the measure's own (10-25 mm); the luminance gain of the skin round the lips with
    the tint of all the well-seen skin: face 1 21.0, face 3 7.4; the lighter half of the skin round the lips only (the
    folds' shade left out): face 1 10.2 (lips (215, 138, 100)), face 2 3.5, face 4 3.7, but the astronaut 6.1, the
    cameraman 6.2, the 240 px astronaut 8.1 (with mouth_evened at MOUTH_KEEP 0)."""
    if len(photo_lips) < LIP_TONE_MIN or lips.sum() < LIP_TONE_MIN:
        return None
    d = cKDTree(pos[lips]).query(pos, distance_upper_bound=LIP_TONE_NEAR_M[1])[0]
    near = (lab == SKIN) & (wgt > 0.3) & ~lips & (d >= LIP_TONE_NEAR_M[0]) & (d < LIP_TONE_NEAR_M[1])
    if near.sum() < LIP_TONE_MIN:
        return None
    # per channel: the light's strength and its colour at the mouth, as the skin round the lips had them divided out
    gain = np.median(delit[near], axis=0) / np.maximum(np.median(raw[near], axis=0), 1.0)
    return np.clip(np.median(photo_lips[:, :3].astype(np.float64), axis=0) * gain, 0.0, 255.0)


HAIR_SHADOW_BAND_M = 0.012  # skin this close to the hair region (over the forehead and temples) ...
HAIR_SHADOW_REF_M = (0.012, 0.03)  # ... is brought up to the skin this far from it where darker
HAIR_SHADOW_DEG = 70.0  # within this angle of the face's midline, above the eyes
HAIR_SHADOW_GAIN = 2.5  # at most
HAIR_SHADOW_BROW = 0.0001  # the brows and their soft edge (brow_region over this) are left as they are: at 0.01
# the lift stopped a few texels short of where the brow's own shading does, and the skin there took a light line
# above the astronaut's right brow (the first texel ring outside the brow's 0.01 contour 187.4 against 178.3 inside
# and 177.5 beyond it, now 176.9 / 178.2 / 176.9; the cameraman -2, the group faces unchanged; forehead_band
# astronaut 0.923 -> 0.918, cameraman 0.925 -> 0.919)


def _local_mean(col: np.ndarray, sel: np.ndarray, idx, shape, sigma: float) -> np.ndarray:
    """(M, 3) Gaussian mean (σ `sigma` texels) of the reads `col` (M, 3) selected by `sel` (M,) on the atlas grid
    (`idx` into `shape`), continued by pull-push where they are too few (weight under 0.05)."""
    num, den = np.zeros((*shape, 3), np.float32), np.zeros(shape, np.float32)
    num[idx] = np.where(sel[:, None], col, 0.0)
    den[idx] = sel
    num, den = cv2.GaussianBlur(num, (0, 0), sigma), cv2.GaussianBlur(den, (0, 0), sigma)
    ok = den > 0.05
    return pull_push(np.where(ok[..., None], num / np.maximum(den, 1e-6)[..., None], 0.0), ok)[idx]


def _forehead_under_hair(wgt: np.ndarray, lab: np.ndarray, pos: np.ndarray, hair: np.ndarray, eye_z: float,
                         axis_y: float, exclude: np.ndarray | None, reach: float):
    """(front (M,) bool, distance (M,) to the hair region within `reach` (m, else inf), angle (M,) round the head from
    the face's midline, degrees) of the skin reads the hair mesh leaves uncovered (`hair` under 0.1) above the eyes
    within HAIR_SHADOW_DEG of the midline, less `exclude`; None when there are too few of them or of hair (the
    reads hair_shadow_lifted and hair_shadow_rebuilt work on)."""
    skin = (wgt > 0.02) & (lab == SKIN) & (hair < 0.1)
    if exclude is not None:
        skin &= ~exclude
    phi = np.degrees(np.arctan2(np.abs(pos[:, 0]), -(pos[:, 1] - axis_y)))
    front = skin & (phi < HAIR_SHADOW_DEG) & (pos[:, 2] > eye_z)
    hair_pts = pos[hair > 0.5]
    if front.sum() < 50 or len(hair_pts) < 50:
        return None
    d = np.full(len(wgt), np.inf)
    d[front] = cKDTree(hair_pts).query(pos[front], distance_upper_bound=reach)[0]
    return front, d, phi


def hair_shadow_lifted(col: np.ndarray, wgt: np.ndarray, lab: np.ndarray, pos: np.ndarray, hair: np.ndarray, idx,
                       shape, res: int, eye_z: float, axis_y: float, exclude: np.ndarray | None = None) -> np.ndarray:
    """Colours (M, 3) of one photo's de-lit reads (colour (M, 3), weight (M,), label (M,) at neutral positions
    `pos` (M, 3), atlas positions `idx` of a `shape` grid) with the hair's cast shadow lifted: the skin within
    HAIR_SHADOW_BAND_M of the hair region (`hair` (M,) weight over 0.5: the scalp, a fringe), above the eyes and
    within HAIR_SHADOW_DEG of the midline, where the hair mesh leaves it uncovered (weight under 0.1: its edge
    reaches the soft edge, hair_mesh.EDGE_WEIGHT), is brought to the luminance of the skin HAIR_SHADOW_REF_M from
    the hair (Gaussian, res/32, continued by pull-push) where its own is lower (Gaussian, res/64, over that band):
    a smooth gain (at most HAIR_SHADOW_GAIN), fading out over the band's last third; its detail (freckles, pores)
    and hue are kept. The texels `exclude` (M,) (the brows with their soft edge, HAIR_SHADOW_BROW: lifted, the
    skin beside a brow took a light line) are left out of both.
    The light divided out is fitted on the normals, and a fringe's shadow on the forehead is not explained by them:
    labelled skin, it stayed a grey band under the hair in the albedo (the astronaut; the cameraman's hairline),
    which the hair mesh, casting its own shadow in Blender, darkens twice. Measured (benchmarks/hair_look
    forehead_band: the albedo just below the hair mesh's edge over the forehead against the forehead 8-16 mm lower;
    complete_head's --sheets photos rerun, before -> after): astronaut 0.804 -> 0.923 (test_instant's jpg copy
    0.867 -> 0.980), cameraman 0.890 -> 0.925, group faces 0-5 0.977/0.972/0.970/0.996/0.982/0.963 -> 0.976/
    0.996/0.985/0.998/0.988/0.963. The texture's hairline: off-colour band (complete_head.hairline_band) astronaut
    12.8 -> 12.0 %, group face 0 11.1 -> 9.6, face 3 17.5 -> 15.1, face 5 43.7 -> 39.7, cameraman 12.7 -> 12.2, the
    rest ±0.2; edge per column astronaut 1.96 -> 2.13 (the jpg copy 2.21 -> 1.94), the rest ±0.03; jaw step ±0.07.
    The render at the photo's pose and light (rig.evaluate.photo_consistency, which draws no hair and so no cast
    shadow, while the photo has it): astronaut 21.93 -> 21.67 dB (the jpg copy 23.02 -> 22.60), cameraman 18.07 ->
    18.01, the rest unchanged. Lifting per texel (the local mean at res/128, or the band left to the completion)
    lifted more (0.95) but made the photo's fringe strands a ragged edge on the lifted skin (the jpg copy's
    hairline edge 2.34..2.62) and cost up to 2 dB there. Test: tests/rig/test_hair_look.py::
    test_the_hairs_shadow_on_the_forehead_is_lifted."""
    under = _forehead_under_hair(wgt, lab, pos, hair, eye_z, axis_y, exclude, HAIR_SHADOW_REF_M[1])
    if under is None:
        return col
    front, d, phi = under
    band = front & (d < HAIR_SHADOW_BAND_M)
    ref = front & (d >= HAIR_SHADOW_REF_M[0]) & (d < HAIR_SHADOW_REF_M[1])
    if band.sum() < 20 or ref.sum() < 50:
        return col

    def mean_over(sel, sigma):
        return _local_mean(col, sel, idx, shape, sigma)

    reference = mean_over(ref, max(1.0, res / 32))
    local = mean_over(band, max(1.0, res / 64))
    gain = np.clip((reference @ LUMA) / np.maximum(local @ LUMA, 1.0), 1.0, HAIR_SHADOW_GAIN)
    # faded out smoothly at every edge of the band: its far side, the eyes' height and the angle round the head
    # (a step there is a line on the forehead), and the shell's soft edge
    fade = (np.clip(3.0 * (HAIR_SHADOW_BAND_M - d) / HAIR_SHADOW_BAND_M, 0.0, 1.0)
            * np.clip((pos[:, 2] - eye_z) / 0.01, 0.0, 1.0) * np.clip((HAIR_SHADOW_DEG - phi) / 15.0, 0.0, 1.0)
            * np.clip((0.1 - hair) / 0.05, 0.0, 1.0))
    w = np.where(band, fade, 0.0)
    return col * (1.0 + w * (gain - 1.0))[:, None]


TEMPLE_SHORT_DZ = 0.0  # only for hair ending above the eyes beside the head (hair_fall_dz): sideburns, not a bob
TEMPLE_DEG = (45.0, 110.0)  # the temples: this far round the head from the face's midline ...
TEMPLE_Z_M = (-0.06, 0.08)  # ... this high above the eyes ...
TEMPLE_NEAR_M = 0.05  # ... and this close to the hair region
TEMPLE_DARK_L = 8.0  # hair-coloured skin reads at least this much darker (CIELAB L*) than the skin's median
TEMPLE_MIXED_L = 15.0  # ... or this much darker whatever its hue (a strand over skin: between the two)
TEMPLE_GROW_PX = 3  # the dropped reads grown by this many texels (their mixed edge)


def temple_hair_dropped(col: np.ndarray, wgt: np.ndarray, lab: np.ndarray, pos: np.ndarray, hair: np.ndarray, idx,
                        shape, eye_z: float, axis_y: float, skin_reads: np.ndarray,
                        exclude: np.ndarray | None = None) -> np.ndarray:
    """Weights (M,) of one photo's reads (colour (M, 3) de-lit, weight (M,), label (M,) at neutral positions `pos`
    (M, 3), atlas positions `idx` of a `shape` grid) without the hair the photo's parse took for skin at the
    temples: skin reads below the hair region (`hair` (M,) weight under 0.5, within TEMPLE_NEAR_M of it),
    TEMPLE_DEG round the head and TEMPLE_Z_M above the eyes, whose colour is nearer the hair's (the median of the
    reads labelled hair in the region, CIELAB) than the skin's (`skin_reads` (n, 3): the well-seen skin) and at
    least TEMPLE_DARK_L darker than it, grown by TEMPLE_GROW_PX texels over the skin reads beside them (their mixed
    edge), get weight 0: the completion gives them the skin round them. `exclude` (M,): the brows, kept.
    A sideburn labelled skin (group faces 2 and 4: the parse's skin reaches the ear) was painted as a dark streak
    on the temple's skin, below the hair mesh, which ends at the hair region, with a hard, jagged edge of skin
    between the two; the hair mesh's own colour ends the hair now. Only for short hair (bake_photo_texture:
    hair_fall_dz's ends above the eyes): a bob covers the temples, and its strands over the face's sides are the
    photo's (dropped, the astronaut's test_instant photo-consistency 22.65 -> 22.02 dB). The temples' uncovered
    skin coloured as hair in ¾ and profile (benchmarks/hair_look temple, before -> after): group face 4 7.31 ->
    2.18 %, face 2 1.20 -> 1.21 % (his streak is thin: the look barely changes), the others unchanged (bobs) or
    see the report. Test: tests/rig/test_hair_look.py::test_sideburns_taken_for_skin_leave_the_temple."""
    skin = (wgt > 0.02) & (lab == SKIN) & (hair < 0.5)
    if exclude is not None:
        skin &= ~exclude
    phi = np.degrees(np.arctan2(np.abs(pos[:, 0]), -(pos[:, 1] - axis_y)))
    zone = skin & (phi > TEMPLE_DEG[0]) & (phi < TEMPLE_DEG[1]) & (pos[:, 2] > eye_z + TEMPLE_Z_M[0]) \
        & (pos[:, 2] < eye_z + TEMPLE_Z_M[1])
    hair_reads = (lab == HAIR) & (hair > 0.5) & (wgt > 0.1)
    if zone.sum() < 20 or hair_reads.sum() < 50 or len(skin_reads) < 50:
        return wgt
    d = np.full(len(wgt), np.inf)
    d[zone] = cKDTree(pos[hair > 0.5]).query(pos[zone], distance_upper_bound=TEMPLE_NEAR_M)[0]
    zone &= d < TEMPLE_NEAR_M
    hair_lab = rgb_to_lab(np.median(col[hair_reads], axis=0)[None])[0]
    skin_lab = rgb_to_lab(np.median(skin_reads, axis=0)[None])[0]
    c = rgb_to_lab(np.clip(col[zone], 0, 255))
    dark = np.zeros(len(wgt), bool)
    # nearer the hair's colour than the skin's, or a mixed read (a strand over skin) well darker than the skin
    dark[zone] = (((np.linalg.norm(c - hair_lab, axis=1) < np.linalg.norm(c - skin_lab, axis=1))
                   & (c[:, 0] < skin_lab[0] - TEMPLE_DARK_L)) | (c[:, 0] < skin_lab[0] - TEMPLE_MIXED_L))
    if not dark.any():
        return wgt
    grid = np.zeros(shape, np.uint8)
    grid[idx] = dark
    k = 2 * TEMPLE_GROW_PX + 1
    grown = cv2.dilate(grid, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))[idx].astype(bool)
    return np.where(grown & (zone | dark), 0.0, wgt)


HAIR_SHADOW_LF_BAND_M = (0.006, 0.02)  # the skin this far below the hair: its low frequencies rebuilt ...
HAIR_SHADOW_LF_REF_M = (0.02, 0.035)  # ... from the skin this far from it (hair_shadow_rebuilt) ...
HAIR_SHADOW_LF_ABOVE_M = (0.002, 0.006)  # ... and this close to it (hair_shadow_lifted's, lifted): inpainted
HAIR_SHADOW_LF_SHARE = 0.75  # this share of the way (all of it: test_instant's photo-consistency 21.99 dB, < 22)


def hair_shadow_rebuilt(col: np.ndarray, wgt: np.ndarray, lab: np.ndarray, pos: np.ndarray, hair: np.ndarray, idx,
                        shape, res: int, eye_z: float, axis_y: float, exclude: np.ndarray | None = None) -> np.ndarray:
    """Colours (M, 3) of one photo's de-lit reads (hair_shadow_lifted's arguments) with the low frequencies of the
    skin within HAIR_SHADOW_LF_BAND_M below the hair (over the forehead, HAIR_SHADOW_DEG round the head, above
    the eyes, where the hair mesh leaves it uncovered) rebuilt from the skin HAIR_SHADOW_LF_REF_M from the hair:
    the band's own local mean (Gaussian, res/64, over the band) is replaced by the reference's continued into it
    (its Gaussian mean at res/64, pull-push: the skin below carried up), where that is brighter; the texel's detail
    over its local mean (freckles, pores, the photo's fine strands) is kept, and so is the local mean's hue only
    where it is not lifted. An inpainting of the low frequencies, added (not a gain: a gain on the dark band's
    colour made orange blotches and lifted the photo's strands to a ragged edge). The band starts HAIR_SHADOW_LF_
    BAND_M[0] below the hair (the skin above it, hair_shadow_lifted's, is part of the reference: the dip is
    inpainted from both sides) and goes HAIR_SHADOW_LF_SHARE of the way (all of it: test_instant's photo
    consistency 21.99 dB, the photo has the shadow); faded in over 3 mm at its top, and out at the eyes' height,
    round the head and at the shell's soft edge, as hair_shadow_lifted's lift.
    The astronaut (benchmarks/hair_look profile, the albedo below the hair mesh's edge per 2 mm over the forehead
    16-24 mm down, before -> after): 0-16 mm 0.697/0.796/0.794/0.755/0.728/0.709/0.819/0.904 -> 0.688/0.784/
    0.790/0.771/0.756/0.792/0.890/0.969, the pale band over the dark one (2-6 mm over the darkest of 6-16 mm)
    1.122 -> 1.042; hair_look jag (the band's spread over the columns) 0.117 -> 0.077; forehead_band (0-6 mm over
    8-16 mm, which is now lighter) 0.918 -> 0.844; test_instant's photo-consistency 22.65 -> 22.40 dB."""
    under = _forehead_under_hair(wgt, lab, pos, hair, eye_z, axis_y, exclude, HAIR_SHADOW_LF_REF_M[1])
    if under is None:
        return col
    front, d, phi = under
    band = front & (d >= HAIR_SHADOW_LF_BAND_M[0]) & (d < HAIR_SHADOW_LF_BAND_M[1])
    above = front & (d >= HAIR_SHADOW_LF_ABOVE_M[0]) & (d < HAIR_SHADOW_LF_ABOVE_M[1])
    ref = front & (((d >= HAIR_SHADOW_LF_REF_M[0]) & (d < HAIR_SHADOW_LF_REF_M[1])) | above)
    if band.sum() < 20 or ref.sum() < 50:
        return col

    def mean_over(sel, sigma):
        return _local_mean(col, sel, idx, shape, sigma)

    sigma = max(1.0, res / 64)
    # the local mean over the band and the skin round it, so it meets the reference at the band's edges
    local, reference = mean_over(band | ref, sigma), mean_over(ref, sigma)
    up = np.clip((reference - local) @ LUMA, 0.0, None) / np.maximum(np.abs((reference - local) @ LUMA), 1e-6)
    fade = (np.clip((d - HAIR_SHADOW_LF_BAND_M[0]) / 0.003, 0.0, 1.0) * np.clip((pos[:, 2] - eye_z) / 0.01, 0.0, 1.0)
            * np.clip((HAIR_SHADOW_DEG - phi) / 15.0, 0.0, 1.0)
            * np.clip((0.1 - hair) / 0.05, 0.0, 1.0))
    w = np.where(band, HAIR_SHADOW_LF_SHARE * fade * up, 0.0)
    return col + w[:, None] * (reference - local)


# highlights_compressed: above the well-seen de-lit skin's HIGHLIGHT_PCT-th percentile of luminance, the excess × this
HIGHLIGHT_PCT, HIGHLIGHT_SLOPE = 95.0, 0.25


def highlights_compressed(rgb: np.ndarray, sel: np.ndarray, top: float) -> np.ndarray:
    """Colours (M, 3) whose luminance passes `top` on the texels `sel` (M,) brought down to top + HIGHLIGHT_SLOPE
    × the excess (the hue and saturation kept): a photo's highlight (the sun on a nose, a lamp's sheen; the
    cameraman's nose tip came out white) and texels the light's division lifted too far are not the skin's colour.
    Measured at HIGHLIGHT_PCT 95 against none (benchmarks/complete_head_expression.py, neutral photos, gain-fitted
    mean |error| / SSIM): around the mouth 7.3 / 0.875 -> 6.8 / 0.887, around the eyes 12.3 / 0.806 -> 11.7 /
    0.813, the face 9.6 / 0.863 -> 9.1 / 0.872 (smile, open smile, squint alike; the open smile's lips 6.7 ->
    7.0); Lee Perry-Smith novel views 23.32 dB / 0.714 -> 23.37 / 0.717 (after the best gain 25.15 -> 25.31 dB).
    Lower percentiles score higher still on these smooth albedos (90: the face 8.8, 25.40 dB; 80: 8.3, 25.50 dB)
    by flattening the skin's own bright detail, which a real face has; a gentler slope (0.5) or 98 scored lower."""
    y = rgb @ LUMA
    over = sel & (y > top)
    out = rgb.copy()
    out[over] *= ((top + HIGHLIGHT_SLOPE * (y[over] - top)) / y[over])[:, None]
    return out


SEEN_MIN = 0.05  # a direct read weighing less than this (facing² : seen at over ~77°) gives way to the mirrored one
MIRROR_FEATHER = 1 / 64  # the seen side of the seen/mirrored boundary blends over this share of the atlas height
MIRROR_TONE_SIGMA = 1 / 64  # the seen−mirrored tone difference is averaged over this share of the atlas height


def blend_mirrored(col_d, w_d, lab_d, col_m, w_m, lab_m, idx, shape, res: int, trust: np.ndarray | None = None):
    """Join the direct reads (colour (M, 3), weight (M,), label (M,)) of skin texels at atlas positions `idx` (of a
    `shape` grid, (res, 2·res)) with their mirrored reads (the photo at the mirror image across the midline), which
    fill the texels the photo does not see (or sees at a glance: weight < SEEN_MIN), without a seam between them:
    - tone: the mirrored reads are shifted by the smooth difference between the two reads where both exist (the
      other side's light and skin are not quite this side's: the de-lighting leaves a residue, a cheek's flush),
      averaged locally (MIRROR_TONE_SIGMA) and continued from there into the mirrored-only region (pull-push), so
      the mirrored patch takes the seen skin's tone where they meet and keeps its own detail;
    - feather: on the seen side of the boundary the direct read fades in over MIRROR_FEATHER of the atlas (a smooth
      weight, zero at the boundary), where a mirrored read exists; elsewhere the direct read stays as it is;
    - `trust` (M,) in [0, 1] (outline_trust: the direct read's distance to the photo's outline) scales the direct
      read's share further where a mirrored read exists.
    → (colour (M, 3), weight (M,), label (M,), mirrored (M,) bool: the mirrored read weighs more than half)."""
    seen = w_d >= SEEN_MIN
    mir = w_m > 0.02
    both = seen & mir
    grid = np.zeros((*shape, 3), np.float32)
    have = np.zeros(shape, np.float32)
    if both.sum() > 50:
        sigma = max(1.0, res * MIRROR_TONE_SIGMA)
        grid[idx[0][both], idx[1][both]] = (col_d - col_m)[both]
        have[idx[0][both], idx[1][both]] = 1.0
        num = cv2.GaussianBlur(grid, (0, 0), sigma)
        den = cv2.GaussianBlur(have, (0, 0), sigma)
        ok = den > 0.05
        diff = pull_push(np.where(ok[..., None], num / np.maximum(den, 1e-6)[..., None], 0), ok)
        col_m = col_m + diff[idx]
    seen_grid = np.zeros(shape, np.float32)
    seen_grid[idx] = seen
    inside = cv2.distanceTransform((seen_grid > 0).astype(np.uint8), cv2.DIST_L2, 3)[idx]
    t = np.clip((inside - 0.5) / max(1.0, res * MIRROR_FEATHER), 0.0, 1.0)
    # (a glancing direct read with no mirrored one is kept as it is: the completion weighs it by its weight)
    fade = t * t * (3 - 2 * t) * (1.0 if trust is None else trust)
    a = np.where(seen, np.where(mir, fade, 1.0), (w_d > w_m).astype(np.float64))
    colour = a[:, None] * col_d + (1 - a)[:, None] * col_m
    weight = a * w_d + (1 - a) * w_m
    use_m = a < 0.5
    return colour, weight, np.where(use_m, lab_m, lab_d), use_m


def holes_in_seen(known: np.ndarray, texels: np.ndarray) -> dict:
    """The unseen islands inside the seen skin: connected groups of texels (`texels` (H, W) without `known`
    (H, W)) that the seen region encloses (not joined to the largest unseen region, the rest of the head), which the
    completion fills from the skin's tone (a low-resolution photo's blotches): {"count", "texels" (share of the
    seen texels)}. Eyes and mouth are left out of the texels and are not counted."""
    holes = (texels & ~known).astype(np.uint8)
    n, comp, st, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    if n <= 2:
        return {"count": 0, "texels": 0.0}
    area = st[1:, cv2.CC_STAT_AREA]
    small = np.ones(n - 1, bool)
    small[np.argmax(area)] = False
    # an island touching the texel layout's border or a UV seam is not enclosed by seen skin
    edge = cv2.dilate((~texels).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    small[np.unique(comp[edge & (comp > 0)]) - 1] = False
    return {"count": int(small.sum()), "texels": round(float(area[small].sum() / max(int(known.sum()), 1)), 5)}


FRINGE_GAP_TEXELS = 600  # skin gaps of fewer texels (at res 512) beside a fringe are taken into it


FRINGE_OPEN_RES = 1 / 128  # the fringe's opening radius, over the atlas's height (4 texels at 512)


def fringe_weight(bangs: np.ndarray, hair: np.ndarray, mask: np.ndarray, res: int) -> np.ndarray:
    """Hair weight (M,) of a fringe: the skin texels (M,) of atlas `mask` (res, 2·res) where the photo shows hair
    over the forehead (`bangs`), kept where they join the hair region (`hair`, (M,)) — a strand or a shadow
    labelled hair alone on the forehead stays skin — and the small gaps beside it (FRINGE_GAP_TEXELS: the
    highlights of fair hair, which read as skin), with a soft edge (Gaussian, res/256 texels), so the fringe is
    not a texel staircase with islands of skin."""
    grid = np.zeros(mask.shape, np.uint8)
    idx = np.nonzero(mask)
    grid[idx] = bangs
    hair_grid = np.zeros(mask.shape, bool)
    hair_grid[idx] = hair
    n, comp = cv2.connectedComponents(grid | hair_grid.astype(np.uint8), connectivity=8)
    joined = np.zeros(n, bool)
    joined[np.unique(comp[hair_grid])] = True
    joined[0] = False
    keep = (grid > 0) & joined[comp]
    # small gaps inside the fringe (highlights of fair hair labelled skin) are fringe too: no skin islands
    n, comp, stats, _ = cv2.connectedComponentsWithStats((mask & ~keep & ~hair_grid).astype(np.uint8),
                                                         connectivity=4)
    small = stats[:, cv2.CC_STAT_AREA] < FRINGE_GAP_TEXELS * (res / 512) ** 2
    small[0] = False
    ring = cv2.dilate(keep.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    inside = np.zeros(n, bool)
    inside[np.unique(comp[ring & (comp > 0)])] = True
    keep |= (small & inside)[comp]
    # opened (an ellipse res·FRINGE_OPEN_RES texels across, with the hair region): the photo's strands a few texels
    # wide were teeth along the fringe's edge, and the hair mesh's fringe is opened the same way
    # (hair_mesh.FRINGE_OPEN_RINGS). The cameraman's hairline from the front (benchmarks/hair_look front_edge, the
    # hair mesh's edge off its smoothed self): 0.92 -> 0.60 mm, total variation 1.57 -> 1.21; the band under it
    # (hair_look jag) 0.094 -> 0.088; his forehead's hair left uncovered (fringe) 2.3 -> 3.0 %, the astronaut's
    # 4.3 -> 4.4 %; the other jobs within ±0.01 mm, IoU and ΔE unchanged
    r = max(1, int(round(res * FRINGE_OPEN_RES)))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    keep &= cv2.morphologyEx((keep | hair_grid).astype(np.uint8), cv2.MORPH_OPEN, k).astype(bool)
    return np.clip(cv2.GaussianBlur(keep.astype(np.float32), (0, 0), max(1.0, res / 256))[idx], 0.0, 1.0)


def carry_tone_below_jaw(rgb: np.ndarray, pos: np.ndarray, jaw: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Texel colours (M, 3) 0..255 at neutral positions (M, 3) with the face's tone carried across the jaw line
    `jaw` (J, 3) onto the skin below it (texture_complete.jaw_tone_field, in CIELAB; `weight` (M,): 0 on hair)."""
    lab = rgb_to_lab(rgb)
    corr = jaw_tone_field(lab.astype(np.float64), pos, jaw, weight)
    moved = np.abs(corr).sum(axis=1) > 1e-3
    out = rgb.copy()
    if moved.any():
        lab_new = (lab[moved] + corr[moved]).astype(np.float32)
        out[moved] = lab_to_rgb(lab_new)
    return out


VARIATION_SIGMA = 1 / 64  # the de-lit skin's local variation is measured over this share of the atlas height
VARIATION_CUT = 2.0  # a photo's skin varying this many times more than its typical well-seen skin weighs nothing
BROW_EDGE = 0.1  # the brows kept out of variation_trust: brow_region with its soft edge


def variation_trust(col: np.ndarray, wgt: np.ndarray, lab: np.ndarray, idx, shape, res: int,
                    feature: np.ndarray | None = None) -> np.ndarray:
    """How far one photo's de-lit skin reads (colour (M, 3), weight (M,), label (M,) at atlas positions `idx` of a
    `shape` grid) are albedo, as a factor (M,) in [0, 1] on their weight: skin varies little over a few
    millimetres, and the shading a first-order light cannot take out does: a fold's or the nose's and brows' cast
    and attached shadows, an ear's inner rims, and the edges (a brow, an eyelid, the white of an eye) that a
    slightly misfitted head reads onto skin texels. The local standard deviation of the read's luminance
    (Gaussian window, VARIATION_SIGMA, over the photo's own skin reads) is compared with its median over the
    photo's well-seen skin (weight > 0.3): the factor falls from 1 to 0 (Tukey's biweight) as the ratio goes to
    VARIATION_CUT. Lips, hair and the texels `feature` (M,) bool (the brows) keep their weight and are left out of
    the others' variation (their edges are the person's, not the light's). With several photos the texels
    a photo explains badly go to the others, or to the completion; measured on the known heads of
    benchmarks/complete_head.py --several/--ict-several (three photos, mean over ±30°, ±90°, 180°): Lee Perry-Smith
    24.65 dB / SSIM 0.717 -> 26.01 / 0.749, the ICT head 21.51 / 0.743 -> 22.05 / 0.779 (one photo 19.78 / 0.772:
    the fused side photos' shading residue and misread edges had lowered SSIM below one photo's at ±30°, ±90°).
    A typical read (the median variation) keeps half its weight: the same for every photo, it changes no blend
    between them, only how far the completion smooths a texel (complete_atlas's confidence)."""
    skin = (wgt > 0.02) & (lab == SKIN)
    if feature is not None:
        skin &= ~feature
    well = skin & (wgt > 0.3)
    if well.sum() < 100:
        return np.ones(len(wgt))
    sigma = max(1.0, res * VARIATION_SIGMA)
    y = col @ LUMA
    have = np.zeros(shape, np.float32)
    have[idx] = skin
    den = np.maximum(cv2.GaussianBlur(have, (0, 0), sigma)[idx], 1e-6)
    grid = np.zeros(shape, np.float32)
    grid[idx] = np.where(skin, y, 0.0)
    mean = cv2.GaussianBlur(grid, (0, 0), sigma)[idx] / den
    grid[idx] = np.where(skin, (y - mean) ** 2, 0.0)
    sd = np.sqrt(cv2.GaussianBlur(grid, (0, 0), sigma)[idx] / den)
    u = np.clip(sd / (VARIATION_CUT * max(float(np.median(sd[well])), 1e-6)), 0.0, 1.0)
    return np.where(skin, (1.0 - u**2) ** 2, 1.0)


def _fuse(reads, idx, shape, res: int):
    """Blend several photos' reads [(colour (M, 3), weight (M,), label (M,))] of the skin texels at atlas
    positions `idx` (of a (res, 2·res) grid): weights facing⁴ (the weight squared), each photo's feathered to
    zero where its seen region ends (the seen share of the texels within res/64, mapped 0.5 → 0, 1 → 1), so
    where two photos overlap the blend moves smoothly from one to the other.
    → (colour (M, 3), the largest unfeathered weight (M,), the label of the photo weighing most, its index)."""
    sigma = max(1.0, res / 64)
    texels = np.zeros(shape, np.float32)
    texels[idx] = 1.0
    near = cv2.GaussianBlur(texels, (0, 0), sigma)
    num = np.zeros((len(idx[0]), 3))
    den = np.zeros(len(idx[0]))
    ws = []
    for col, wgt, _ in reads:
        seen = np.zeros(shape, np.float32)
        seen[idx] = wgt > 0.02
        share = cv2.GaussianBlur(seen, (0, 0), sigma)[idx] / np.maximum(near[idx], 1e-6)
        fw = wgt**2 * (np.clip(2.0 * share - 1.0, 0.0, 1.0) + 1e-3)
        num += fw[:, None] * col
        den += fw
        ws.append(wgt)
    ws = np.stack(ws)
    best = np.argmax(ws, axis=0)
    labs = np.stack([r[2] for r in reads])
    colour = np.where(den[:, None] > 0, num / np.maximum(den, 1e-12)[:, None], reads[0][0])
    return colour, ws.max(axis=0), labs[best, np.arange(len(best))], best


_REGIONS: dict = {}  # (model name, res, landmark polygons) → region (res, 2·res)


def lip_region(model, res: int) -> np.ndarray | None:
    """(res, 2·res) float in [0, 1]: the lips in the skin atlas, inside MediaPipe's outer lip contour carried
    to the model's UVs (its landmark correspondence), with a soft edge; None without a correspondence."""
    return landmark_region(model, res, (MP_LIPS_OUTER,))


def brow_region(model, res: int) -> np.ndarray | None:
    """(res, 2·res) float in [0, 1]: the brows in the skin atlas (MediaPipe's brow outlines; lip_region's way)."""
    return landmark_region(model, res, (MP_BROW_R, MP_BROW_L))


def landmark_region(model, res: int, polygons) -> np.ndarray | None:
    """(res, 2·res) float in [0, 1]: the inside of MediaPipe landmark `polygons` (tuples of indices) carried to the
    model's UVs (its landmark correspondence), with a soft edge (Gaussian, res/256); None without a correspondence."""
    key = (model.name, model.n_vertices, res, tuple(polygons))
    if key not in _REGIONS:
        try:
            tri, bary = load_mediapipe_correspondence(model)
        except Exception:  # noqa: BLE001  (ModelMissingError: no correspondence for this model)
            return None
        m = np.zeros((res, 2 * res), np.uint8)
        for poly in polygons:
            idx = list(poly)
            uv = np.einsum("nk,nkc->nc", bary[idx], model.uv[model.face_uv[tri[idx]]])
            px = atlas_uv(uv) * [2 * res, res]
            cv2.fillPoly(m, [np.round(px - 0.5).astype(np.int32)], 1)
        _REGIONS[key] = cv2.GaussianBlur(m.astype(np.float32), (0, 0), max(1.0, res / 256))
    return _REGIONS[key]


def _diffused(res, mask, col, wgt, col_m, wgt_m):
    """Without a parse of the photo: seen and mirrored colours, the rest diffused (pull-push)."""
    use_m = (wgt < 0.05) & (wgt_m > wgt)
    colour = np.where(use_m[:, None], col_m, col)
    weight = np.where(use_m, wgt_m, wgt)
    known = weight > 0.02
    atlas = np.zeros((res, 2 * res, 3), np.float32)
    have = np.zeros((res, 2 * res), bool)
    idx = np.nonzero(mask)
    atlas[idx[0][known], idx[1][known]] = colour[known]
    have[idx[0][known], idx[1][known]] = True
    filled = pull_push(atlas, have)
    n = max(int(mask.sum()), 1)
    stats = {"texels": int(mask.sum()), "from_photo": float((wgt > 0.02).sum() / n),
             "mirrored": float((use_m & known).sum() / n), "completed": 0.0}
    # dilate a little beyond the islands so bilinear lookups at seams do not bleed black
    return np.clip(filled + 0.5, 0, 255).astype(np.uint8), stats
