"""How the hair mesh looks, on the real photos of `benchmarks/complete_head.py --sheets` (their job folders): the
astronaut, insightface's group photo's six faces and the cameraman. The hair is rebuilt from each job's fit and
photo with the code as it is now (hair_mesh.hair_fall_dz + hair_shell, the job's skin atlas), so a change to
hair_mesh is measured without re-running the fit.

    .venv/bin/python benchmarks/hair_look.py [--jobs test-artifacts/complete_head] [--sheet test-artifacts/hair_look]

Per job it prints these figures:
- streaks: in profile and from behind (the contact sheet's orbit camera, 256 px), over the hair that falls below
  the eyes, the ratio of the luminance high-pass's horizontal to vertical gradient energy (vertical streaks raise
  it) and the high-pass's contrast (its spread over the mean), each divided by the same figure of the photo's own
  hair pixels at the same scale (1.0: the hair's own texture; the photo's hair is mostly seen from the front);
- ragged: from the front (the contact sheet's camera, 512 px), the hair mesh's outline in the rows from the eyes to
  the chin (the bob's inner edges beside the cheeks, its lower rim): its length over its length once smoothed
  along it (Gaussian, 3 % of the eye-to-chin height); 1.0 a smooth edge, a sawtooth adds to it;
- fringe: from the fitted camera, the share of the forehead's pixels (the head's front within 35° of the midline,
  from 2 cm above the eyes up) that the hair mesh leaves uncovered and whose colour (the head without the hair,
  unlit) is nearer the hair's than the skin's (CIELAB): hair painted on the forehead's skin, a flat patch;
- edge shadow: from the front (512 px), the share of the skin within 2 mm below the hair mesh's edge above the eyes
  that the mesh shades from benchmarks/cycles_sheet.py's key light (a shadow map): the thin dark line along the
  shell's front edge in Cycles (edge_shadow_of);
- band: the head's albedo (unlit, no hair) just below the hair mesh's front edge over its forehead against its
  forehead 8-16 mm lower, median luminance ratio (1.0: no grey band, the fringe's cast shadow, under the hair;
  forehead_band);
- front_edge: from the front (512 px), the hair mesh's lowest covered row above the eyes per column within 35° of
  the midline: its mean distance from itself smoothed along the columns (mm) and its total variation over the
  smoothed edge's (1.0 smooth; a notch or teeth add to it; front_edge);
- jag: forehead_band's columns, the spread over them of the skin's luminance within 4 mm below the hair mesh's
  edge over the forehead's 8-16 mm lower (hairline_jag, with the forehead's own spread between its halves for
  scale): a light/dark band under the hair that changes from column to column;
- ears: from the fitted camera, the share of the ears' pixels that show with the hair mesh where the photo shows
  hair (an ear through a bob's inner edge or below its end; ears_through_of);
- profile: the albedo below the hair mesh's front edge per 2 mm against the forehead 16-24 mm down, and the
  2-6 mm step over the darkest of 6-16 mm (> 1: a pale band under the hair over a darker one; forehead_profile);
- crown: the hair mesh's dihedral angles over its top (p99.9, share past 30°): a fold where the cap over the crown
  meets the fall (crown_folds);
- crown_tone: from above and behind, the hair's top against its back (median luminance, detail) and the share of
  the head showing through the hair (crown_tone);
- temple: in ¾ and profile (yaw ±35°, ±90°, 384 px, unlit), the share of the temples' skin (the head beside the
  eyes and in front of the ears: 50-100° round the head's axis, from 3 cm below the eyes to 6 cm above them) that
  the hair mesh leaves uncovered and that is coloured as hair (CIELAB nearer the hair mesh's colour than the skin's):
  the photo's sideburns painted as dark streaks on the skin below the shell (temple_hair);
- crown_edge: the job's rigged head (rig/head_rigged.glb, its hair's material as hair_mesh gives it now) rendered
  from behind in Cycles as benchmarks/cycles_sheet.py's back tile (224 px, 12 samples): the 10-90 % rise of the
  hair's outline over its top against the sky, in pixels (median over rays from the dome's centre, ±70° of up;
  crown_edge_width), and the same with the glTF's default specular (the material before hair_material_extensions):
  the soft blur of a dark crown into the grey sky, a crisp outline about 2 px.
- nape: from behind (384 px, unlit), over the back's middle columns, the head's albedo (no hair) per 1 mm below the
  hair mesh's lower edge down to 16 mm, as the share of the way from the hair's luminance to the neck's 12-16 mm
  below (1.0: the neck's own tone), and the depth where it first reaches 0.9: short hair's colour fading softly into
  the neck below the shell (nape_fade; group face 4 0.31 at 0-1 mm, 0.9 at 6 mm before hair_mesh.NAPE_EDGE_HANGS);
  no columns where a bob covers the neck.
- back: from behind (384 px, unlit), the hair mesh's silhouette against the head's midplane: the median over its
  rows of the difference between its reach left and right of the midline, the mean difference between its top's
  height at mirrored columns, and its outline's deepest dent beside the head (the convex hull's defects in the
  outer half of either side), all mm (back_shape_of): a lopsided bob, a notch in its side (group face 3 45.0 mm /
  13.2 mm before hair_mesh._mirrored_reach, 4.8 / 2.8 mm with it);
- side_folds: the hair mesh's edges 3 rings or more from its rim beside the head (|x| > 5 cm) where its triangles
  fold over (dihedral past 90°), count and share (side_folds): the shell over a bob's ears (hair_mesh._ears_filled's
  membrane offset along its normals) folded, black speckles on a pale patch in Cycles' profile (group face 3 513,
  face 0 509 before hair_mesh.EAR_RINGS 8, 0 with it).
- spots: in ¾ (yaw 35°, 384 px) and from above (60° up, in front), unlit, the share of the hair mesh's pixels whose
  hue is more than 12° off the hair's median hue, and the share more than 10 L* lighter than its median (hair_spots):
  group face 0's pale, slightly greenish spots on her hair's top and temple lock in Cycles (0.37 / 2.12 % in ¾,
  0.33 / 1.37 % from above; the photo's crown, olive roots at the parting and lit strands, read onto the shell at a
  grazing angle). Hue is NaN for hair whose median chroma is under SPOT_MIN_CHROMA: the dark and grey hair of group
  faces 1, 2, 4, 5 and the cameraman, whose hue read 14-81 % off (noise) before that gate; the astronaut 0.37 / 0.04 %,
  face 3 0.05 / 0.31 %.
- bob: a hanging bob's shape (bob_shape_of): from behind (384 px) the share of its bounding box left empty in the
  lower and upper corner squares (square corners 0); in profile, on the midplane, how far the hair stands off the
  head at the occiput and at the nape (a box whose back is a vertical plane stands far off the nape: group face 3
  18.6 / 37.2 mm before hair_mesh.BACK_TAPER, 17.9 / 10.2 with it); the hem's lowest point behind above the sides'
  (0: level) and how far its ends curl in at the sides (mm).
- temple_peak: the hair mesh's lowest point per 2.5° round the head, 30-85° from the face's midline on each side,
  and how far one stands above the lowest on both sides of it, mm (temple_peak_of): a sharp inverted V of skin up
  into the hair at a corner of the hairline (group face 1 16.8 mm before hair_mesh._no_temple_peak, 4.7 with it; a
  bob ending above the ears counts its ear's gap: the astronaut 23.7 mm).
- nape_band: from behind (384 px, unlit), the head's uncovered pixels 0-30 mm below the hair mesh's lower edge over
  the middle half of its columns, the share whose albedo is nearer the hair's colour than the skin's (CIELAB): the
  texture's hair showing below a hem raised toward the nape (group faces 0 / 3 with the old texture's hair region
  7.1 / 35.3 %, with texture_complete.NAPE_RISE_M's 0.00 / 0.15 %).
- front_step: from the front (512 px), the hair mesh's front edge per column within 45° of the midline on a circle
  of the head's half width: the most it rises or falls over 4 mm of width, mm (the cameraman's fringe cut off square
  at hair_mesh.FRINGE_DEG 11.8 mm, outside front_edge's narrower window; the others 3.5-14.7, their temples' corners).
--measures picks some of them (default all). --sheet DIR writes, per job, a row (front, ¾, profile, back with the
rebuilt hair, and a crop of the front from the fitted camera) to DIR/hair_look_NAME.png.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: complete_head and _data
import complete_head as bench  # noqa: E402
from _data import REPO, use_shared_ict  # noqa: E402
from complete_head import orbit_camera  # noqa: E402

NAMES = ("astronaut", *(f"group_t1_{i}" for i in range(6)), "cameraman_side")
LUM = np.array([0.299, 0.587, 0.114])


def load_job(job: Path) -> dict:
    """What the hair is built from: photo, labels, fit, skin atlas and the texture's hairline figures."""
    from PIL import Image

    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.photo_parse import parse_photo

    rec = json.loads((job / "rig" / "rig.json").read_text())
    photo = np.asarray(Image.open(job / "input" / "portrait.png").convert("RGB"))
    matte = np.asarray(Image.open(job / "face" / "matte.png").convert("L"), np.float32) / 255
    pts = np.asarray(json.loads((job / "face" / "analysis.json").read_text())["face"]["landmarks_478"])[:, :2]
    fit = rec["fit"]
    return {"rec": rec, "photo": photo, "pts": pts, "labels": parse_photo(photo, pts, matte).labels,
            "model": load_ict(), "identity": np.array(fit["identity"]),
            "expression": np.array(fit["portrait_expression"]), "K": np.array(fit["camera"]["K"]),
            "w2c": np.array(fit["camera"]["w2c"]),
            "atlas": np.asarray(Image.open(job / "rig" / "skin.png").convert("RGB"))}


def build_hair(d: dict) -> dict | None:
    """The job's hair mesh as hair_mesh builds it now (photo_rig.rig_from_photos' calls)."""
    from headforge.backend.rig.hair_mesh import hair_fall_dz, hair_shell
    from headforge.backend.rig.photo_parse import HAIR, SKIN

    tex = d["rec"].get("texture") or {}
    hair_px = d["labels"] == HAIR
    fall = hair_fall_dz(d["model"], d["identity"], d["expression"], d["K"], d["w2c"], hair_px)
    mesh, _ = hair_shell(d["model"], d["identity"], d["expression"], d["K"], d["w2c"], hair_px, d["atlas"],
                         tex.get("hairline_front_m_above_eyes"), fall_dz=fall, skin_mask=d["labels"] == SKIN,
                         front_profile=tex.get("hairline_front_profile"), photo=d["photo"])
    return mesh


def _render_pair(rig, atlas, hair, K, w2c, size, keys=None):
    """(with the hair (H, W, 3), without it, the pixels the hair covers (H, W) bool)."""
    from headforge.backend.rig.render import render_rig

    a, _ = render_rig(rig, atlas, K, w2c, size, background=0.0, attachments=[hair], shape_keys=keys)
    b, _ = render_rig(rig, atlas, K, w2c, size, background=0.0, attachments=[], shape_keys=keys)
    return a, b, np.abs(a - b).sum(axis=-1) > 1e-4


def texture_figures(lum: np.ndarray, mask: np.ndarray, sigma: float = 3.0) -> tuple[float, float]:
    """(horizontal / vertical gradient energy of the luminance's high-pass, its robust spread / mean) over `mask`
    (eroded by 2 px, so the outline's own edge does not count)."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if inner.sum() < 50:
        return float("nan"), float("nan")
    m = mask.astype(np.float32)
    lum = lum.astype(np.float32)
    # the low-pass over the mask only (normalised), so the background does not leak into the high-pass
    low = cv2.GaussianBlur(lum * m, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(m, (0, 0), sigma), 1e-6)
    hp = lum - low
    gx = cv2.Sobel(hp, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(hp, cv2.CV_32F, 0, 1, ksize=3)
    ratio = float((gx[inner] ** 2).mean() / max((gy[inner] ** 2).mean(), 1e-12))
    spread = 1.4826 * float(np.median(np.abs(hp[inner] - np.median(hp[inner]))))
    return ratio, spread / max(float(lum[inner].mean()), 1e-6)


def _px_per_m(K: np.ndarray, w2c: np.ndarray, point: np.ndarray) -> float:
    return float(K[0, 0] / (w2c[:3, :3] @ point + w2c[:3, 3])[2])


def streaks(d: dict, rig, atlas, hair: dict, size: int = 256) -> dict:
    """The fall's texture in profile (+90° and −90°) and from behind against the photo's hair: per view
    (ratio, contrast) of texture_figures each over the photo's, and the photo's own (see the module's docstring)."""
    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.render.raster import project
    from headforge.backend.rig.photo_parse import HAIR

    model = d["model"]
    eye = np.array([0.0, 0.0, eye_height(model)])
    out = {}
    K0, w0 = orbit_camera(rig, size, 0.0)
    # the photo's hair at the render's scale (pixels per metre at the eyes)
    s = _px_per_m(K0, w0, eye) / _px_per_m(d["K"], d["w2c"], eye)
    photo = cv2.resize(d["photo"].astype(np.float32), None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    mask = cv2.resize((d["labels"] == HAIR).astype(np.uint8), photo.shape[1::-1], interpolation=cv2.INTER_NEAREST)
    out["photo"] = texture_figures(photo @ LUM, mask.astype(bool))
    for deg in (90, -90, 180):
        K, w2c = orbit_camera(rig, size, deg)
        img, _, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
        row = int(np.clip(round(float(project(eye[None], K, w2c)[0][0, 1])), 0, size - 1))
        cover[:row] = False  # the fall: the hair below the eyes
        r, c = texture_figures(img @ LUM * 255, cover)
        out[deg] = (r / out["photo"][0], c / out["photo"][1])
    return out


def ragged(d: dict, rig, atlas, hair: dict, size: int = 512) -> tuple[float, int]:
    """(the hair mesh's outline from the front (the contact sheet's camera at yaw 0, `size` px) in the rows from
    the eyes to the chin: its length over its length smoothed along it, the outline's pixels there) — the bob's
    inner edges beside the cheeks and its lower rim; see outline_roughness."""
    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.render.raster import project

    model = d["model"]
    K, w2c = orbit_camera(rig, size, 0.0)
    _, _, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
    chin = model.landmarks_68[8]
    rest = model.vertices(identity=d["identity"])
    ys = project(np.array([[0.0, rest[chin, 1], eye_height(model)], rest[chin]]), K, w2c)[0][:, 1]
    return outline_roughness(cover, int(ys[0]), int(ys[1]), sigma=0.03 * (ys[1] - ys[0]))


def _front_cover(d: dict, rig, atlas, hair: dict, size: int) -> tuple:
    """(K, w2c: the contact sheet's camera at yaw 0, `size` px; the pixels the hair mesh covers (size, size) bool;
    the fitted head's rest vertices (V, 3); the eyes' height; the head's vertical axis (y))."""
    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.rig.texture_complete import head_axis

    K, w2c = orbit_camera(rig, size, 0.0)
    _, _, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
    rest = d["model"].vertices(identity=d["identity"])
    eye_z = eye_height(d["model"])
    return K, w2c, cover, rest, eye_z, head_axis(d["model"].neutral, eye_z)


def front_edge(d: dict, rig, atlas, hair: dict, size: int = 512) -> tuple[float, float, int]:
    """(the hair mesh's front edge from the front (the contact sheet's camera at yaw 0, `size` px) over the forehead
    — per pixel column within 35° of the face's midline, the lowest row the mesh covers above the eyes —: its mean
    distance from itself smoothed along the columns (Gaussian, 5 % of the columns' span), in mm on the head; its
    total variation over the smoothed edge's; the columns): a notch or teeth along the hairline (the cameraman's)."""
    from headforge.backend.render.raster import project

    K, w2c, cover, rest, eye_z, axis_y = _front_cover(d, rig, atlas, hair, size)
    r = float(np.median(np.abs(rest[:, 0][np.abs(rest[:, 2] - eye_z - 0.04) < 0.005])))  # the forehead's half width
    a = np.radians(35.0)
    pts = np.array([[-r * np.sin(a), axis_y - r * np.cos(a), eye_z], [r * np.sin(a), axis_y - r * np.cos(a), eye_z],
                    [0.0, axis_y - r, eye_z]])
    xy = project(pts, K, w2c)[0]
    x0, x1, eye_row = int(np.ceil(min(xy[:2, 0]))), int(np.floor(max(xy[:2, 0]))), int(xy[2, 1])
    cols, rows = [], []
    for x in range(x0, x1 + 1):
        c = np.flatnonzero(cover[:eye_row, x])
        if len(c):
            cols.append(x)
            rows.append(c.max())
    if len(cols) < 20:
        return float("nan"), float("nan"), len(cols)
    y = np.asarray(rows, np.float64)
    sigma = 0.05 * len(y)
    k = np.arange(-int(3 * sigma) - 1, int(3 * sigma) + 2)
    g = np.exp(-0.5 * (k / sigma) ** 2)
    g /= g.sum()
    ys = np.convolve(np.pad(y, len(k), mode="edge"), g, "same")[len(k):-len(k)]
    mm = 1000.0 / _px_per_m(K, w2c, np.array([0.0, axis_y - r, eye_z + 0.05]))
    tv = float(np.abs(np.diff(y)).sum() / max(np.abs(np.diff(ys)).sum(), 1e-6))
    return float(np.abs(y - ys).mean() * mm), tv, len(cols)


def front_step(d: dict, rig, atlas, hair: dict, size: int = 512, deg: float = 45.0, span_m: float = 0.004) -> tuple:
    """(the most the hair mesh's front edge from the front (the contact sheet's camera at yaw 0, `size` px) rises or
    falls over any `span_m` of width, mm; the columns): per pixel column over the forehead, within `deg` of the
    midline on a circle of the head's half width at 4 cm above the eyes, the lowest row above the eyes the mesh
    covers. A fringe cut off square at hair_mesh.FRINGE_DEG is a step of some 15 mm (the cameraman). front_edge
    measures within 35° of a narrower circle (the median |x| there), which ends short of that step."""
    from headforge.backend.render.raster import project

    K, w2c, cover, rest, eye_z, axis_y = _front_cover(d, rig, atlas, hair, size)
    r = float(np.abs(rest[:, 0][np.abs(rest[:, 2] - eye_z - 0.04) < 0.005]).max())
    a = np.radians(deg)
    pts = np.array([[-r * np.sin(a), axis_y - r * np.cos(a), eye_z], [r * np.sin(a), axis_y - r * np.cos(a), eye_z],
                    [0.0, axis_y - r, eye_z]])
    xy = project(pts, K, w2c)[0]
    x0, x1, eye_row = int(np.ceil(min(xy[:2, 0]))), int(np.floor(max(xy[:2, 0]))), int(xy[2, 1])
    rows = np.array([np.flatnonzero(cover[:eye_row, x]).max() if cover[:eye_row, x].any() else np.nan
                     for x in range(x0, x1 + 1)])
    px_m = _px_per_m(K, w2c, np.array([0.0, axis_y - r, eye_z + 0.05]))
    k = max(1, int(round(span_m * px_m)))
    jump = np.abs(rows[k:] - rows[:-k])
    return (1000.0 * float(np.nanmax(jump)) / px_m if np.isfinite(jump).any() else float("nan"),
            int(np.isfinite(rows).sum()))


def outline_roughness(mask: np.ndarray, y0: int, y1: int, sigma: float) -> tuple[float, int]:
    """(length of `mask`'s (H, W) bool outlines within rows y0..y1, over their length once smoothed along the
    outline (circular Gaussian of `sigma` px on x and y), the outline points counted). 1.0: a smooth edge; a
    sawtooth adds its teeth. The frame's border is not an edge."""
    H, W = mask.shape
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    raw = smooth = 0.0
    count = 0
    k = np.arange(-int(3 * sigma) - 1, int(3 * sigma) + 2)
    g = np.exp(-0.5 * (k / max(sigma, 0.5)) ** 2)
    g /= g.sum()
    for c in contours:
        p = c[:, 0, :].astype(np.float64)
        if len(p) < 4 * len(k):
            continue
        ps = np.stack([np.convolve(np.r_[p[-len(k):, j], p[:, j], p[:len(k), j]], g, "same")[len(k):-len(k)]
                       for j in range(2)], axis=1)
        mid = (p + np.roll(p, -1, axis=0)) / 2
        sel = (mid[:, 1] >= y0) & (mid[:, 1] <= y1) & (p[:, 0] > 0) & (p[:, 0] < W - 1) & (p[:, 1] > 0) \
            & (p[:, 1] < H - 1)
        raw += float(np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1)[sel].sum())
        smooth += float(np.linalg.norm(np.roll(ps, -1, axis=0) - ps, axis=1)[sel].sum())
        count += int(sel.sum())
    return (raw / smooth if smooth else float("nan")), count


def fringe(d: dict, rig, atlas, hair: dict) -> tuple[float, int]:
    """(the share of the forehead's pixels from the fitted camera left uncovered by the hair mesh and coloured as
    hair, the forehead's pixels) — see the module's docstring."""
    from headforge.backend.headmodel.parts import eye_height, visible_faces
    from headforge.backend.render.image import rgb_to_lab
    from headforge.backend.render.raster import interpolate, project, rasterize
    from headforge.backend.rig.texture_complete import head_axis

    model = d["model"]
    H, W = d["photo"].shape[:2]
    with_hair, without, cover = _render_pair(rig, atlas, hair, d["K"], d["w2c"], (W, H),
                                             d["rec"]["fit"]["portrait_expression_arkit"])
    posed = model.vertices(d["identity"], d["expression"])
    F = model.faces[visible_faces(model)]
    xy, z = project(posed, d["K"], d["w2c"])
    tid, bary, _ = rasterize(xy, z, F, H, W, cull_backfaces=True)
    on = tid >= 0
    P = interpolate(tid, bary, F, model.neutral)[on]
    eye_z = eye_height(model)
    axis_y = head_axis(model.neutral, eye_z)
    phi = np.degrees(np.arctan2(np.abs(P[:, 0]), -(P[:, 1] - axis_y)))
    fore = np.zeros((H, W), bool)
    fore[on] = (phi < 35) & (P[:, 2] > eye_z + 0.02)
    # the head's own skin there: the hair mesh's colour covers its hair; the texture's skin / hair colours
    tex = d["rec"].get("texture") or {}
    hair_rgb = np.array((tex.get("hair_rgb") or [0, 0, 0]), np.float64) * 255
    hair_px = with_hair[cover & ~fore]
    if len(hair_px) > 50:
        hair_rgb = np.median(hair_px, axis=0) * 255
    skin_rgb = np.array(tex.get("skin_albedo_rgb") or [0.8, 0.6, 0.5], np.float64) * 255
    lab = rgb_to_lab(without[fore] * 255)
    d_hair = np.linalg.norm(lab - rgb_to_lab(hair_rgb[None]), axis=1)
    d_skin = np.linalg.norm(lab - rgb_to_lab(skin_rgb[None]), axis=1)
    bare = (d_hair < d_skin) & ~cover[fore]
    return float(bare.mean()) if fore.any() else float("nan"), int(fore.sum())


# the key light of benchmarks/cycles_sheet.py (a sun at Euler XYZ (50°, 0°, −35°)): the direction its light travels
SUN = np.array([np.sin(np.radians(35)) * np.sin(np.radians(50)), np.cos(np.radians(35)) * np.sin(np.radians(50)),
                -np.cos(np.radians(50))])


def shadowed(points: np.ndarray, verts: np.ndarray, faces: np.ndarray, light: np.ndarray = SUN,
             px_m: float = 0.0002, eps_m: float = 0.0003) -> np.ndarray:
    """(n,) bool: which `points` (n, 3) the mesh (verts, faces; both sides) shades from a distant light travelling
    along `light` (3,): a shadow map (near-orthographic camera 20 m up the light, `px_m` a pixel), a point being
    in shadow where the mesh lies more than `eps_m` nearer the light."""
    from headforge.backend.render.raster import project, rasterize

    L = light / np.linalg.norm(light)
    c = (verts.min(axis=0) + verts.max(axis=0)) / 2
    up = np.array([0.0, 0.0, 1.0]) if abs(L[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(up, L)
    x /= np.linalg.norm(x)
    y = np.cross(L, x)
    R = np.stack([x, y, L])  # the camera looks along L: its +z axis is L
    dist = 20.0
    w2c = np.eye(4)
    w2c[:3, :3] = R
    w2c[:3, 3] = -R @ (c - dist * L)
    span = float(np.ptp(np.concatenate([verts, points]) @ np.stack([x, y]).T, axis=0).max()) + 0.02
    n = int(np.ceil(span / px_m))
    f = dist / px_m
    K = np.array([[f, 0, (n - 1) / 2], [0, f, (n - 1) / 2], [0, 0, 1.0]])
    xy, zz = project(verts, K, w2c)
    tid, _, zb = rasterize(xy, zz, faces, n, n, cull_backfaces=False)
    pxy, pz = project(points, K, w2c)
    xi = np.clip(np.round(pxy[:, 0]).astype(int), 0, n - 1)
    yi = np.clip(np.round(pxy[:, 1]).astype(int), 0, n - 1)
    return (tid[yi, xi] >= 0) & (zb[yi, xi] < pz - eps_m)


def edge_shadow(d: dict, rig, atlas, hair: dict, size: int = 512) -> tuple[float, int]:
    """edge_shadow_of on the job's rig at rest, from the contact sheet's front camera at `size` px."""
    from headforge.backend.rig.build import skin_vertices

    K, w2c = orbit_camera(rig, size, 0.0)
    F = np.concatenate([p.vertex_ids[p.faces] for p in rig.primitives if p.material == "skin"])
    return edge_shadow_of(d["model"], skin_vertices(rig, {}), F, hair, K, w2c, (size, size))


def edge_shadow_of(model, verts: np.ndarray, faces: np.ndarray, hair: dict, K: np.ndarray, w2c: np.ndarray,
                   size: tuple[int, int], band_m: float = 0.002) -> tuple[float, int]:
    """(the share of the skin's pixels just below the hair mesh's edge (within `band_m`, above the eyes and within
    40° of the face's midline) that the hair shades from cycles_sheet's key light (SUN), those pixels): the head
    `verts` (V, 3) at rest with its skin `faces`, the `hair` attachment, seen by (K, w2c) at `size` (W, H).
    The thin dark line along the shell's front edge in Cycles is this shadow, cast through the gap between the
    shell's rim and the skin (0: the rim meets the skin)."""
    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.render.raster import interpolate, project, rasterize
    from headforge.backend.rig.texture_complete import head_axis

    W, H = size
    xy, z = project(verts, K, w2c)
    tid, bary, hz = rasterize(xy, z, faces, H, W, cull_backfaces=True)
    axy, az = project(np.asarray(hair["verts"], np.float64), K, w2c)
    atid, _, azb = rasterize(axy, az, hair["faces"], H, W, cull_backfaces=False)
    cover = (atid >= 0) & (azb < hz)
    P = interpolate(tid, bary, faces, verts)
    eye_z = eye_height(model)
    phi = np.degrees(np.arctan2(np.abs(P[..., 0]), -(P[..., 1] - head_axis(model.neutral, eye_z))))
    skin = (tid >= 0) & ~cover & (P[..., 2] > eye_z) & (phi < 40)
    band_px = max(1, int(round(band_m * _px_per_m(K, w2c, np.array([0.0, 0.0, eye_z])))))
    below = np.zeros_like(cover)
    for k in range(1, band_px + 1):
        below[k:] |= cover[:-k]
    sel = skin & below
    if not sel.any():
        return float("nan"), 0
    dark = shadowed(P[sel].astype(np.float64), np.asarray(hair["verts"], np.float64), hair["faces"])
    return float(dark.mean()), int(sel.sum())


def forehead_band(d: dict, rig, atlas, hair: dict, size: int = 512, band_m: float = 0.006,
                  ref_m: tuple[float, float] = (0.008, 0.016)) -> tuple[float, int]:
    """(the skin just below the hair mesh's front edge over the forehead against the forehead's skin a little
    lower: their median luminances' ratio, the columns measured), in the head's albedo (the atlas, unlit) from the
    contact sheet's front camera at `size` px: in each pixel column within 35° of the face's midline, the skin
    within `band_m` (on the head, in height) below the first skin pixel under the hair, and the skin `ref_m` below
    it, both above the eyes and off the brows (texture.brow_region). 1.0: the forehead is as bright under the
    hair as lower down; the fringe's cast shadow, left in the albedo, makes it a grey band (< 1)."""
    band, ref = [], []
    for lum, dz in _forehead_columns(d, rig, atlas, hair, size, ref_m[1]):
        b, r = lum[dz < band_m], lum[(dz >= ref_m[0]) & (dz < ref_m[1])]
        if len(b) >= 2 and len(r) >= 2:
            band.append(b)
            ref.append(r)
    if not band:
        return float("nan"), 0
    return float(np.median(np.concatenate(band)) / np.median(np.concatenate(ref))), len(band)


def hairline_jag(d: dict, rig, atlas, hair: dict, size: int = 512, band_m: float = 0.004,
                 ref_m: tuple[float, float] = (0.008, 0.016)) -> tuple[float, float, int]:
    """(the robust spread (1.4826 MAD) over the columns of the skin's median luminance within `band_m` below the
    hair mesh's front edge over that `ref_m` below it, the same spread of the reference's own halves (the forehead's
    own column-to-column variation, for scale), the columns), forehead_band's columns: a band under the hair that
    turns light and dark from column to column (the cameraman's hairline, the photo's strands against his skin) is
    a spread well above the forehead's own."""
    ratios, own = [], []
    half = (ref_m[0] + ref_m[1]) / 2
    for lum, dz in _forehead_columns(d, rig, atlas, hair, size, ref_m[1]):
        b, r = lum[dz < band_m], lum[(dz >= ref_m[0]) & (dz < ref_m[1])]
        r0, r1 = lum[(dz >= ref_m[0]) & (dz < half)], lum[(dz >= half) & (dz < ref_m[1])]
        if len(b) >= 2 and len(r0) >= 2 and len(r1) >= 2:
            ratios.append(np.median(b) / max(np.median(r), 1e-6))
            own.append(np.median(r0) / max(np.median(r1), 1e-6))
    if len(ratios) < 10:
        return float("nan"), float("nan"), len(ratios)

    def spread(v):
        v = np.asarray(v)
        return 1.4826 * float(np.median(np.abs(v - np.median(v))))

    return spread(ratios), spread(own), len(ratios)


def forehead_profile(d: dict, rig, atlas, hair: dict, size: int = 512, step_m: float = 0.002,
                     bins: int = 12) -> tuple[np.ndarray, int]:
    """(the head's albedo luminance below the hair mesh's front edge over the forehead in `bins` steps of `step_m`
    (on the head, in height) from its edge, each the median over forehead_band's columns, over the median of the
    steps 16-24 mm down (nan where none), the columns): forehead_band's pixels, further down. A pale band under the
    hair is a step brighter than one lower down (the fringe's shadow lifted near the edge only, the darker band
    below it left: the journey's astronaut in Cycles)."""
    edges = np.arange(bins + 1) * step_m
    columns = _forehead_columns(d, rig, atlas, hair, size, float(edges[-1]))
    if not columns:
        return np.full(bins, np.nan), 0
    lum, dz = (np.concatenate(c) for c in zip(*columns))
    med = np.array([np.median(lum[(dz >= a) & (dz < b)]) if ((dz >= a) & (dz < b)).sum() >= 10 else np.nan
                    for a, b in zip(edges[:-1], edges[1:])])
    return med / np.nanmedian(med[(edges[:-1] >= 0.016 - 1e-9) & (edges[:-1] < 0.024 - 1e-9)]), len(columns)


def _forehead_columns(d: dict, rig, atlas, hair: dict, size: int, depth_m: float) -> list:
    """[(luminances (n,), their height (n,) m below the first skin under the hair mesh's edge)] per pixel column:
    the head's albedo (the atlas, unlit) from the contact sheet's front camera at `size` px, in each column within
    35° of the face's midline whose first skin under the hair follows it directly, the skin down to `depth_m`
    below the edge, above the eyes and off the brows (texture.brow_region)."""
    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.render.image import sample_bilinear
    from headforge.backend.render.raster import interpolate, project, rasterize
    from headforge.backend.rig.build import skin_vertices
    from headforge.backend.rig.texture import brow_region
    from headforge.backend.rig.texture_complete import head_axis

    model = d["model"]
    K, w2c = orbit_camera(rig, size, 0.0)
    _, albedo, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
    verts = skin_vertices(rig, {})
    prim = next(p for p in rig.primitives if p.material == "skin")
    xy, z = project(verts[prim.vertex_ids], K, w2c)
    tid, bary, _ = rasterize(xy, z, prim.faces, size, size, cull_backfaces=True)
    attr = interpolate(tid, bary, prim.faces, np.concatenate([verts[prim.vertex_ids], prim.uv], axis=1))
    P, uv = attr[..., :3], attr[..., 3:]
    brows = brow_region(model, 256)
    on_brow = np.zeros((size, size), bool)
    if brows is not None:
        on = tid >= 0
        on_brow[on] = sample_bilinear(brows[..., None], uv[on] * [512, 256] - 0.5)[:, 0] > 0.02
    eye_z = eye_height(model)
    phi = np.degrees(np.arctan2(np.abs(P[..., 0]), -(P[..., 1] - head_axis(model.neutral, eye_z))))
    skin = (tid >= 0) & ~cover & (phi < 35) & (P[..., 2] > eye_z) & ~on_brow
    lum = albedo @ LUM
    out = []
    for x in range(size):
        hair_rows = np.flatnonzero(cover[:, x])
        if not len(hair_rows):
            continue
        below = np.flatnonzero(skin[:, x] & (np.arange(size) > hair_rows[0]))
        if not len(below) or cover[hair_rows[0]:below[0], x].sum() < below[0] - hair_rows[0] - 1:
            continue  # the first skin under the hair must follow it directly (not past an uncovered gap)
        dz = P[below[0], x, 2] - P[below, x, 2]
        keep = dz < depth_m
        out.append((lum[below[keep], x], dz[keep]))
    return out


def ear_vertices(model, identity: np.ndarray) -> np.ndarray:
    """(V,) bool: the ears of the person's head at rest: skin vertices beside the head (60°–120° from the face's
    midline round its vertical axis, from 6 cm below the eyes to 4 cm above) standing more than
    hair_mesh.EAR_PROUD_M out from the nearest surface at their angle (5°) and height (hair_mesh.EAR_BIN_M)."""
    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.rig.hair_mesh import EAR_BIN_M, EAR_PROUD_M, FALL_BINS
    from headforge.backend.rig.texture import skin_faces
    from headforge.backend.rig.texture_complete import head_axis

    rest = model.vertices(identity=identity)
    eye_z = eye_height(model)
    axis_y = head_axis(model.neutral, eye_z)
    v = np.unique(model.faces[skin_faces(model)])
    d = rest[v, :2] - [0.0, axis_y]
    ang = np.arctan2(d[:, 0], -d[:, 1])
    th = np.floor((ang + np.pi) / (2 * np.pi) * FALL_BINS).astype(np.int64)
    zb = np.floor(rest[v, 2] / EAR_BIN_M).astype(np.int64)
    rho = np.hypot(d[:, 0], d[:, 1])
    _, inv = np.unique(th * 100000 + (zb - zb.min()), return_inverse=True)
    nearest = np.full(inv.max() + 1, np.inf)
    np.minimum.at(nearest, inv, rho)
    phi = np.degrees(np.abs(ang))
    out = np.zeros(model.n_vertices, bool)
    out[v] = ((rho > nearest[inv] + EAR_PROUD_M) & (phi > 60) & (phi < 120) & (rest[v, 2] > eye_z - 0.06)
              & (rest[v, 2] < eye_z + 0.04))
    return out


def ears_through(d: dict, rig, atlas, hair: dict) -> tuple[float, int, int]:
    """ears_through_of from the fitted camera, the rig in the photo's expression."""
    from headforge.backend.rig.build import skin_vertices
    from headforge.backend.rig.photo_parse import HAIR

    verts = skin_vertices(rig, {}, shape_keys=d["rec"]["fit"]["portrait_expression_arkit"])
    F = np.concatenate([p.vertex_ids[p.faces] for p in rig.primitives])
    return ears_through_of(ear_vertices(d["model"], d["identity"]), verts, F, hair, d["K"], d["w2c"],
                           d["labels"] == HAIR)


def ears_through_of(ear: np.ndarray, verts: np.ndarray, faces: np.ndarray, hair: dict, K: np.ndarray,
                    w2c: np.ndarray, hair_px: np.ndarray) -> tuple[float, int, int]:
    """(the share of the ears' pixels (`ear` (V,) bool, ear_vertices; the head `verts` (V, 3) with `faces`, seen by
    (K, w2c)) that still show with the `hair` mesh where the photo shows hair (`hair_px` (H, W) bool), those pixels,
    the ears' pixels without the hair mesh): an ear seen through a bob's inner edge or below its end (0: the hair
    mesh covers the ears wherever the photo's hair does)."""
    from headforge.backend.render.raster import project, rasterize

    H, W = hair_px.shape
    on_ear = ear[faces].sum(axis=1) >= 2
    xy, z = project(verts, K, w2c)
    tid, _, hz = rasterize(xy, z, faces, H, W, cull_backfaces=True)
    axy, az = project(np.asarray(hair["verts"], np.float64), K, w2c)
    atid, _, azb = rasterize(axy, az, hair["faces"], H, W, cull_backfaces=False)
    ear_px = (tid >= 0) & on_ear[np.maximum(tid, 0)]
    through = ear_px & ~((atid >= 0) & (azb < hz)) & hair_px
    return float(through.sum() / max(int(ear_px.sum()), 1)), int(through.sum()), int(ear_px.sum())


def shell_dihedrals(hair: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the angle in degrees between the normals of each pair of the `hair` mesh's triangles sharing an edge (E,),
    the edge's midpoint (E, 3), whether it lies 3 rings or more from the mesh's rim (E,) bool); vertices split along
    the UV seams welded by position first."""
    V = np.asarray(hair["verts"], np.float64)
    _, inv = np.unique(np.round(V / 1e-7).astype(np.int64), axis=0, return_inverse=True)
    inv = inv.ravel()
    F = inv[hair["faces"]]
    P = np.zeros((inv.max() + 1, 3))
    P[inv] = V
    n = np.cross(P[F[:, 1]] - P[F[:, 0]], P[F[:, 2]] - P[F[:, 0]])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-15)
    e = np.sort(np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]]), axis=1)
    fi = np.tile(np.arange(len(F)), 3)
    order = np.lexsort((e[:, 1], e[:, 0]))
    e, fi = e[order], fi[order]
    pair = (e[1:] == e[:-1]).all(axis=1)
    shared = e[:-1][pair]
    ang = np.degrees(np.arccos(np.clip((n[fi[:-1][pair]] * n[fi[1:][pair]]).sum(axis=1), -1.0, 1.0)))
    # the rim: vertices on edges of one triangle, grown by 3 rings
    u, c = np.unique(e, axis=0, return_counts=True)
    near = np.zeros(len(P), bool)
    near[u[c == 1].ravel()] = True
    for _ in range(3):
        near[u[near[u].any(axis=1)].ravel()] = True
    return ang, (P[shared[:, 0]] + P[shared[:, 1]]) / 2, ~near[shared].any(axis=1)


def crown_folds(d: dict, rig, atlas, hair: dict, above_m: float = 0.02, fold_deg: float = 30.0) -> tuple:
    """(the 99.9th percentile of the hair mesh's dihedral angles over its top (more than `above_m` above the eyes,
    3 rings or more from its rim), the share of those edges folded past `fold_deg`, the edges): a fold or ridge
    where the cap over the crown meets the fall behind it (seen from above in Cycles) is a spike of these."""
    from headforge.backend.headmodel.parts import eye_height

    ang, mid, inner = shell_dihedrals(hair)
    top = inner & (mid[:, 2] > eye_height(d["model"]) + above_m)
    if not top.any():
        return float("nan"), float("nan"), 0
    return float(np.percentile(ang[top], 99.9)), float((ang[top] > fold_deg).mean()), int(top.sum())


def crown_tone(d: dict, rig, atlas, hair: dict, size: int = 384) -> tuple[float, float, float]:
    """From above and behind (the contact sheet's lens, 60° up, yaw 180°, `size` px; the hair's albedo, unlit):
    (the median luminance of the hair's top (its surface within 30° of horizontal) over that of its back (within
    30° of vertical, behind the head's axis), the hair's high-pass spread (Gaussian 3 px) over its top against
    its back's, the share of the head's pixels under the hair where the head shows through it): a lighter, blurred
    patch on the crown is > 1 and < 1; the scalp through the shell (a shell sunk into the head) > 0."""
    from headforge.backend.cameras import orbit_c2w_opencv
    from headforge.backend.render.raster import interpolate, project, rasterize, vertex_normals
    from headforge.backend.rig.build import skin_vertices

    K, _ = orbit_camera(rig, size, 0.0)
    b = rig.basis[rig.basis[:, 2] > rig.joints[2][2] - 0.02]
    T = np.eye(4)
    T[:3, 3] = -(b.min(axis=0) + b.max(axis=0)) / 2
    w2c = np.linalg.inv(orbit_c2w_opencv(60.0, 180.0, radius=0.75)) @ T
    img, _, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
    V = np.asarray(hair["verts"], np.float64)
    xy, z = project(V, K, w2c)
    tid, bary, zh = rasterize(xy, z, hair["faces"], size, size, cull_backfaces=False)
    verts = skin_vertices(rig, {})
    F = np.concatenate([p.vertex_ids[p.faces] for p in rig.primitives if p.material == "skin"])
    hxy, hz = project(verts, K, w2c)
    htid, _, zb = rasterize(hxy, hz, F, size, size, cull_backfaces=True)
    under = (tid >= 0) & (htid >= 0)
    through = float((zb[under] < zh[under]).mean()) if under.any() else float("nan")
    attr = interpolate(tid, bary, hair["faces"], np.concatenate([V, vertex_normals(V, hair["faces"])], axis=1))
    nz = np.abs(attr[..., 5]) / np.maximum(np.linalg.norm(attr[..., 3:], axis=-1), 1e-12)
    lum = img @ LUM
    top = cover & (tid >= 0) & (nz > np.cos(np.radians(30)))
    back = cover & (tid >= 0) & (nz < np.sin(np.radians(30))) & (attr[..., 1] > float(np.median(V[:, 1])))
    if top.sum() < 50 or back.sum() < 50:
        return float("nan"), float("nan"), through
    hp = lum - cv2.GaussianBlur(lum * cover, (0, 0), 3.0) / np.maximum(cv2.GaussianBlur(cover * 1.0, (0, 0), 3.0),
                                                                        1e-6)
    inner = cv2.erode(cover.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)

    def spread(m):
        v = hp[m & inner]
        return 1.4826 * float(np.median(np.abs(v - np.median(v))))

    return (float(np.median(lum[top]) / max(float(np.median(lum[back])), 1e-6)),
            spread(top) / max(spread(back), 1e-9), through)


SPOT_HUE_DEG = 12.0  # spots: a hair pixel whose hue (CIELAB) is this far from the hair's median hue in the view ...
SPOT_PALE_L = 10.0  # ... or whose lightness is this much above the hair's median
SPOT_MIN_CHROMA = 15.0  # hue is read only where the chroma (CIELAB C*) is at least this (8 left dark brown in)


def hair_spots(d: dict, rig, atlas, hair: dict, size: int = 384) -> tuple[float, float, float, float, int]:
    """(in ¾ (the contact sheet's camera at yaw 35°, `size` px): the share of the hair mesh's pixels (the hair's
    albedo, unlit; its outline's 3 px left out) whose hue is more than SPOT_HUE_DEG off the hair's median hue
    (CIELAB; greenish), the share more than SPOT_PALE_L lighter than its median (pale); the same two from above (60°
    up, in front); the pixels): the pale, slightly greenish spots on group face 0's hair top and temple lock in
    Cycles. Hue counts only on pixels of chroma SPOT_MIN_CHROMA or more, and is NaN for hair whose median chroma is
    below it (dark and grey hair, whose hue is noise)."""
    from headforge.backend.cameras import orbit_c2w_opencv
    from headforge.backend.render.image import rgb_to_lab

    K, w2c34 = orbit_camera(rig, size, 35.0)
    b = rig.basis[rig.basis[:, 2] > rig.joints[2][2] - 0.02]
    T = np.eye(4)
    T[:3, 3] = -(b.min(axis=0) + b.max(axis=0)) / 2
    above = np.linalg.inv(orbit_c2w_opencv(60.0, 0.0, radius=0.75)) @ T
    out, n = [], 0
    for w2c in (w2c34, above):
        img, _, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
        inner = cv2.erode(cover.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
        if inner.sum() < 50:
            out += [float("nan")] * 2
            continue
        lab = rgb_to_lab(np.clip(img[inner] * (255.0 if img.max() <= 1.5 else 1.0), 0, 255))
        hue = np.degrees(np.arctan2(lab[:, 2], lab[:, 1]))
        chroma = np.hypot(lab[:, 1], lab[:, 2])
        coloured = chroma >= SPOT_MIN_CHROMA
        off = coloured & (np.abs((hue - np.median(hue[coloured]) + 180) % 360 - 180) > SPOT_HUE_DEG) \
            if coloured.any() else coloured
        hue_share = float(off.mean()) if np.median(chroma) >= SPOT_MIN_CHROMA else float("nan")
        out += [hue_share, float((lab[:, 0] > np.median(lab[:, 0]) + SPOT_PALE_L).mean())]
        n += int(inner.sum())
    return (*out, n)


def front_colour(d: dict, rig, atlas, hair: dict) -> float:
    """complete_head.hair_front_error's median ΔE76 (the hair mesh against the photo's hair it covers, from the
    fitted camera): the look from the front must not get worse."""
    from headforge.backend.rig.photo_parse import HAIR

    return bench.hair_front_error(rig, atlas, [hair], d["photo"], d["labels"] == HAIR, d["K"], d["w2c"],
                                     d["rec"]["fit"]["portrait_expression_arkit"])[0]


def sheet_row(d: dict, rig, atlas, hair: dict, size: int = 256) -> np.ndarray:
    """(size, 5·size, 3) uint8: yaw 0, 35, 90, 180 with the hair, and the photo's head from the fitted camera."""
    from headforge.backend.rig.render import render_rig

    tiles = []
    for deg in (0, 35, 90, 180):
        K, w2c = orbit_camera(rig, size, deg)
        img, _ = render_rig(rig, atlas, K, w2c, (size, size), background=0.25, attachments=[hair])
        tiles.append(img)
    H, W = d["photo"].shape[:2]
    img, _ = render_rig(rig, atlas, d["K"], d["w2c"], (W, H), background=0.25, attachments=[hair],
                        shape_keys=d["rec"]["fit"]["portrait_expression_arkit"])
    pts = d["pts"]
    c = pts[:, :2].mean(axis=0)
    r = 0.85 * float(np.ptp(pts[:, 1]))
    x0, y0 = int(max(c[0] - r, 0)), int(max(c[1] - r, 0))
    crop = img[y0:int(min(c[1] + r, H)), x0:int(min(c[0] + r, W))]
    tiles.append(cv2.resize(crop.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA))
    return (np.concatenate(tiles, axis=1) * 255).round().astype(np.uint8)


def temple_hair(d: dict, rig, atlas, hair: dict, size: int = 384) -> tuple[float, int]:
    """(the share of the temples' uncovered skin coloured as hair, the temples' pixels), over yaw ±35° and ±90°:
    see the module's docstring."""
    from headforge.backend.headmodel.parts import eye_height, visible_faces
    from headforge.backend.render.image import rgb_to_lab
    from headforge.backend.render.raster import interpolate, project, rasterize
    from headforge.backend.rig.texture_complete import head_axis

    model = d["model"]
    verts = model.vertices(identity=d["identity"])
    F = model.faces[visible_faces(model)]
    eye_z = eye_height(model)
    axis_y = head_axis(model.neutral, eye_z)
    tex = d["rec"].get("texture") or {}
    skin_lab = rgb_to_lab(np.array(tex.get("skin_albedo_rgb") or [0.8, 0.6, 0.5], np.float64)[None] * 255)
    hair_lab, bare, total = None, 0, 0
    for deg in (35, 90, -35, -90):
        K, w2c = orbit_camera(rig, size, deg)
        with_hair, without, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
        if hair_lab is None:
            hair_lab = rgb_to_lab(np.median(with_hair[cover], axis=0)[None] * 255)
        xy, z = project(verts, K, w2c)
        tid, bary, _ = rasterize(xy, z, F, size, size, cull_backfaces=True)
        on = tid >= 0
        P = interpolate(tid, bary, F, model.neutral)[on]
        phi = np.degrees(np.arctan2(np.abs(P[:, 0]), -(P[:, 1] - axis_y)))
        temple = np.zeros((size, size), bool)
        temple[on] = (phi > 50) & (phi < 100) & (P[:, 2] > eye_z - 0.03) & (P[:, 2] < eye_z + 0.06)
        temple &= ~cover
        lab = rgb_to_lab(without[temple] * 255)
        bare += int((np.linalg.norm(lab - hair_lab, axis=1) < np.linalg.norm(lab - skin_lab, axis=1)).sum())
        total += int(temple.sum())
    return bare / max(total, 1), total


def nape_fade(d: dict, rig, atlas, hair: dict, size: int = 384) -> tuple[np.ndarray, float, int]:
    """(the neck's albedo below the hair mesh's lower edge from behind per 1 mm down to 16 mm, as the share of the
    way from the hair's luminance to the neck's 12-16 mm below (1.0: the neck's own tone), the depth in mm where it
    first reaches 0.9, the columns): see the module's docstring."""
    from headforge.backend.headmodel.parts import eye_height

    model = d["model"]
    K, w2c = orbit_camera(rig, size, 180.0)
    with_hair, without, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
    head = without.sum(axis=-1) > 1e-4
    rest = model.vertices(identity=d["identity"])
    nape = rest[np.argmax(rest[:, 1] * (np.abs(rest[:, 2] - eye_height(model) + 0.08) < 0.01))]
    mm = _px_per_m(K, w2c, nape) / 1000
    cols = np.flatnonzero(cover.any(axis=0))
    if len(cols) < 10:
        return np.full(16, np.nan), float("nan"), 0
    lo, hi = np.percentile(cols, [30, 70])  # the back's middle, where the hair ends over the neck
    lum, hair_l, profiles = without @ LUM, float(np.median(with_hair[cover] @ LUM)), []
    for x in cols[(cols >= lo) & (cols <= hi)]:
        e = int(np.flatnonzero(cover[:, x]).max())
        rows = e + 1 + np.round(np.arange(17) * mm).astype(int)
        if rows[-1] >= size or not head[rows, x].all() or cover[rows, x].any():
            continue
        profiles.append(lum[rows, x])
    if len(profiles) < 5:
        return np.full(16, np.nan), float("nan"), len(profiles)
    p = np.median(profiles, axis=0)
    neck = float(np.median(p[12:]))
    share = (p[:16] - hair_l) / max(neck - hair_l, 1e-6)
    reach = np.flatnonzero(share >= 0.9)
    return share, float(reach[0]) if len(reach) else 16.0, len(profiles)


def nape_band(d: dict, rig, atlas, hair: dict, size: int = 384, depth_m: float = 0.03) -> tuple[float, int]:
    """(the share of the head's uncovered pixels within `depth_m` below the hair mesh's lower edge from behind, over
    the middle half of its columns, whose albedo (no hair, unlit) is nearer the hair's colour than the skin's in
    CIELAB, those pixels): the texture's hair painted down the nape showing below a bob's hem (a hem raised toward
    the nape over a texture whose hair still reaches the sides' length)."""
    from headforge.backend.render.image import rgb_to_lab

    K, w2c = orbit_camera(rig, size, 180.0)
    with_hair, without, cover = _render_pair(rig, atlas, hair, K, w2c, (size, size))
    head = without.sum(axis=-1) > 1e-4
    rest = d["model"].vertices(identity=d["identity"])
    mm = _px_per_m(K, w2c, rest[np.argmax(rest[:, 1])]) / 1000
    cols = np.flatnonzero(cover.any(axis=0))
    if len(cols) < 10:
        return float("nan"), 0
    lo, hi = np.percentile(cols, [25, 75])
    band = np.zeros((size, size), bool)
    for x in cols[(cols >= lo) & (cols <= hi)]:
        e = int(np.flatnonzero(cover[:, x]).max())
        band[e + 1:e + 1 + int(round(1000 * depth_m * mm)), x] = True
    band &= head & ~cover
    if not band.any():
        return 0.0, 0
    tex = d["rec"].get("texture") or {}
    skin_lab = rgb_to_lab(np.array(tex.get("skin_albedo_rgb") or [0.8, 0.6, 0.5], np.float64)[None] * 255)
    hair_lab = rgb_to_lab(np.median(with_hair[cover], axis=0)[None] * 255)
    lab = rgb_to_lab(without[band] * 255)
    near_hair = np.linalg.norm(lab - hair_lab, axis=1) < np.linalg.norm(lab - skin_lab, axis=1)
    return float(near_hair.mean()), int(band.sum())


def side_folds(d: dict, rig, atlas, hair: dict, fold_deg: float = 90.0) -> tuple[int, float]:
    """(the hair mesh's inner edges beside the head (|x| > 5 cm) whose triangles meet past `fold_deg`, their share
    of the inner edges there): a shell folded over itself (shell_dihedrals)."""
    ang, mid, inner = shell_dihedrals(hair)
    beside = inner & (np.abs(mid[:, 0]) > 0.05)
    return int((ang[beside] > fold_deg).sum()), float((ang[beside] > fold_deg).mean()) if beside.any() else 0.0


def back_shape(d: dict, rig, atlas, hair: dict, size: int = 384) -> tuple[float, float, float]:
    """back_shape_of from behind (the contact sheet's camera, yaw 180°, `size` px)."""
    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.rig.texture_complete import head_axis

    model = d["model"]
    eye_z = eye_height(model)
    K, w2c = orbit_camera(rig, size, 180.0)
    return back_shape_of(hair, K, w2c, np.array([0.0, head_axis(model.neutral, eye_z), eye_z]), size)


def back_shape_of(hair: dict, K: np.ndarray, w2c: np.ndarray, mid: np.ndarray, size: int) -> tuple[float, float, float]:
    """The hair mesh's silhouette from behind ((K, w2c), `size` px square; `mid` (3,) a point on the head's midplane
    x = 0, at the eyes' height), in mm at `mid`: (the median over its rows of the difference between its reach left
    and right of the midline; the mean over its columns within 80 % of its narrower half of the difference between
    its top's height at mirrored columns; the deepest dent of its outline beside the head: the convex hull's
    defects whose deepest point lies in the outer half of either side). A bob seen from behind is near symmetric
    and convex: a lopsided top or a shorter side raise the first two, a step or notch in its side the third."""
    from headforge.backend.render.raster import project, rasterize

    xy, z = project(np.asarray(hair["verts"], np.float64), K, w2c)
    tid, _, _ = rasterize(xy, z, hair["faces"], size, size, cull_backfaces=False)
    on = tid >= 0
    mm = 1000.0 / _px_per_m(K, w2c, mid)
    mx = float(project(mid[None], K, w2c)[0][0, 0])
    rows = np.flatnonzero(on.any(axis=1))
    if len(rows) < 10:
        return float("nan"), float("nan"), float("nan")
    left = np.array([mx - np.flatnonzero(on[r]).min() for r in rows])
    right = np.array([np.flatnonzero(on[r]).max() - mx for r in rows])
    both = (left > 0) & (right > 0)
    side = float(np.median(np.abs(left - right)[both])) * mm
    reach = int(0.8 * min(left.max(), right.max()))
    tops = []
    for dx in range(reach):
        cols = [int(round(mx - dx)), int(round(mx + dx))]
        if min(cols) < 0 or max(cols) >= size or not on[:, cols[0]].any() or not on[:, cols[1]].any():
            continue
        tops.append(abs(int(np.argmax(on[:, cols[0]])) - int(np.argmax(on[:, cols[1]]))))
    top = float(np.mean(tops)) * mm if tops else float("nan")
    n, comp = cv2.connectedComponents(on.astype(np.uint8))
    big = comp == (1 + int(np.argmax(np.bincount(comp[comp > 0])[1:])))
    contour = max(cv2.findContours(big.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0], key=len)
    hull = cv2.convexHull(contour, returnPoints=False)
    dent = 0.0
    half = max(left.max(), right.max())
    defects = cv2.convexityDefects(contour, np.sort(hull, axis=0)) if len(hull) > 3 else None
    for s0, e0, far, depth in ([] if defects is None else defects[:, 0]):
        if abs(contour[far, 0, 0] - mx) > 0.5 * half:
            dent = max(dent, depth / 256.0)
    return side, top, dent * mm


def bob_shape(d: dict, rig, atlas, hair: dict, size: int = 384) -> tuple:
    """bob_shape_of with the job's head and the contact sheet's camera from behind (yaw 180°, `size` px)."""
    from headforge.backend.headmodel.parts import eye_height, visible_faces
    from headforge.backend.rig.texture_complete import head_axis

    model = d["model"]
    eye_z = eye_height(model)
    mid = np.array([0.0, head_axis(model.neutral, eye_z), eye_z])
    return bob_shape_of(hair, model.vertices(identity=d["identity"]), model.faces[visible_faces(model)],
                        orbit_camera(rig, size, 180.0), mid, size)


def bob_shape_of(hair: dict, head: np.ndarray, head_faces: np.ndarray, back_cam: tuple, mid: np.ndarray,
                 size: int) -> tuple[float, float, float, float, float, float]:
    """How a hanging bob rounds (the hair mesh against the head `head` (V, 3), `head_faces`; `mid` (3,): the head's
    vertical axis at the eyes' height, x = 0 its midplane, +y behind):
    - from behind (`back_cam` (K, w2c), `size` px square): the share of the bounding box of the hair's pixels in
      front of the head left empty in its four corner squares (a quarter of its width on a side), mean of the top
      two and of the bottom two (a slab with square corners 0, a quarter disc in each 0.21);
    - in profile, on the midplane (|x| < 1 cm), how far the hair stands behind the head, mm, at the occiput's
      height (the head's furthest back) and 0-10 mm above the hair's lowest point there (the nape): a box whose back
      is a vertical plane stands far off the nape, a bob following the skull about as far as at the occiput;
    - the hem: its lowest point behind (160-180° round the head's axis from the face) above its lowest at the sides
      (80-100°), mm (0: ruler-straight round the back; > 0 shorter at the nape), and how far it curls in at the
      sides (the hair's radius from the axis at its lowest 5 mm against the greatest within 5 cm above, mm).
    → (corners top, corners bottom, occiput gap, nape gap, hem rise, ends' curl)."""
    from headforge.backend.render.raster import project, rasterize

    verts = np.asarray(hair["verts"], np.float64)
    K, w2c = back_cam
    hxy, hz = project(head, K, w2c)
    htid, _, hzb = rasterize(hxy, hz, head_faces, size, size, cull_backfaces=True)
    xy, z = project(verts, K, w2c)
    tid, _, zb = rasterize(xy, z, hair["faces"], size, size, cull_backfaces=False)
    on = (tid >= 0) & ((htid < 0) | (zb < hzb))
    ys, xs = np.nonzero(on)
    if len(ys) < 100:
        return (float("nan"),) * 6
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    c = max(2, int(round(0.25 * (x1 - x0))))
    empty = [1.0 - on[a:a + c, b:b + c].mean() for a in (y0, y1 - c) for b in (x0, x1 - c)]
    # in profile, on the midplane
    hb = head[(np.abs(head[:, 0]) < 0.01) & (head[:, 1] > mid[1])]
    sb = verts[(np.abs(verts[:, 0]) < 0.01) & (verts[:, 1] > mid[1])]

    def gap(zq, band=0.004):
        h, s_ = hb[np.abs(hb[:, 2] - zq) < band], sb[np.abs(sb[:, 2] - zq) < band]
        return 1000.0 * float(s_[:, 1].max() - h[:, 1].max()) if len(h) and len(s_) else float("nan")

    skull = hb[hb[:, 2] > mid[2] - 0.05]  # not the neck and shoulders
    occ = gap(float(skull[np.argmax(skull[:, 1]), 2])) if len(skull) else float("nan")
    nape = gap(float(sb[:, 2].min()) + 0.005, 0.0055) if len(sb) else float("nan")
    # the hem round the head
    e = np.sort(np.concatenate([hair["faces"][:, [0, 1]], hair["faces"][:, [1, 2]], hair["faces"][:, [2, 0]]]), axis=1)
    uniq, count = np.unique(e, axis=0, return_counts=True)
    rim = np.unique(uniq[count == 1])
    d = verts[:, :2] - mid[:2]
    phi = np.degrees(np.abs(np.arctan2(d[:, 0], -d[:, 1])))
    rho = np.hypot(d[:, 0], d[:, 1])
    low = rim[verts[rim, 2] < mid[2]]
    back, sides = low[phi[low] > 160], low[(phi[low] > 80) & (phi[low] < 100)]
    rise = 1000.0 * float(verts[back, 2].min() - verts[sides, 2].min()) if len(back) and len(sides) else float("nan")
    curls = []
    for sgn in (1.0, -1.0):
        at = (phi > 80) & (phi < 100) & (np.sign(verts[:, 0]) == sgn)
        if not at.any():
            continue
        zl = verts[at, 2].min()
        ends = at & (verts[:, 2] < zl + 0.005)
        above = at & (verts[:, 2] > zl + 0.005) & (verts[:, 2] < zl + 0.05)
        if ends.any() and above.any():
            curls.append(1000.0 * float(rho[above].max() - rho[ends].mean()))
    return (float(np.mean(empty[:2])), float(np.mean(empty[2:])), occ, nape, rise,
            float(np.mean(curls)) if curls else float("nan"))


def temple_peak(d: dict, rig, atlas, hair: dict) -> float:
    """temple_peak_of with the job's head."""
    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.rig.texture_complete import head_axis

    eye_z = eye_height(d["model"])
    return temple_peak_of(hair, head_axis(d["model"].neutral, eye_z), eye_z)


def temple_peak_of(hair: dict, axis_y: float, eye_z: float, deg=(30.0, 85.0), step: float = 2.5) -> float:
    """The hair mesh's front edge at the temples as a peak (mm): per `step`° of angle round the head's vertical axis
    (x = 0, y = `axis_y`) from the face's midline over `deg` on each side, the lowest point of the mesh; the most
    any of them stands above the lower of the lowest on either side of it (0 where the edge only falls going round
    toward the ears, or rises to a rounded recession and stays). Skin poking up into the hair at a corner of the
    hairline as a sharp inverted V between the forehead's hairline and the hair coming down in front of the ear
    (group face 1) is such a peak."""
    v = np.asarray(hair["verts"], np.float64)
    signed = np.degrees(np.arctan2(v[:, 0], -(v[:, 1] - axis_y)))
    edges = np.arange(deg[0], deg[1] + 1e-6, step)
    worst = 0.0
    for sgn in (1.0, -1.0):
        a = sgn * signed
        low = np.array([v[(a >= e) & (a < e + step), 2].min() if ((a >= e) & (a < e + step)).any() else np.nan
                        for e in edges[:-1]])
        for i in range(1, len(low) - 1):
            if np.isfinite(low[i]) and np.isfinite(low[:i]).any() and np.isfinite(low[i + 1:]).any():
                worst = max(worst, low[i] - max(np.nanmin(low[:i]), np.nanmin(low[i + 1:])))
    return 1000.0 * worst


def crown_edge_width(img: np.ndarray, step: float = 0.25) -> tuple[float, float, int]:
    """(median and 90th percentile of the 10-90 % rise in px over the rays, rays measured) of a head's outline over
    its top against a flat background, in an image (H, W, 3) rendered from behind. The head: pixels whose colour is
    more than 20 levels from the background's (the image's border); from the centroid of those in the top 35 % of
    the image's height (the dome), rays every 2.5° within ±70° of up; along each the colour's distance from the
    background (smoothed over 1.25 px) falling, past the outline (its last fall through half the dome's median),
    from its level 3-8 px inside to nothing (made monotone outward): where it passes 90 % and 10 % of that level.
    Rays that do not start inside or end on the background are skipped."""
    rgb = np.asarray(img, np.float32)[..., :3]
    H, W = rgb.shape[:2]
    bg = np.median(np.concatenate([rgb[:4].reshape(-1, 3), rgb[:, :4].reshape(-1, 3), rgb[:, -4:].reshape(-1, 3)]),
                   axis=0)
    dist = np.linalg.norm(rgb - bg, axis=-1)
    head = dist > 20.0
    rows = np.nonzero(head.any(axis=1))[0]
    if not len(rows):
        return float("nan"), float("nan"), 0
    dome = head.copy()
    dome[rows[0] + int(0.35 * H):] = False
    ys, xs = np.nonzero(dome)
    cy, cx, inside = float(ys.mean()), float(xs.mean()), float(np.median(dist[dome]))
    t = np.arange(0, H, step, dtype=np.float32)
    widths = []
    for deg in np.arange(-70.0, 70.1, 2.5):
        a = np.radians(deg)
        px, py = cx + t * np.sin(a), cy - t * np.cos(a)
        ok = (px >= 0) & (px < W - 1) & (py >= 0) & (py < H - 1)
        prof = cv2.remap(dist, px[ok][None], py[ok][None], cv2.INTER_LINEAR)[0]
        prof = np.convolve(prof, np.ones(5) / 5, mode="valid")
        if len(prof) < 2 or prof[0] < 0.5 * inside or prof[-1] > 0.1 * inside:
            continue
        # the outline: the last fall through half the dome's contrast; the level just inside it (3-8 px in)
        half = len(prof) - 1 - int(np.argmax(prof[::-1] >= 0.5 * inside))
        near = prof[max(half - int(8 / step), 0):max(half - int(3 / step), 1)]
        f = 1.0 - prof[max(half - int(8 / step), 0):] / max(float(np.median(near)), 1e-6)
        f = np.maximum.accumulate(f)
        if f[0] > 0.1 or f[-1] < 0.9:
            continue
        widths.append(step * (np.argmax(f >= 0.9) - np.argmax(f >= 0.1)))
    if not widths:
        return float("nan"), float("nan"), 0
    return float(np.median(widths)), float(np.percentile(widths, 90)), len(widths)


def render_back(job: Path, extensions: dict | None, size: int = 224, samples: int = 12) -> np.ndarray:
    """The job's rigged head from behind (benchmarks/cycles_sheet.py's back tile) with the hair material's glTF
    extensions replaced by `extensions` ({}: the glTF defaults), in a fresh Python (bpy first, cycles_sheet's
    reason). → (size, size, 3) uint8."""
    import subprocess
    import tempfile

    import pygltflib
    from PIL import Image

    from headforge.backend.rig.gltf import add_material_extensions

    with tempfile.TemporaryDirectory(prefix="hf-crown-") as tmp:
        tmp_job = Path(tmp) / job.name
        (tmp_job / "rig").mkdir(parents=True)
        gl = pygltflib.GLTF2().load(str(job / "rig" / "head_rigged.glb"))
        for mat in gl.materials:
            if mat.name == "hair":
                mat.extensions = {}
        add_material_extensions(gl, {"hair": extensions})
        gl.save_binary(str(tmp_job / "rig" / "head_rigged.glb"))
        out = Path(tmp) / "back.png"
        code = ("import bpy, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import cycles_sheet as cs;"
                " cs.TILES = (('back', 180.0, None),); cs.render_sheet(Path(sys.argv[2]), Path(sys.argv[3]),"
                " int(sys.argv[4]), int(sys.argv[5]))")
        subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent), str(tmp_job), str(out),
                        str(size), str(samples)], check=True, capture_output=True)
        return np.asarray(Image.open(out).convert("RGB"))


def crown_edge(job: Path) -> tuple[tuple, tuple]:
    """(crown_edge_width from behind with the hair's material now, with the glTF's default specular)."""
    from headforge.backend.rig.hair_mesh import hair_material_extensions

    return crown_edge_width(render_back(job, hair_material_extensions())), crown_edge_width(render_back(job, {}))


MEASURES = ("streaks", "ragged", "fringe", "colour", "iou", "edge_shadow", "band", "profile", "ears", "crown",
            "crown_tone", "temple", "jag", "front_edge", "crown_edge", "nape", "back", "side_folds",
            "spots", "bob", "temple_peak", "nape_band", "front_step")


def measure(job: Path, sheet_dir: Path | None = None, which=MEASURES) -> dict:
    d = load_job(job)
    hair = build_hair(d)
    if hair is None:
        return {"hair": False}
    rig, atlas, _ = bench.load_rig(job)
    fns = {"streaks": streaks, "ragged": ragged, "fringe": fringe, "colour": front_colour,
           "iou": lambda d, rig, atlas, hair: bench.silhouette_iou(job, [hair])[1], "edge_shadow": edge_shadow,
           "band": forehead_band, "profile": forehead_profile, "ears": ears_through, "crown": crown_folds,
           "crown_tone": crown_tone, "temple": temple_hair, "jag": hairline_jag, "front_edge": front_edge,
           "crown_edge": lambda d, rig, atlas, hair: crown_edge(job), "nape": nape_fade, "back": back_shape,
           "side_folds": side_folds, "spots": hair_spots, "bob": bob_shape, "temple_peak": temple_peak,
           "nape_band": nape_band, "front_step": front_step}
    out = {k: fns[k](d, rig, atlas, hair) for k in which}
    if sheet_dir is not None:
        from PIL import Image

        sheet_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet_row(d, rig, atlas, hair)).save(sheet_dir / f"hair_look_{job.name[4:]}.png")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=Path, default=REPO / "test-artifacts" / "complete_head")
    ap.add_argument("--sheet", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--measures", nargs="*", default=list(MEASURES), choices=MEASURES)
    a = ap.parse_args(argv)
    use_shared_ict()
    for name in a.only or NAMES:
        job = a.jobs / f"job_{name}"
        if not (job / "rig" / "rig.json").exists():
            print(f"{name}: no job in {a.jobs}")
            continue
        m = measure(job, a.sheet, a.measures)
        if not m.get("hair", True):
            print(f"{name}: no hair mesh")
            continue
        parts = []
        if "streaks" in m:
            s = m["streaks"]
            views = ", ".join(f"{k:+d}° {v[0]:.2f}/{v[1]:.2f}" for k, v in s.items() if k != "photo")
            parts.append(f"streaks (fall vs photo, h/v energy / contrast) {views} (photo's own {s['photo'][0]:.2f}/"
                         f"{s['photo'][1]:.3f})")
        if "ragged" in m:
            parts.append(f"ragged edge {m['ragged'][0]:.3f} ({m['ragged'][1]} px)")
        if "fringe" in m:
            parts.append(f"fringe bare {100 * m['fringe'][0]:.1f} % of {m['fringe'][1]} px")
        if "iou" in m:
            parts.append(f"front IoU with hair {m['iou']:.4f}")
        if "colour" in m:
            parts.append(f"hair vs photo from the front ΔE {m['colour']:.2f}")
        if "edge_shadow" in m:
            parts.append(f"skin in the shell's edge shadow {100 * m['edge_shadow'][0]:.1f} % of "
                         f"{m['edge_shadow'][1]} px")
        if "band" in m:
            parts.append(f"forehead under the hair / lower {m['band'][0]:.3f} ({m['band'][1]} columns)")
        if "profile" in m:
            p = m["profile"][0]
            parts.append(f"forehead below the hair per 2 mm / 16-24 mm down {np.round(p[:8], 3).tolist()} (pale band: "
                         f"2-6 mm over the darkest of 6-16 mm {np.nanmean(p[1:3]) / np.nanmin(p[3:8]):.3f})")
        if "ears" in m:
            parts.append(f"ears showing on the photo's hair {100 * m['ears'][0]:.1f} % ({m['ears'][1]} of "
                         f"{m['ears'][2]} px)")
        if "crown" in m:
            parts.append(f"crown folds p99.9 {m['crown'][0]:.1f}° (> 30° {100 * m['crown'][1]:.2f} % of "
                         f"{m['crown'][2]} edges)")
        if "crown_tone" in m:
            parts.append(f"from above top / back luminance {m['crown_tone'][0]:.3f}, detail {m['crown_tone'][1]:.2f}, "
                         f"head through the hair {100 * m['crown_tone'][2]:.2f} %")
        if "temple" in m:
            parts.append(f"temples' uncovered skin coloured as hair {100 * m['temple'][0]:.2f} % of "
                         f"{m['temple'][1]} px")
        if "front_edge" in m:
            parts.append(f"front edge off its smoothed self {m['front_edge'][0]:.2f} mm, total variation "
                         f"{m['front_edge'][1]:.2f} ({m['front_edge'][2]} columns)")
        if "front_step" in m:
            parts.append(f"front edge's steepest step over 4 mm of width {m['front_step'][0]:.1f} mm "
                         f"({m['front_step'][1]} columns)")
        if "jag" in m:
            parts.append(f"hairline band spread over columns {m['jag'][0]:.3f} (forehead's own {m['jag'][1]:.3f}, "
                         f"{m['jag'][2]} columns)")
        if "nape" in m:
            parts.append(f"neck below the hair from behind per mm / the neck's tone "
                         f"{np.round(m['nape'][0][:8], 2).tolist()} (0.9 reached {m['nape'][1]:.0f} mm down, "
                         f"{m['nape'][2]} columns)")
        if "back" in m:
            parts.append(f"from behind left/right reach differ {m['back'][0]:.1f} mm, top {m['back'][1]:.1f} mm, "
                         f"dent beside the head {m['back'][2]:.1f} mm")
        if "bob" in m:
            b = m["bob"]
            parts.append(f"from behind corners empty top {b[0]:.3f} bottom {b[1]:.3f}; in profile the back off the "
                         f"head at the occiput {b[2]:.1f} mm, at the nape {b[3]:.1f} mm; hem at the nape above the "
                         f"sides' {b[4]:.1f} mm, ends curled in at the sides {b[5]:.1f} mm")
        if "temple_peak" in m:
            parts.append(f"front edge's peak at the temples {m['temple_peak']:.1f} mm")
        if "nape_band" in m:
            parts.append(f"neck below the hem from behind coloured as hair {100 * m['nape_band'][0]:.2f} % of "
                         f"{m['nape_band'][1]} px")
        if "side_folds" in m:
            parts.append(f"folded edges beside the head {m['side_folds'][0]} ({100 * m['side_folds'][1]:.2f} %)")
        if "spots" in m:
            sp = [f"{100 * v:.2f}" for v in m["spots"][:4]]
            parts.append(f"hair off its hue / pale ¾ {sp[0]} / {sp[1]} %, from above {sp[2]} / {sp[3]} %")
        if "crown_edge" in m:
            (now, now90, _), (dflt, dflt90, _) = m["crown_edge"]
            parts.append(f"crown edge from behind in Cycles 10-90 % median/p90 {now:.2f}/{now90:.2f} px (glTF "
                         f"default specular {dflt:.2f}/{dflt90:.2f} px)")
        print(f"{name}: " + "; ".join(parts), flush=True)


if __name__ == "__main__":
    main()
