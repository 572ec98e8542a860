"""A hair volume from one photo: the scalp (the texture's hair region) pushed out along its normals as far as the
photo's hair reaches beyond the fitted head's outline, as a separate mesh skinned to the head bone, textured
with the skin atlas's hair.

The outline is measured in the photo around the head's projected centre: for each direction in the image, how
far the hair (photo_parse's HAIR pixels joined to the head) reaches past the head's own silhouette. Every scalp
vertex takes the reach of the direction it projects to (a bob is as full behind as at its sides), fading to
nothing at the front hairline so the shell meets the forehead without a step; and the mean of that and its mirror
partner's across the face's midplane (hair as full on one side as on the other). Hair that falls below the
hairline beside the face (a bob over the ears) is measured too (`hair_fall_dz`: where the photo's hair ends
beside the head): the hair region reaches down to it from the temples round the back, and there the shell falls
straight (never closer to the head's vertical axis than the shell or the head above it, ears included), as hair
hangs, instead of following the head's curve in to the neck; its ends curl in toward the head and keep inside
the photo's outline of head and hair (a bob's rounded lower corners, not a box). Skin the photo sees stays
uncovered (the face's sides in front of a bob). Bald and short-haired heads (reach under `min_reach_m`) get no mesh.

How it looks (benchmarks/hair_look.py on the --sheets jobs of benchmarks/complete_head.py; before -> after, commit
49cbab3 -> this change):
- streaks: the fall's high-pass horizontal / vertical gradient energy over the photo's own hair's, from behind:
  astronaut 41.6 -> 3.7, group faces 0-5 4.1/11.3/24.9/3.3/18.1/31.8 -> 1.0/1.4/1.9/1.3/1.4/3.1, cameraman 21.4 ->
  1.7 (in profile 0.7-21.1 -> 0.8-3.8). The unseen hair's strands are laid out on the head, not the atlas, as
  elongated as the photo's hair's grain (strands_on_shell, hair_anisotropy), so the fall no longer stretches them.
- fringe: the forehead's pixels coloured as hair that the mesh leaves uncovered: astronaut 14.7 -> 9.4 %, cameraman
  9.2 -> 2.4 %, group face 0 5.1 -> 2.0 %. In front the shell reaches over the texture's soft hair edge
  (EDGE_WEIGHT, EDGE_M), stands FRINGE_M off the skin, and covers the photo's hair on the forehead (_fringe).
- ragged edge: the hair's outline from the front between the eyes and the chin, length over smoothed length:
  astronaut 1.319 -> 1.262, group face 0 1.128 -> 1.099, face 3 1.168 -> 1.131 (the region's edge tidied, _tidy;
  its rim smoothed as a curve, _smooth_rim; the skin the photo shows kept on the shell only over the forehead;
  the shell's sides from the ears back whatever the photo's labels there).
- the front outline IoU with the hair: astronaut 0.8944 -> 0.8946, group face 0 0.8326 -> 0.8379, faces 1-5 within
  -0.0002..+0.0010, cameraman 0.6791 -> 0.6786; the hair against the photo from the front (ΔE76 median): astronaut
  2.92 -> 2.79, face 3 5.45 -> 5.39, the others +0.01..+0.16.
The rim in front lies under the skin (_rim_sunk; hair_look, commit 988abfe -> this change):
- edge shadow: the skin within 2 mm below the shell's front edge that the shell shades from the Cycles sheets' key
  light (the thin dark line along the hair's edge in Cycles, cast through the gap between the rim and the
  forehead): astronaut 92.0 -> 10.4 %, group faces 0-5 85.8/99.4/96.6/99.2/95.3/91.6 -> 1.2/0.4/0.4/0.2/24.6/2.6 %,
  cameraman 95.0 -> 39.5 %;
- ears: the share of the ears' pixels seen from the photo's camera where the photo shows hair (a bob's front edge
  stood off the cheek where the fall begins, and the ear showed through the gap): group face 0 95.5 -> 0 %, face 3
  100 -> 0 %, astronaut 50.0 -> 23.2 % (her lobes below the bob's end), the others unchanged;
- ragged edge: astronaut 1.262 -> 1.242, face 0 1.099 -> 1.104, face 3 1.131 -> 1.109; IoU equal or up (+0.0003
  at most); fringe bare: astronaut 9.3 -> 8.3 %; front ΔE: face 0 5.79 -> 4.54, face 3 5.39 -> 3.64, astronaut
  2.77 -> 2.88, the others within ±0.09; folded triangles unchanged (astronaut 0.94 %).
Short hair (its ends above the eyes beside the head) does not hang (_hangs): hanging, the top's volume was carried
straight down the back and sides, a helmet (the cameraman). Front outline IoU: group faces 1/2/4/5 0.8030/0.8230/
0.7430/0.8047 -> 0.8267/0.8432/0.7651/0.8086, cameraman 0.6786 -> 0.6997; front ΔE 1.43/1.62/1.11/1.15/0.38 ->
1.20/1.53/1.12/1.18/0.39; the bobs (astronaut, faces 0 and 3) unchanged.
The crown seen from above (hair_look crown, crown_tone; commit 1d338e3 -> this change): the fall's lead (the widest
shell 1 cm lower) spread a bob's crown behind the head's axis out round a flat cap in front of it, a fold where the
top met the back in Cycles; the ears' detection took the near-level crown for an ear and sank it into the head
(hidden by that fold). The fall is now led only below SHELL_LEAD_Z_M and the crown does not hang (CROWN_Z_M), ears
are looked for beside the head only (EAR_DEG, EAR_Z_M), and pieces of the hair region apart from the rest
(_without_islands: group face 4's spike over the forehead, a black patch) are dropped. Top dihedral angles p99.9
(share past 30°): astronaut 131.0° (2.15 %) -> 28.8° (0.11 %), group face 0 159.3° (2.34 %) -> 18.9° (0 %), face 3
160.0° (3.17 %) -> 28.8° (0.07 %), the rest unchanged (16.8-27.3°, 0 %); the head through the hair from above 0 %
throughout. Front IoU:
astronaut 0.8949 -> 0.9007, faces 0/3 0.8379/0.7965 -> 0.8440/0.8036, the rest within 0.0002; ragged edge astronaut
1.242 -> 1.291 (her bob no longer widened by the crown's dome), ears showing 23.2 -> 28.0 % (her lobes).
The top's strands are laid out from above (strands_on_shell with the shell's normals, STRAND_LEVEL_NZ): round the
head's axis they were rays from a flat patch at the crown. From above, the hair's detail over its top against its
back's (hair_look crown_tone): astronaut 0.81 -> 0.97, group faces 0-5 0.63/1.35/0.72/0.86/0.75/0.80 -> 0.77/1.42/
0.85/0.88/0.96/0.96, cameraman 0.73 -> 0.87; the fall's streaks from behind within ±0.1.
A vertex keeps its own image direction's reach only where the photo sees the head edge-on there (its outline),
elsewhere it takes the mean of its own and its mirror partner's (_mirrored_reach, EDGE_ON); and the ears' membrane
spans 8 rings round them (EAR_RINGS, was 3). Each vertex took its own direction's reach, so a turned head's sides
differed: group face 3 (turned ~17° to her right) had her left side's 5 cm, measured at its back on the photo's
outline, all along that side and her temple's 1.5 cm all along the other, and the photo's labels, narrower lower
down on her left, pulled that side's lower half in (_round_ends' outline): lopsided from behind, with a notch. Over
a bob's ears the membrane's edge lay in the crease behind the ear, meeting the skull at a sharp angle, and the bob's
3-5 cm push along the normals folded the shell there: black speckles on a pale patch in Cycles' profile.
benchmarks/hair_look, commit af95c65 -> this change: from behind, left/right reach differ (median over rows), top
at mirrored columns, deepest dent of the outline beside the head (back): face 3 45.0/3.4/13.2 -> 4.8/1.2/2.8 mm,
astronaut 16.2/7.9/7.3 -> 4.2/2.3/7.9, faces 0/1/2/4/5 7.6/11.3/2.9/9.0/8.8 -> 1.6/2.6/0.5/0.4/0.6 mm (dents
within ±2.3 mm), cameraman 10.8/1.6/5.5 -> 1.4/0.7/2.8; the shell's edges beside the head folded past 90°
(side_folds): face 3 513 -> 0, face 0 509 -> 0, astronaut 60 -> 7, the others 0 (their ears are not under the
shell); face 3's ears stay covered in profile (0 of ~1430 px at ±90°, 384 px). Front outline IoU with the photo:
face 3 0.8035 -> 0.8047, astronaut 0.9007 -> 0.9059, face 2 0.8431 -> 0.8444; lower where the photo's hair is
uneven: faces 0/1/4/5 0.8437/0.8279/0.7631/0.8069 -> 0.8313/0.8197/0.7578/0.8026, the cameraman (a profile: one
side seen) 0.6996 -> 0.6829. (The plain mean everywhere made face 3 0.9/1.6/1.8 mm but cost tests/rig/test_instant's
astronaut job 0.874 -> 0.858 of IoU; with EDGE_ON 0.05 it is 0.864, 0.1: 0.871 with face 3 9.1/1.1/6.6 mm.) Hair
against the photo from the front ΔE: face 3 3.25 -> 2.31, astronaut 3.02 -> 2.60, face 0 3.50 -> 3.21, the others
within ±0.17; ragged edge astronaut 1.294 -> 1.154, the others within +0.01; crown folds p99.9 astronaut 28.3° ->
19.5°, the others lower or within +0.5°; streaks within ±0.3 but the cameraman's +90° profile 1.94 -> 2.52;
temples' uncovered skin coloured as hair face 3 8.8 -> 10.2 %, face 0 8.7 -> 7.8 %; ears, edge shadow, nape,
fringe within ±1 %.
Over a fringe the shell reaches a ring below the fringe's vertices (_fringe_edge): the texture's soft fringe edge
showed in the triangles below the shell's edge, a grey band that stepped from column to column (the cameraman).
hair_look, cameraman, commit 54123f2 -> this change: jag 0.081 -> 0.023 (forehead's own 0.022 -> 0.012), band 0.943
-> 0.980, front edge total variation 1.30 -> 1.11, fringe bare 1.6 -> 0.3 %, edge shadow 38.9 -> 40.2 % (48.0 without
FRINGE_EDGE_TAPER); the other jobs unchanged.
Still wrong: face 3's top from behind is a gable, its midline 9.6 mm above a parabola through its top outline (7.0
with this change): the photo's reach straight up is a spike over its neighbours'.
A hanging bob from behind and in profile (benchmarks/hair_look bob, commit 470fd52 -> this change): the fall hung
straight from the widest of everything above it, as full behind as at the sides: in profile a box whose back was a
vertical plane, from behind a slab with straight sides and square lower corners. Now behind the head the hair lies
on the skull no thicker than BACK_T_M and the fall tapers in toward the nape (BACK_TAPER, keeping NAPE_GAP_M off the
neck), beside it flares a little (SIDE_FLARE), its ends curl in over a share of its length (TUCK_SHARE; under the
ear by END_TAPER), and the shell of hair that hangs keeps within the photo's outline (_within_outline). In profile,
the back off the head at the nape (at the occiput): group face 0 21.5 (4.0) -> 12.1 (6.3) mm, face 3 37.2 (18.6) ->
10.2 (17.9), astronaut 36.8 (16.5) -> 15.0 (17.9), face 2 28.9 -> 21.2; from behind the lower corners' empty share
(hair_look bob; a slab 0, a quarter disc 0.21, plus the hem's perspective) face 0 0.336 -> 0.495, face 3 0.287 ->
0.360, astronaut 0.681 -> 0.721; the ends curled in at the sides 10.0 / 22.8 / 15.5 -> 29.9 / 36.1 / 15.1 mm. Front
outline IoU: face 3 0.8047 -> 0.8271, face 0 0.8312 -> 0.8356, astronaut 0.9060 -> 0.9058, faces 1/2/5 -0.0002..
-0.0004, face 4 and the cameraman unchanged; front ΔE face 3 2.49 -> 2.21, face 0 3.43 -> 3.31, astronaut 2.60 ->
2.65; face 3's shell outside the photo's head from its camera 12.4 -> 9.1 %. Costs: the temples' uncovered skin
coloured as hair face 3 14.45 -> 16.31 %, face 0 2.05 -> 2.69 % (the shell drawn in over the temples; gating
_within_outline to 3-6 cm above the eyes and higher kept 14.92 % but face 3's IoU only 0.8100); the astronaut's
dent beside the head from behind 7.9 -> 9.1 mm. Tried: TUCK_M 0.03 / 0.04 all round cost the astronaut's IoU
0.0019 / 0.0048 (her bob ends above the jaw; hence TUCK_SHARE); an ellipse over the top (the sides above 2 cm over
the eyes within an ellipse through the shell's widest below and its top) rounded face 3's shoulders barely (top
corners 0.763 -> 0.767) for 0.0025 of the astronaut's IoU: dropped. The hem rises toward the nape
(texture_complete.NAPE_RISE_M, on the hairline both the shell and the texture's hair region follow: figures there).
Tried and dropped: the cameraman's fringe ends in a step of skin beside it (cut off square at FRINGE_DEG; hair_look
front_step 11.8 mm) and its strand tips in teeth. Filling the forehead's skin above its top smoothed along the angle
round the head (per 2.5°, brought down to its Gaussian average over 5° where higher, when _fringe found a fringe)
ramped the step in Cycles (front_step 11.8 -> 5.3 mm) but the edge's finer teeth grew (front_edge total variation
1.11 -> 1.35, IoU 0.6831 -> 0.6828), and group face 4's fringe turned ragged (front_edge 0.20 -> 0.44 mm, total
variation 1.28 -> 1.46, front_step 3.5 -> 5.3); ungated, face 5's bare forehead took ragged hair (0.55 -> 0.82 mm)
and the lowest hair vertex per bin instead of the skin's top drew a spike down face 4's forehead (17.7 mm). Letting
_fringe reach 15° past FRINGE_DEG above a line rising to the hairline left the cameraman's step as it was (11.8 mm:
it is where the photo's hair ends, not the cut) and made one on face 2 (front_step 7.6 -> 21.1 mm).
Tried and dropped: locks behind the head (the shell pushed out from the head's axis by up to 8 mm, 20 round it,
from 110° round and below 4 cm over the eyes) raised the back's Lambert relief under the key light (its spread about
its 6 px blur from behind: group face 3 0.011 -> 0.024, face 0 0.023 -> 0.034) but in Cycles the back barely changed
(the key light comes from the front left, the back is lit by the sky) and the hem turned wavy; IoU face 3 -0.0005.
From behind the unseen strands' detail is under the photo's hair's (hair_look streaks, contrast over the photo's at
180°: faces 0-5 0.42/0.64/0.89/0.48/0.99/0.92, astronaut 0.54, cameraman 0.58): faces 0 and 3 read as a block.
Tried and dropped: a third octave of strands (locks 5 mm, as strong as the rest): 0.31 / 0.36 (the finer detail
lost), the astronaut's pale spots unchanged at 27 %; twice the strands' amplitude: faces 0 / 3 0.83 / 0.96, but
faces 2 / 4 / 5 1.70 / 1.80 / 1.81 (the deficit is not one scale for all); the amplitude from the photo's hair's
luminance between its pixel and max(STRAND_HIGHPASS_M, 3 px) against the strands' own in that band: faces 0-5
1.06/0.97/1.13/0.96/1.15/1.09 but the astronaut 1.49 and the cameraman 2.13, in Cycles the astronaut's bob mottled
with dark spots and face 0's speckled (pale spots in ¾ 2.33 -> 3.75 %), front ΔE astronaut 2.63 -> 2.99.
The hairline's corners (_no_temple_peak; hair_look temple_peak, the shell's lowest point per 2.5° round the head at
30-85° standing above the lowest on both sides of it): the photo's hairline across the forehead, blended into the
textbook's by ±55°, rose to a peak there: a sharp inverted V of skin up into the hair at each corner. Group face 1
16.8 -> 4.7 mm, face 2 12.5 -> 6.5, cameraman 1.9 -> 1.2, the others unchanged (the astronaut's 23.7 mm is her ear
below her bob); the temples' uncovered skin coloured as hair face 1 1.31 -> 0.49 %, face 0 2.69 -> 2.97 %; front
ΔE face 2 1.54 -> 1.69; IoU within 0.0001.
"""
from __future__ import annotations

import cv2
import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph  # noqa: F401  (sp.csgraph)
import scipy.sparse.linalg  # noqa: F401  (sp.linalg)

from ..headmodel.base import mirror_map
from ..headmodel.parts import eye_height, visible_faces
from ..render.image import pull_push, rgb_to_lab, sample_bilinear
from ..render.raster import interpolate, project, rasterize, vertex_normals
from .texture import atlas_uv, skin_faces, texel_surface
from .texture_complete import FALL_DEG, hair_strands, hair_weight, hairline_height, head_axis, residual_on_head

N_DIRECTIONS = 180


def hair_reach_px(head_mask: np.ndarray, hair_mask: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(N_DIRECTIONS,) px the hair reaches beyond the head's silhouette along rays from `centre` (2,) px,
    direction k at angle 2πk/N (image x right, y down); 0 where no hair touches the silhouette."""
    H, W = head_mask.shape
    ang = 2 * np.pi * np.arange(N_DIRECTIONS) / N_DIRECTIONS
    d = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    r = np.arange(0, int(np.hypot(H, W)), dtype=np.float64)
    px = centre[None, None, :] + r[None, :, None] * d[:, None, :]  # (N, R, 2)
    inside = (px[..., 0] >= 0) & (px[..., 0] <= W - 1) & (px[..., 1] >= 0) & (px[..., 1] <= H - 1)
    xi = np.clip(np.round(px[..., 0]).astype(int), 0, W - 1)
    yi = np.clip(np.round(px[..., 1]).astype(int), 0, H - 1)
    head = head_mask[yi, xi] & inside
    hair = hair_mask[yi, xi] & inside
    out = np.zeros(N_DIRECTIONS)
    for k in range(N_DIRECTIONS):
        hk = np.nonzero(head[k])[0]
        if len(hk) == 0:
            continue
        edge = hk.max()  # the head's outline along this ray
        run = hair[k, edge + 1:]
        gap = 3  # the hair may start a few px past the outline (matte and fit disagree by a little)
        start = np.argmax(run[:gap + 1]) if run[:gap + 1].any() else None
        if start is None:
            continue
        stop = np.argmin(run[start:]) if not run[start:].all() else len(run) - start
        out[k] = start + stop
    # a ray through a gap between strands: the neighbours' reach (circular median of 5)
    pad = np.concatenate([out[-2:], out, out[:2]])
    return np.median(np.stack([pad[i:i + N_DIRECTIONS] for i in range(5)]), axis=0)


def hair_fall_dz(model, identity: np.ndarray, expression: np.ndarray, K: np.ndarray, w2c: np.ndarray,
                 hair_mask: np.ndarray) -> tuple[float, float] | None:
    """Where the photo's hair ends beside the head, on the model's +X and −X sides: heights (m) above the eyes
    on the mean neutral head (hairline_height's frame), or None without hair beside the head.

    The hair joined to the head's outline (connected components of `hair_mask` touching it) outside the fitted
    head's silhouette (hair that hangs widens the outline; a shadowed ear labelled hair lies inside it), in the
    outer parts of the head's width on each side (not a beard or a fringe in front of the face), within 15 % of
    the head's width beyond its outline in each row (not a neighbour's shoulder), running down from its top
    without a gap (not a dark collar further down); its lowest rows (98th percentile) are carried to heights on
    the head by a plane z ≈ a + b·x + c·y fitted to the head's projected vertices. Both sides then take the
    same: the one with more hair pixels where the other has under a fifth of them, else the shorter; and hair
    that would fall past the cheeks ends no lower than a side's own hair where that side shows no hair beside
    the cheek and jaw (_bare_beside: the neck or the background there; hair worn up or pulled back). Bounded to
    3 cm below the chin (the head model ends at the neck) and 4 cm above the eyes."""
    H, W = hair_mask.shape
    posed = model.vertices(identity, expression)
    xy, z = project(posed, K, w2c)
    faces = model.faces[visible_faces(model)]
    tid, _, _ = rasterize(xy, z, faces, H, W, cull_backfaces=True)
    head = tid >= 0
    if not head.any() or not hair_mask.any():
        return None
    n, comp = cv2.connectedComponents(hair_mask.astype(np.uint8), connectivity=8)
    ring = cv2.dilate(head.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    touch = np.unique(comp[ring & hair_mask])
    hair = np.isin(comp, touch[touch > 0])
    used = np.unique(faces)
    A = np.concatenate([np.ones((len(used), 1)), xy[used]], axis=1)
    coef = np.linalg.lstsq(A, model.neutral[used, 2], rcond=None)[0]
    ys, xs = np.nonzero(head)
    x0, x1 = xs.min(), xs.max()
    cx, w = (x0 + x1) / 2, max(x1 - x0, 1)
    eye_z = eye_height(model)
    chin = model.landmarks_68[8] if model.landmarks_68 is not None else int(np.argmin(model.neutral[used, 2]))
    lo_dz, hi_dz = float(model.neutral[chin, 2]) - 0.03 - eye_z, 0.04
    # hanging hair widens the outline: only hair outside the fitted head's silhouette counts (a shadowed ear or
    # cheek labelled hair lies inside it)
    outside = hair & ~cv2.dilate(head.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    hy, hx = np.nonzero(outside)
    out, evidence, bare = [], [], []
    for s in (1.0, -1.0):  # the model's +X side, then −X: which image side it is on
        # (the two sides' image x against each other: against the outline's centre both fall on one side of a
        # tilted head whose neck runs off to the other)
        img_side = s * np.sign(xy[used[model.neutral[used, 0] > 0.03], 0].mean()
                               - xy[used[model.neutral[used, 0] < -0.03], 0].mean())
        # the head's outline on this side, row by row; hair counts within 15 % of the head's width beyond it
        # (hanging hair lies against the head and neck: not a neighbour's shoulder further out)
        edge = np.full(H, np.nan)
        rows_with = np.unique(ys)
        edge[rows_with] = (np.maximum.reduceat if img_side > 0 else np.minimum.reduceat)(
            xs[np.argsort(ys, kind="stable")], np.searchsorted(np.sort(ys), rows_with))
        beyond = (hx - edge[hy]) * img_side
        sel = ((hx - cx) * img_side > 0.25 * w) & (beyond > 0) & (beyond < 0.15 * w)
        bare.append(_bare_beside(hair_mask, edge, img_side, w, coef, eye_z))
        # the hair's run down the side from its top, with gaps of at most 3 % of the head's height (not a dark
        # collar or a camera further down that happens to touch it)
        run = np.flatnonzero(np.bincount(hy[sel], minlength=H) >= 2)
        if sel.sum() < 20 or not len(run):
            out.append(hi_dz)
            evidence.append(0)
            continue
        gaps = np.flatnonzero(np.diff(run) > max(2, int(0.03 * (ys.max() - ys.min()))))
        keep = sel & (hy <= (run[gaps[0]] if len(gaps) else run[-1]))
        y_low = np.percentile(hy[keep], 98)
        x_low = np.median(hx[keep][hy[keep] >= y_low])
        zf = coef[0] + coef[1] * x_low + coef[2] * y_low
        out.append(float(np.clip(zf - eye_z, lo_dz, hi_dz)))
        evidence.append(int(keep.sum()))
    # hair falls alike on both sides: a side the photo barely shows (turned away, cut by the frame) takes the
    # other's; where both show, the shorter (a wrong curtain down one side looks far worse than a short one)
    if min(evidence) < 0.2 * max(evidence):
        fall = out[int(np.argmax(evidence))]
    else:
        fall = max(out)
    # hair falling past the cheeks on one side only, where the other side shows the neck or the background
    # beside the face (hair worn up or back; a cheek beyond the landmarks labelled hair): that side's own end
    if fall < -BARE_TOP_M:
        fall = max([fall] + [o for o, b in zip(out, bare) if b])
    return fall, fall


BARE_TOP_M = 0.015  # the cheeks' band, from this far below the eyes ...
BARE_BOTTOM_M = 0.07  # ... to this far below them
BARE_ROWS = 0.6  # a side is bare beside the face when at least this share of its rows there show no hair ...
BARE_HAIR = 0.2  # ... a row showing no hair when under this share of its pixels beside the outline are hair


def _bare_beside(hair_mask: np.ndarray, edge: np.ndarray, img_side: float, w: float, coef: np.ndarray,
                 eye_z: float) -> bool:
    """Whether the photo shows no hair beside the head on one side (image side `img_side` ±1) from BARE_TOP_M
    below the eyes to BARE_BOTTOM_M below them (the cheek and jaw, on the mean neutral head): in at least
    BARE_ROWS of the rows there whose strip beside the head's outline (`edge` (H,) px per row, from 2 % to 12 %
    of the head's width `w` beyond it) lies in the frame, under BARE_HAIR of the strip is hair (`hair_mask`).
    Hair that falls beside the face widens the outline there on both sides; hair worn up or back leaves the neck
    or the background.
    `coef`: the plane z ≈ a + b·x + c·y of the head's projected vertices (hair_fall_dz's)."""
    H, W = hair_mask.shape
    rows = np.flatnonzero(np.isfinite(edge))
    if not len(rows):
        return False
    z = coef[0] + coef[1] * edge[rows] + coef[2] * rows
    rows = rows[(z < eye_z - BARE_TOP_M) & (z > eye_z - BARE_BOTTOM_M)]
    lo, hi = max(1, int(round(0.02 * w))), max(2, int(round(0.12 * w)))
    seen = bare = 0
    for y in rows:
        x = np.round(edge[y] + img_side * np.arange(lo, hi + 1)).astype(int)
        if x.min() < 0 or x.max() >= W:  # cut by the frame: the photo says nothing here
            continue
        seen += 1
        bare += int(hair_mask[y, x].mean() < BARE_HAIR)
    return seen >= 5 and bare >= BARE_ROWS * seen


def hair_shell(model, identity: np.ndarray, expression: np.ndarray, K: np.ndarray, w2c: np.ndarray,
               hair_mask: np.ndarray, atlas: np.ndarray, front_dz: float | None,
               fall_dz: tuple[float, float] | None = None, skin_mask: np.ndarray | None = None, front_profile=None,
               min_reach_m: float = 0.008, max_reach_m: float = 0.09,
               photo: np.ndarray | None = None) -> tuple[dict | None, dict]:
    """→ (attachment {name, verts (n, 3) neutral world, faces, uv (n, 2) glTF, texture, bone} or None, info).

    `hair_mask` (H, W) bool: the photo's hair pixels; (K, w2c): the fitted camera; `front_dz`: the hairline's
    front height above the eyes the texture used (None: the default); `fall_dz`: hair_fall_dz's heights (the
    texture's too); `front_profile`: the photo's hairline across the forehead (texture_complete.front_hairline's,
    as the texture used); `skin_mask` (H, W) bool: the photo's skin, left uncovered below the hairline;
    `photo` (H, W, 3) uint8: the hair's texture takes the photo's own hair where the photo sees the shell
    (hair_texture_from_photo), not only the scalp's."""

    H, W = hair_mask.shape
    posed = model.vertices(identity, expression)
    F = model.faces[visible_faces(model)]
    xy, z = project(posed, K, w2c)
    tid, _, _ = rasterize(xy, z, F, H, W, cull_backfaces=True)
    head_mask = tid >= 0
    info = {"reach_px_max": 0.0, "reach_m_max": 0.0}
    if not head_mask.any() or not hair_mask.any():
        return None, info
    ys, xs = np.nonzero(head_mask)
    centre = np.array([xs.mean(), ys.mean()])
    reach_px = hair_reach_px(head_mask, hair_mask, centre)
    depth = float(np.median(z))
    reach_m = np.minimum(reach_px * depth / K[0, 0], max_reach_m)
    info = {"reach_px_max": float(reach_px.max()), "reach_m_max": float(reach_m.max()),
            "reach_m_median_top": float(np.median(reach_m[(np.arange(N_DIRECTIONS) > N_DIRECTIONS // 2)])),
            "fall_m_above_eyes": None if fall_dz is None else [round(float(f), 4) for f in fall_dz]}
    if reach_m.max() < min_reach_m:
        return None, info

    # the hair region of the neutral head, on vertices: above the hairline, or above where the hair falls to
    neutral = model.vertices(identity=identity)
    eye_z = eye_height(model)
    axis_y = head_axis(model.neutral, eye_z)
    line0 = _no_temple_peak(model.neutral, axis_y, eye_z, front_dz, None, front_profile)
    line = _no_temple_peak(model.neutral, axis_y, eye_z, front_dz, fall_dz, front_profile)
    phi = np.degrees(np.arctan2(np.abs(model.neutral[:, 0]), -(model.neutral[:, 1] - axis_y)))
    side = np.clip((phi - FALL_DEG[0]) / (FALL_DEG[1] - FALL_DEG[0]), 0, 1)  # 0 in front, 1 from the ears back
    # over the forehead and temples, down to where the texture's hair fades out below the hairline (hair_weight's
    # soft edge): the shell's edge covers the blend, which left uncovered is a band of hair colour on the skin
    # under it (not at the sides, where the hair's ends make the outline: it stays the photo's)
    hw = hair_weight(model.neutral, line)
    # short hair (it does not hang: _hangs) ends on the skin all round: the blend covered there as in front, its rim
    # behind the ears level where the blend's weight falls to EDGE_WEIGHT (at the hairline, the blend below it showed
    # in Cycles as the hair fading softly into the neck from behind; see NAPE_EDGE_HANGS)
    short = _hangs(fall_dz) < NAPE_EDGE_HANGS
    in_hair = (hw > 0.5) | ((hw > EDGE_WEIGHT) & ((side == 0) | short))
    # skin the photo sees below the hairline stays skin (the face beside a bob), in front of the ears: an ear under
    # hanging hair, seen as skin at the face's edge by a fit a few pixels off, left a hole in the shell's side
    # (the ear then showed through a bob's inner edge; group face 0's front outline IoU 0.833 -> 0.838)
    if skin_mask is not None:
        in_hair &= ~(_seen_on(model, posed, K, w2c, tid, skin_mask)
                     & (model.neutral[:, 2] < line0 - np.where(side == 0, EDGE_M, 0.0)) & (side < 0.5))
    faces_sel = skin_faces(model)
    skin_nbr = _neighbours(model.faces[faces_sel], model.n_vertices)
    fringe = _fringe(model, posed, K, w2c, tid, hair_mask, in_hair, phi, eye_z, skin_nbr)
    in_hair |= fringe
    if _hangs(fall_dz) >= TEMPLE_COVER_HANGS:  # a bob covers the temples where the texture holds its hair
        in_hair |= _temple_covered(model, atlas, in_hair, phi, eye_z, skin_nbr)
    fz = (phi < FRINGE_DEG) & (model.neutral[:, 2] > eye_z + FRINGE_ABOVE_EYES_M)  # the forehead
    if short:  # short hair covers the forehead too where the texture holds its hair (FOREHEAD_COVER)
        in_hair |= _temple_covered(model, atlas, in_hair, phi, eye_z, skin_nbr, zone=fz)
    below = _fringe_edge(in_hair, hw, fz, skin_nbr)
    in_hair |= below
    scalp = faces_sel[_tidy(model.faces[faces_sel], in_hair[model.faces[faces_sel]].all(axis=1), TIDY_ITERATIONS)]
    scalp = scalp[_without_islands(model.faces[scalp])]
    if len(scalp) < 20:
        return None, info
    # each vertex's image direction from the head's centre (posed: where the photo saw it)
    d = xy - centre
    k = np.round(np.arctan2(d[:, 1], d[:, 0]) / (2 * np.pi) * N_DIRECTIONS).astype(int) % N_DIRECTIONS
    # the reach at the silhouette, carried round the back, fading to nothing at the front hairline
    w_v = hair_weight(model.neutral, line + 0.02, soft_m=0.02)  # 0 at the hairline, full 4 cm above it
    # hair is as full on one side as on the other where the photo does not see its outline (see _mirrored_reach)
    reach_v = _mirrored_reach(reach_m[k], posed, F, w2c, mirror_map(model.neutral))
    t = reach_v * np.maximum(w_v, side * np.minimum(1.0, 4 * w_v + 0.25))
    shell_f = model.faces[scalp]
    nbr = _neighbours(shell_f, model.n_vertices)
    t = _smooth(t, nbr, SMOOTH_ITERATIONS)  # neighbouring image directions' reaches differ by strands
    # hair has a thickness: in front the shell stands FRINGE_M off the skin at least, also at its edge and over a
    # fringe (at nothing it sank under the forehead between its vertices, and the texture's hair there showed as a
    # flat band on the skin); not from the temples back, where it would widen the outline
    # (short hair, which does not hang (_hangs), has it all round: on the skin it would be coincident with the scalp)
    hangs = _hangs(fall_dz)
    t = np.maximum(t, FRINGE_M * (1 - side * hangs))
    # hair that hangs lies on the back of the skull no thicker than BACK_T_M (BACK_TAPER_DEG round): the reach of the
    # image direction a vertex behind the head projects to is the photo's outline beside or above it, and carried
    # round the back it made a box in profile, as full behind as at the sides
    back = np.clip((phi - BACK_TAPER_DEG[0]) / (BACK_TAPER_DEG[1] - BACK_TAPER_DEG[0]), 0.0, 1.0) * hangs
    t = t - back * np.maximum(t - BACK_T_M, 0.0)
    # ... and the fringe's last ring above that rim half as thick: standing FRINGE_M off it cast a shadow past the rim
    # (hair_look edge shadow on the cameraman 48.0 -> 40.2 %, 38.9 before _fringe_edge; jag and band unchanged)
    inner_edge = ((skin_nbr[0] @ below.astype(np.float64)) > 0) & ~below
    t = np.where(inner_edge, np.minimum(t, FRINGE_M * FRINGE_EDGE_TAPER), t)
    # the shell grows from the head with its ears filled in (offset from the ear's own folds it carried their
    # outline and creases, plain in a ray-traced render), domed over them to clear them; the membrane's normals,
    # noisy where it spans the folds, smoothed there
    shell_v = np.unique(shell_f)
    base, ears, proud = _ears_filled(neutral, model.faces[faces_sel], skin_nbr, shell_v, side, axis_y, eye_z)
    n = vertex_normals(base, model.faces[faces_sel])
    smooth_n = np.column_stack([_smooth(n[:, k], skin_nbr, 4 * SMOOTH_ITERATIONS) for k in range(3)])
    n = np.where(ears[:, None], smooth_n / np.maximum(np.linalg.norm(smooth_n, axis=1, keepdims=True), 1e-12), n)
    dome = _dome(neutral, base, n, ears, proud, skin_nbr)
    t = np.maximum(t, dome)
    outline = _photo_outline(hair_mask | head_mask | (skin_mask if skin_mask is not None else False), K, w2c)
    if hangs > 0:  # hair that hangs: its shell within the photo's outline (_within_outline)
        pull = _mirrored_reach(_within_outline(base, n, t, shell_v, outline), posed, F, w2c, mirror_map(model.neutral))
        t = np.maximum(t - hangs * _smooth(pull, nbr, SMOOTH_ITERATIONS), np.maximum(dome, np.minimum(t, FRINGE_M)))
    offset = base + n * t[:, None]
    # the rim where the hair falls: level at the hair's ends (not stepped along the mesh's edges)
    rim = _rim(shell_f)
    low = rim[side[rim] > 0.5]
    behind = np.clip((phi[low] - NAPE_DEG[0]) / (NAPE_DEG[1] - NAPE_DEG[0]), 0, 1)
    drop = _edge_below_line() * behind if short else 0.0
    offset[low, 2] = np.minimum(offset[low, 2], line[low] - drop)
    head_v = np.unique(model.faces[faces_sel])
    # the ears are under the dome already: the fall below them clears the dome and the rest of the head
    # hair hangs straight where it falls past the ears; short hair (its ends above the eyes beside the head,
    # hair_fall_dz) follows the head: hanging, the top's volume (a quiff) carried down the back as a helmet
    hang = side * hangs
    offset[shell_v] = _fall_straight(neutral, offset, shell_v, head_v[~ears[head_v]], hang, eye_z)
    # the ends curl in over a share of the hair's fall below the eyes (TUCK_SHARE): a long bob's more than a short one's
    tuck = TUCK_M if fall_dz is None else float(np.clip(-TUCK_SHARE * min(fall_dz), TUCK_M, TUCK_MAX_M))
    offset[shell_v] = _round_ends(neutral, offset, shell_v, head_v, side, line, eye_z, outline, tuck_m=tuck)
    offset = _taubin(offset, nbr, shell_v, rim, SMOOTH_ITERATIONS)
    offset = _smooth_rim(offset, shell_f, RIM_ITERATIONS)
    offset = _rim_sunk(offset, neutral, model.faces[faces_sel], rim, side)
    # split vertices along UV seams: one output vertex per (vertex, uv) pair
    tri_v = model.faces[scalp].reshape(-1)
    tri_uv = model.face_uv[scalp].reshape(-1)
    pairs, inverse = np.unique(np.stack([tri_v, tri_uv], axis=1), axis=0, return_inverse=True)
    verts = offset[pairs[:, 0]]
    uv = atlas_uv(model.uv[pairs[:, 1]])
    faces = inverse.reshape(-1, 3)
    info["vertices"], info["triangles"] = int(len(verts)), int(len(faces))
    texture = hair_texture(model, atlas, faces_sel, axis_y, eye_z, front_dz, front_profile)
    if photo is not None:  # the shell where the photo sees it, in the photo's expression
        shell_posed = verts + (posed - neutral)[pairs[:, 0]]
        texture, info["texture"] = hair_texture_from_photo(
            texture, shell_posed, faces, uv, posed, F, photo, hair_mask, K, w2c, skin_mask=skin_mask)
    # one sheet, seen from both sides (the underside shows below its rim): a double-sided material, not a
    # reversed copy on the same positions, whose coincident triangles a ray tracer shadows with each other
    return {"name": "hair", "verts": verts, "faces": faces, "uv": uv, "bone": "head", "texture": texture,
            "double_sided": True, "extensions": hair_material_extensions()}, info


TEMPLE_PEAK_DEG = (40.0, 90.0)  # the hairline never rises going round the head between these angles from the midline


def _no_temple_peak(pos: np.ndarray, axis_y: float, eye_z: float, front_dz, fall_dz, front_profile) -> np.ndarray:
    """(V,) texture_complete.hairline_height at `pos` (V, 3), but on each side, from TEMPLE_PEAK_DEG[0] round to
    TEMPLE_PEAK_DEG[1], no higher than anywhere nearer the face's midline in that span (its running minimum going
    round). The photo's hairline across the forehead (`front_profile`, within ±40°) is blended into the textbook's
    by ±55°, which at the temples lies higher than a photo's hairline coming down at the forehead's corners: the
    line rose to a peak at about 55° and fell again toward the ears, and the shell's edge followed it, a sharp
    inverted V of skin up into the hair at each corner of the hairline (group face 1, the cameraman; the texture
    paints it too, under the shell)."""
    line = hairline_height(pos, axis_y, eye_z, front_dz, fall_dz, front_profile)
    if front_profile is None:
        return line
    deg = np.arange(TEMPLE_PEAK_DEG[0], TEMPLE_PEAK_DEG[1] + 0.25, 0.5)
    signed = np.degrees(np.arctan2(pos[:, 0], -(pos[:, 1] - axis_y)))
    out = line.copy()
    for s in (1.0, -1.0):
        a = np.radians(s * deg)
        ring = np.stack([0.08 * np.sin(a), axis_y - 0.08 * np.cos(a), np.full(len(a), eye_z)], axis=1)
        run = np.minimum.accumulate(hairline_height(ring, axis_y, eye_z, front_dz, fall_dz, front_profile))
        on = (s * signed >= TEMPLE_PEAK_DEG[0]) & (s * signed <= TEMPLE_PEAK_DEG[1])
        out[on] = np.minimum(line[on], np.interp(s * signed[on], deg, run))
    return out


EDGE_ON = 0.05  # a vertex keeps its own reach by exp(-(n·v / EDGE_ON)²): n its normal, v the direction to the camera


def _mirrored_reach(reach: np.ndarray, posed: np.ndarray, faces: np.ndarray, w2c: np.ndarray,
                    mirror: np.ndarray) -> np.ndarray:
    """(V,) each vertex's reach (`reach` (V,) m: the photo's at the image direction it projects to) where the photo
    sees the head edge-on there (its outline: the posed head's normal across the line of sight), elsewhere the
    mean of its own and its mirror partner's (`mirror` (V,)): weighted by exp(-(n·v / EDGE_ON)²), n the normal of
    `posed` (V, 3) with `faces`, v the unit direction to the camera of `w2c`. Hair is as full on one side as on
    the other; a turned head's sides took their image directions' reaches all along, the far side's measured at
    its back, the near side's at its temple (see the module's docstring)."""
    cam = -w2c[:3, :3].T @ w2c[:3, 3]
    v = cam - posed
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    w = np.exp(-((vertex_normals(posed, faces) * v).sum(axis=1) / EDGE_ON) ** 2)
    return w * reach + (1 - w) * (reach + reach[mirror]) / 2


HAIR_SPECULAR = 0.0  # glTF KHR_materials_specular's specularFactor for the hair (Blender: Specular IOR Level × 2)


def hair_material_extensions() -> dict:
    """The hair material's glTF extensions: no dielectric specular (KHR_materials_specular specularFactor
    HAIR_SPECULAR). The glTF default (specular 1, roughness 0.8) reflects Cycles' grey sky and the sheets' key light
    at grazing angles with a Fresnel of ~1 whatever the roughness, so seen from behind against the sky the dark
    crown took the background's grey over a broad band: a soft blur instead of a silhouette (even specular 0.1 kept
    it: it is the grazing Fresnel, not the level; roughness 1 kept it too). The crown's outline from behind in
    Cycles, 10-90 % rise, median / p90 over its top, px at 224 (benchmarks/hair_look crown_edge, glTF default ->
    this): astronaut 11.25/12.75 -> 2.25/3.83, group faces 0-5 10.25/12.85, 4.50/11.45, 10.25/10.75, 6.75/16.35,
    8.75/9.28, 10.50/11.05 -> 2.75/3.30, 2.00/2.00, 2.00/2.25, 4.38/5.50, 1.75/2.00, 1.75/2.00, cameraman
    2.50/22.75 -> 1.75/2.25 (the rasterised sheets' crisp crown). The attachment carries it as "extensions"
    (rig_to_gltf writes it on the attachment's material).
    A sheen was tried and rejected (the astronaut's job, Cycles 224 px, 12 samples, Blender 5.0.1; crown outline
    from behind median/p90 px, and in ¾ the hair's luminance lift over this matte material, p99 in 8-bit levels and
    the share of the hair lifted by more than 8): matte 2.25/3.83; KHR_materials_anisotropy 0.9 (Blender's importer
    sets Anisotropic and leaves the tangent to Cycles' default, radial round the vertical axis: a horizontal band)
    with specular 0.5, roughness 0.5: 6.50/15.30, lift 18.0 levels over 11.3 % (group face 1's dark hair 4.38/7.20,
    33.9 over 31.1 %: a wet, plastic look, and a grey band along the crown from behind); anisotropy 0.8 with
    specular 0.3: 8.88/12.50, 8.4 over 1.3 %; anisotropy 0.9, specular 0.1 / 0.05, roughness 0.4 / 0.35: 7.75 /
    6.00 px, lift 6.1 / 4.4 (none over 8); KHR_materials_sheen (colour 0.3/0.25/0.2, roughness 0.5; Blender: Sheen
    Weight 1): 7.25/9.28, 29.3 over 15.6 %; specular 0.2 with roughness 1: 4.25/6.28, lift 3.0 (face 1 3.50/4.50,
    8.1 over 1.1 %). Blender 5.3's importer maps them alike (aniso 6.25/15.20, specular 0.2 4.50/6.28). Any
    dielectric lobe reflects the sky at grazing angles on the crown's outline, so none both shows a highlight and
    keeps the crown crisp (≤ 3 px); test-artifacts/hair_look/hair_sheen_cycles_rejected.png."""
    return {"KHR_materials_specular": {"specularFactor": HAIR_SPECULAR}}


EDGE_WEIGHT = 0.1  # the shell's edge in front: where the hair region's weight (texture_complete.hair_weight) falls to
# ... all round the head for hair that hangs less than this (_hangs: short hair), its rim lowered to the blend's
# EDGE_WEIGHT (_edge_below_line) from NAPE_DEG[0] round the head fully by NAPE_DEG[1]. benchmarks/hair_look nape (the
# neck's albedo 0-1 mm below the hair mesh from behind, as the share of the way from the hair's luminance to the
# neck's; the depth where it reaches 0.9), before -> after: group face 4 0.31, 6 mm -> 0.81, 2 mm; face 1 0.89, 1 mm
# -> 0.99, 0 mm; face 5 0.83, 1 mm -> 1.00, 0 mm; the others 0.97-1.0 unchanged; the temples' uncovered skin coloured
# as hair (with _temple_covered) face 4 2.18 -> 0.29 %, the cameraman 2.42 -> 0.86 %; front IoU face 4 0.7650 ->
# 0.7646, face 5 0.8084 -> 0.8079, the cameraman 0.6997 -> 0.6989, face 1 0.8267 -> 0.8279.
# Test: tests/rig/test_hair_look.py::test_short_hair_covers_its_blend_into_the_nape
NAPE_EDGE_HANGS = 0.5
NAPE_DEG = (100.0, 120.0)
EDGE_M = 0.006  # ... and skin the photo sees this far below the hairline or further stays uncovered (hair_weight's)
FRINGE_M = 0.003  # the hair's least thickness in front (over a fringe, at the shell's front edge)
FRINGE_DEG = 35.0  # a fringe: the photo's hair over the forehead within this angle of the midline ...
FRINGE_ABOVE_EYES_M = 0.015  # ... and higher than this above the eyes
# FOREHEAD_COVER: short hair's shell (NAPE_EDGE_HANGS) covers the forehead's vertices (within FRINGE_DEG of the
# midline, FRINGE_ABOVE_EYES_M above the eyes) whose skin atlas holds the hair, as a bob's temples (_temple_covered):
# the texture's fringe, wider than the shell's (opened by FRINGE_OPEN_RINGS), was a notch of painted hair beside it in
# the middle of the cameraman's hairline. benchmarks/hair_look, cameraman, before -> after: front_edge 0.60 -> 0.22 mm
# (total variation 1.21 -> 1.21), fringe bare 3.0 -> 1.7 %, band 0.860 -> 0.945, jag 0.088 -> 0.070 (forehead's own
# 0.055 -> 0.019), IoU and colour unchanged; the other short-haired faces unchanged. Not for a bob: over the
# astronaut's forehead her skin's colour, near her hair's, took a fake fringe (fringe bare 4.2 -> 0.3 % but the
# front edge's total variation 1.15 -> 1.25 and synthetic strands down to the brows).
FRINGE_OPEN_RINGS = 2  # the fringe opened by this many rings of vertices (texture.fringe_weight: FRINGE_OPEN_RES)
FRINGE_EDGE_RINGS = 1  # the shell over a fringe reaches this many rings below it (_fringe_edge) ...
FRINGE_EDGE_TAPER = 0.5  # ... its ring above them FRINGE_M × this off the skin at most


def _fringe_edge(in_hair: np.ndarray, hw: np.ndarray, forehead: np.ndarray, nbr) -> np.ndarray:
    """(V,) bool: the forehead's vertices (`forehead` (V,) bool) FRINGE_EDGE_RINGS rings below the shell's fringe
    (`in_hair` (V,) where the hairline's weight `hw` (V,) is EDGE_WEIGHT or less: _fringe's and FOREHEAD_COVER's
    vertices). texture.fringe_weight paints the fringe with a soft edge, and the shell, which covers a triangle only
    when all its vertices are in, ended on the last vertices the fringe held: the triangles below its edge showed
    the fringe's fading hair, a grey band stepping from column to column with the texel edge of the photo's strands
    (the cameraman in Cycles). A ring further, the skin below the shell's edge is the forehead's.
    benchmarks/hair_look on the cameraman, before -> after: the skin 0-4 mm below the edge over 8-16 mm below, spread
    over the columns (jag) 0.081 -> 0.023 (the forehead's own 0.022 -> 0.012); band 0.943 -> 0.980; the first 2 mm
    0.832 -> 0.941 of the forehead 16-24 mm down; front edge total variation 1.30 -> 1.11; fringe bare 1.6 -> 0.3 %;
    but the skin in the shell's edge shadow 38.9 -> 48.0 % (40.2 with FRINGE_EDGE_TAPER); front IoU 0.6828 ->
    0.6831, ΔE 0.36 -> 0.37. The other jobs (astronaut, group faces 0-5) unchanged: their fringes, if any, end on
    the hairline's own blend.
    Test: tests/rig/test_hair_look.py::test_the_shell_over_a_fringe_leaves_none_of_its_soft_edge"""
    A, _ = nbr
    edge = in_hair & (hw <= EDGE_WEIGHT) & forehead
    below = np.zeros_like(edge)
    for _ in range(FRINGE_EDGE_RINGS):
        below |= ((A @ (edge | below).astype(np.float64)) > 0) & forehead & ~in_hair
    return below


def _edge_below_line(soft_m: float = 0.006) -> float:
    """How far (m) below the hairline texture_complete.hair_weight's soft edge (±`soft_m`) falls to EDGE_WEIGHT."""
    t = 0.5  # smoothstep(t) = EDGE_WEIGHT by bisection
    lo, hi = 0.0, 1.0
    for _ in range(40):
        t = (lo + hi) / 2
        lo, hi = (t, hi) if t * t * (3 - 2 * t) < EDGE_WEIGHT else (lo, t)
    return soft_m * (1 - 2 * t)


def _fringe(model, posed, K, w2c, tid, hair_mask, in_hair, phi, eye_z, nbr) -> np.ndarray:
    """(V,) bool: the forehead's vertices (within FRINGE_DEG of the midline, FRINGE_ABOVE_EYES_M above the eyes)
    that the photo sees on its hair (`hair_mask`) below the hairline (not `in_hair`), joined to the hair region
    through each other: a fringe. The texture paints it (texture.fringe_weight); without the shell over it, it
    is a flat dark patch on the skin. A lone strand or shadow labelled hair on the forehead stays skin."""
    cand = (_seen_on(model, posed, K, w2c, tid, hair_mask) & (phi < FRINGE_DEG)
            & (model.neutral[:, 2] > eye_z + FRINGE_ABOVE_EYES_M) & ~in_hair)
    if not cand.any():
        return cand
    A, _ = nbr
    # the candidates one ring closed (a vertex between hair pixels labelled skin: a highlight), then joined
    grown = cand | (((A @ cand.astype(np.float64)) >= 3) & (phi < FRINGE_DEG) & ~in_hair
                    & (model.neutral[:, 2] > eye_z + FRINGE_ABOVE_EYES_M))
    keep = grown | in_hair
    sub = A.multiply(keep[:, None]).multiply(keep[None, :]).tocsr()
    _, comp = sp.csgraph.connected_components(sub, directed=False)
    joined = np.zeros(comp.max() + 1, bool)
    joined[np.unique(comp[in_hair])] = True
    fringe = grown & joined[comp]
    # opened by FRINGE_OPEN_RINGS rings (eroded against what is neither fringe nor hair, grown back inside it): the
    # photo's strands a vertex or two wide were teeth along its edge (the cameraman's notch)
    keep = fringe.copy()
    for _ in range(FRINGE_OPEN_RINGS):
        keep &= (A @ (~(keep | in_hair)).astype(np.float64)) == 0
    for _ in range(FRINGE_OPEN_RINGS):
        keep |= ((A @ keep.astype(np.float64)) > 0) & fringe
    return keep


TEMPLE_COVER_DEG = (45.0, 100.0)  # a bob's temples: this far round the head from the face's midline ...
TEMPLE_COVER_Z_M = (-0.03, 0.08)  # ... and this high above the eyes: covered where the skin atlas holds hair there
TEMPLE_COVER_HANGS = 0.5  # ... for hair that hangs at least this much (_hangs: a bob, not sideburns)
TEMPLE_COVER_CLOSE_RINGS = 4  # ... closed by this many rings of vertices


def _temple_covered(model, atlas: np.ndarray, in_hair: np.ndarray, phi: np.ndarray, eye_z: float,
                    nbr, zone: np.ndarray | None = None) -> np.ndarray:
    """(V,) bool: a bob's temple vertices (TEMPLE_COVER_DEG round the head, TEMPLE_COVER_Z_M above the eyes, or the
    vertices of `zone` (V,) bool; not `in_hair`) whose colour in the skin `atlas` (at the vertex's first UV corner)
    is nearer the hair's (the median of the scalp's vertices: `in_hair` 6 cm or more above the eyes) than the face's
    skin beside them (20-45° round, up to 4 cm below the eyes), CIELAB, closed by a ring and joined to the hair
    region through each other, opened by a ring, closed by TEMPLE_COVER_CLOSE_RINGS within the zone and its
    enclosed holes there filled: the photo's hair over the temples beside a bob (its strands seen, or carried there
    by the completion or the mirrored side) was painted on the skin in front of the bob's inner edge, which ends at
    the hairline there. The shell covering them takes their colour from the photo where it sees them.
    benchmarks/hair_look temple (the temples' uncovered skin coloured as hair in ¾ and profile) on the jobs' rig
    stage rerun, before -> after: group face 0 26.50 % of 8046 px -> 6.20 % of 1435 px, face 3 49.83 % of 8466 px
    -> 8.87 % of 4485 px, the astronaut 7.08 % of 9811 px -> 2.61 % of 7019 px; hair vs photo from the front ΔE
    4.31 -> 3.60, 3.55 -> 3.26, 2.95 -> 3.02; IoU within 0.0001; test_instant's front render 22.39 dB (22.40).
    Test: tests/rig/test_hair_look.py::test_a_bobs_shell_covers_the_hair_painted_on_its_temples."""
    z = model.neutral[:, 2]
    corner = np.full(model.n_vertices, -1)
    corner[model.faces.ravel()] = model.face_uv.ravel()
    has = corner >= 0
    H, W = atlas.shape[:2]
    uv = atlas_uv(model.uv[np.maximum(corner, 0)])
    rgb = sample_bilinear(atlas.astype(np.float32), np.stack([uv[:, 0] * W - 0.5, uv[:, 1] * H - 0.5], axis=1))
    lab = rgb_to_lab(rgb)
    scalp = has & in_hair & (z > eye_z + 0.06)
    skin = has & (phi > 20) & (phi < 45) & (z < eye_z) & (z > eye_z - 0.04)
    if zone is None:
        zone = (phi > TEMPLE_COVER_DEG[0]) & (phi < TEMPLE_COVER_DEG[1]) & (z > eye_z + TEMPLE_COVER_Z_M[0]) \
            & (z < eye_z + TEMPLE_COVER_Z_M[1])
    zone = zone & has & ~in_hair
    if scalp.sum() < 20 or skin.sum() < 20 or not zone.any():
        return np.zeros(model.n_vertices, bool)
    hair_lab, skin_lab = np.median(lab[scalp], axis=0), np.median(lab[skin], axis=0)
    cand = zone & (np.linalg.norm(lab - hair_lab, axis=1) < np.linalg.norm(lab - skin_lab, axis=1))
    A, _ = nbr
    grown = cand | (((A @ cand.astype(np.float64)) >= 3) & zone)
    keep = grown | in_hair
    sub = A.multiply(keep[:, None]).multiply(keep[None, :]).tocsr()
    _, comp = sp.csgraph.connected_components(sub, directed=False)
    joined = np.zeros(comp.max() + 1, bool)
    joined[np.unique(comp[in_hair])] = True
    cover = grown & joined[comp]
    opened = cover & ((A @ (~(cover | in_hair)).astype(np.float64)) == 0)
    cover = opened | (((A @ opened.astype(np.float64)) > 0) & cover)
    closed = cover.copy()  # closed by TEMPLE_COVER_CLOSE_RINGS within the zone: a bay of skin (an ear's top) filled
    for _ in range(TEMPLE_COVER_CLOSE_RINGS):
        closed |= ((A @ closed.astype(np.float64)) > 0) & zone
    for _ in range(TEMPLE_COVER_CLOSE_RINGS):
        closed &= cover | ((A @ (~(closed | in_hair)).astype(np.float64)) == 0)
    cover = closed
    # holes filled: pieces of the rest that lie within the zone, enclosed by the hair (an ear's top under the bob)
    rest = ~(cover | in_hair) & has
    sub = A.multiply(rest[:, None]).multiply(rest[None, :]).tocsr()
    _, comp = sp.csgraph.connected_components(sub, directed=False)
    outside = np.zeros(comp.max() + 1, bool)
    outside[np.unique(comp[rest & ~zone])] = True
    return cover | (rest & zone & ~outside[comp])


def _photo_outline(head_and_hair: np.ndarray, K: np.ndarray, w2c: np.ndarray, margin_px: int = 2):
    """points (n, 3) → (n,) bool: whether each projects inside the photo's head and hair (H, W) bool (grown by
    `margin_px`; outside the frame counts as inside: the photo says nothing there)."""
    H, W = head_and_hair.shape
    grown = cv2.dilate(head_and_hair.astype(np.uint8), np.ones((2 * margin_px + 1,) * 2, np.uint8)).astype(bool)

    def inside(points: np.ndarray) -> np.ndarray:
        xy, _ = project(points, K, w2c)
        x, y = np.round(xy[:, 0]).astype(int), np.round(xy[:, 1]).astype(int)
        framed = (x >= 0) & (x < W) & (y >= 0) & (y < H)
        return ~framed | grown[np.clip(y, 0, H - 1), np.clip(x, 0, W - 1)]

    return inside


OUTLINE_STEPS = 12  # _within_outline's thicknesses tried, from the full one down to none


def _within_outline(base: np.ndarray, n: np.ndarray, t: np.ndarray, shell_v: np.ndarray, inside) -> np.ndarray:
    """(V,) how much thinner (m) each of the shell's vertices `shell_v` (on `base` (V, 3) offset by `t` (V,) along
    `n` (V, 3)) must be for it to project inside the photo's outline of head and hair (`inside`: _photo_outline's):
    the largest of OUTLINE_STEPS thicknesses from `t` down to 0 that does (0 where the full one does). The photo's
    reach is measured along rays from the head's centre and spread over the scalp by the image direction each
    vertex projects to, mirrored and smoothed; a bob's crown, pushed out along its normals by its sides' reach,
    stood out past the photo's hair above the temples (square shoulders from the front and from behind)."""
    out = np.zeros(len(base))
    v = shell_v
    best = np.zeros(len(v))
    found = np.zeros(len(v), bool)
    for f in np.linspace(1.0, 0.0, OUTLINE_STEPS):
        ok = inside(base[v] + n[v] * (f * t[v])[:, None]) & ~found
        best[ok] = f
        found |= ok
    out[v] = t[v] * (1.0 - best)
    return out


def _seen_on(model, posed, K, w2c, tid, mask) -> np.ndarray:
    """(V,) bool: vertices the photo sees (corners of triangles winning its z-buffer) on pixels of `mask`."""
    F_idx = visible_faces(model)
    seen = np.zeros(model.n_vertices, bool)
    seen[model.faces[F_idx[np.unique(tid[tid >= 0])]].ravel()] = True
    xy, _ = project(posed, K, w2c)
    H, W = mask.shape
    xi = np.clip(np.round(xy[:, 0]).astype(int), 0, W - 1)
    yi = np.clip(np.round(xy[:, 1]).astype(int), 0, H - 1)
    return seen & mask[yi, xi]


SMOOTH_ITERATIONS = 6


def _neighbours(faces: np.ndarray, n: int):
    """(adjacency (n, n) CSR with ones, degree (n,)) of a triangle mesh's vertices."""
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    A = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    A.data[:] = 1.0
    return A, np.asarray(A.sum(axis=1)).ravel()


def _smooth(values: np.ndarray, nbr, iterations: int) -> np.ndarray:
    """Values (n,) averaged half with their neighbours' mean, `iterations` times (vertices off the mesh kept)."""
    A, deg = nbr
    v = values.astype(np.float64)
    on = deg > 0
    for _ in range(iterations):
        v = np.where(on, 0.5 * v + 0.5 * (A @ v) / np.maximum(deg, 1), v)
    return v


EAR_PROUD_M = 0.006  # a shell vertex this much further from the head's axis than the head's nearest surface in
# its bin (5°, EAR_BIN_M high) stands out from the skull: an ear
EAR_BIN_M = 0.005
EAR_RINGS = 8  # the membrane spans this many rings round the ears: out to the skull, past the crease behind the ear
# (3 rings: its edge lay in that crease and met the skull at a sharp angle; pushed out by a bob's reach the shell
# folded there; see the module's docstring)
EAR_COVERED = 0.25  # ... filled in only where the shell covers at least this share of the ear's vertices


EAR_DEG = (40.0, 140.0)  # ears lie beside the head: this far round from the face's midline ...
EAR_Z_M = (-0.08, 0.05)  # ... and from this far below the eyes to this far above them


def _ears_filled(neutral: np.ndarray, faces: np.ndarray, nbr, shell_v: np.ndarray, side: np.ndarray,
                 axis_y: float, eye_z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(`neutral` (V, 3) with the shell's ears replaced by a membrane across their roots, the vertices replaced
    (V,) bool, the ears' own (V,) bool). Ears: the shell vertices from the ears back (`side` > 0) that stand more
    than EAR_PROUD_M proud of the nearest shell surface at their angle round the head's vertical axis (x = 0,
    y = `axis_y`) and height, on a side where they are at least EAR_COVERED of the ear (so measured on the whole
    head), beside the head (EAR_DEG, EAR_Z_M from the eyes' height `eye_z`: over the crown, where the head is
    near level, a 5 mm band of height spans centimetres of radius, and its outer half stood 'proud'; filled in
    and domed as an ear, the crown sank through the shell behind the head's top, and the scalp showed through it
    from above, group face 0). With EAR_RINGS rings of the head's skin `faces` (F, 3; `nbr` their _neighbours)
    around them, they take the harmonic (uniform-weight Laplace) interpolation of the skin outside; an opening of
    the mesh inside (the ear canal) is closed by a vertex joined to its rim, so the patch is a disc and its
    membrane has no folds where its outer ring is near convex (Tutte)."""
    def standing_out(verts):
        p = neutral[verts]
        d = p[:, :2] - [0.0, axis_y]
        th = np.floor((np.arctan2(d[:, 0], -d[:, 1]) + np.pi) / (2 * np.pi) * FALL_BINS).astype(np.int64)
        zb = np.floor(p[:, 2] / EAR_BIN_M).astype(np.int64)
        rho = np.hypot(d[:, 0], d[:, 1])
        _, inv = np.unique(th * 100000 + (zb - zb.min()), return_inverse=True)
        nearest = np.full(inv.max() + 1, np.inf)
        np.minimum.at(nearest, inv, rho)
        out = np.zeros(len(neutral), bool)
        ang = np.degrees(np.abs(np.arctan2(d[:, 0], -d[:, 1])))
        beside = ((ang > EAR_DEG[0]) & (ang < EAR_DEG[1]) & (p[:, 2] > eye_z + EAR_Z_M[0])
                  & (p[:, 2] < eye_z + EAR_Z_M[1]))
        out[verts] = (rho > nearest[inv] + EAR_PROUD_M) & (side[verts] > 0) & beside
        return out

    proud = standing_out(shell_v)
    whole = standing_out(np.unique(faces))  # the ears as the head has them
    for sign in (1.0, -1.0):  # hair ending above an ear (its top rim under the shell) leaves it as it is
        on = np.sign(neutral[:, 0]) == sign
        if (proud & on).sum() < EAR_COVERED * max(int((whole & on).sum()), 1):
            proud &= ~on
    if not proud.any():
        return neutral, proud, proud
    A, deg = nbr
    region = proud
    for _ in range(EAR_RINGS):  # out to the skull round the ear's root: a near-convex ring to span
        region = region | ((A @ region.astype(np.float64)) > 0) & (deg > 0)
    # openings: loops of boundary edges (edges of one face) inside the region, each closed by a new vertex
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(e, axis=0, return_counts=True)
    rim = uniq[(count == 1) & region[uniq].all(axis=1)]
    n = len(neutral)
    extra_i, extra_j, n_new = [], [], 0
    if len(rim):
        g = sp.coo_matrix((np.ones(len(rim)), (rim[:, 0], rim[:, 1])), shape=(n, n))
        _, loop = sp.csgraph.connected_components(g + g.T, directed=False)
        on_rim = np.unique(rim)
        for k, lab in enumerate(np.unique(loop[on_rim])):
            members = on_rim[loop[on_rim] == lab]
            extra_i += [n + k] * len(members)
            extra_j += list(members)
        n_new = len(np.unique(loop[on_rim]))
    m = n + n_new
    B = sp.coo_matrix((np.ones(len(extra_i)), (extra_i, extra_j)), shape=(m, m))
    A = (sp.block_diag([A, sp.csr_matrix((n_new, n_new))]) + B + B.T).tocsr()
    deg = np.asarray(A.sum(axis=1)).ravel()
    free = np.concatenate([region, np.ones(n_new, bool)])
    inside = np.flatnonzero(free)
    L = sp.diags(deg[inside]) - A[inside][:, inside]
    rhs = A[inside][:, ~free] @ neutral[~free[:n]]
    sol = np.column_stack([sp.linalg.spsolve(L.tocsc(), rhs[:, k]) for k in range(3)])
    out = neutral.copy()
    out[inside[inside < n]] = sol[inside < n]
    return out, region, proud


def _dome(neutral: np.ndarray, base: np.ndarray, n: np.ndarray, region: np.ndarray, proud: np.ndarray,
          nbr) -> np.ndarray:
    """(V,) the offset along the membrane's normals `n` (V, 3) that clears the ears (`proud` (V,) bool, in the
    membrane's `region` (V,) bool; `base` (V, 3): _ears_filled's): over each side's ear its greatest height above
    the membrane plus FALL_CLEARANCE_M, falling to nothing at the region's edge along the harmonic (Laplace)
    interpolation, a smooth dome; zero elsewhere."""
    out = np.zeros(len(neutral))
    if not proud.any():
        return out
    A, deg = nbr
    height = np.maximum(((neutral - base) * n).sum(axis=1), 0.0)
    ring = np.flatnonzero(region & ~proud)
    s = proud.astype(np.float64)
    if len(ring):
        L = sp.diags(deg[ring]) - A[ring][:, ring]
        s[ring] = sp.linalg.spsolve(L.tocsc(), A[ring][:, proud] @ np.ones(int(proud.sum())))
    for sign in (1.0, -1.0):
        sel = region & (np.sign(neutral[:, 0]) == sign)
        if (sel & proud).any():
            out[sel] = s[sel] * (height[sel & proud].max() + FALL_CLEARANCE_M)
    return out


def _rim(faces: np.ndarray) -> np.ndarray:
    """Vertices on the boundary edges (edges of one triangle) of a mesh."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(e, axis=0, return_counts=True)
    return np.unique(uniq[count == 1])


def _taubin(points: np.ndarray, nbr, verts: np.ndarray, rim: np.ndarray, iterations: int) -> np.ndarray:
    """Taubin's λ|μ smoothing (0.5, −0.53) of `verts` of `points` (n, 3): crumples (an ear under the hair)
    smoothed without shrinking the shell; the rim keeps its height (the hair's ends stay level)."""
    A, deg = nbr
    p = points.astype(np.float64).copy()
    on = np.zeros(len(p), bool)
    on[verts] = True
    keep_z = np.zeros(len(p), bool)
    keep_z[rim] = True
    for _ in range(iterations):
        for f in (0.5, -0.53):
            lap = (A @ p) / np.maximum(deg, 1)[:, None] - p
            step = np.where(on[:, None], f * lap, 0.0)
            step[keep_z, 2] = 0.0
            p = p + step
    return p


RIM_ITERATIONS = 10
TIDY_ITERATIONS = 3


ISLAND_SHARE = 0.1  # a piece of the hair region with under this share of the largest piece's triangles is dropped


def _without_islands(faces: np.ndarray) -> np.ndarray:
    """(F,) bool: the triangles `faces` (F, 3) of the pieces (joined by a shared vertex) with at least ISLAND_SHARE
    of the largest piece's triangles. A strand the photo shows over the forehead, apart from the hair above it
    (group face 4's spike), made a piece of its own: stood off the skin, a flat dark patch floating on the forehead
    in every render."""
    if not len(faces):
        return np.zeros(0, bool)
    n = int(faces.max()) + 1
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    A = sp.coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, label = sp.csgraph.connected_components(A, directed=False)
    size = np.bincount(label[faces[:, 0]], minlength=label.max() + 1)
    return size[label[faces[:, 0]]] >= ISLAND_SHARE * size.max()


def _tidy(faces: np.ndarray, chosen: np.ndarray, iterations: int) -> np.ndarray:
    """(F,) bool: the `chosen` (F,) triangles of a mesh `faces` (F, 3) without notches or tongues along their edge:
    `iterations` times, triangles that share at least two edges with chosen ones are added (a notch filled), then
    `iterations` times, chosen triangles with at most one chosen neighbour are dropped (a tongue one triangle wide
    peeled from its tip). Vertex selections leave both along the hairline (a tooth of the rim, a sliver hanging
    from a bob's end)."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, eid = np.unique(e, axis=0, return_inverse=True)
    eid = eid.ravel()
    F = len(faces)
    inc = sp.coo_matrix((np.ones(3 * F), (np.tile(np.arange(F), 3), eid)), shape=(F, eid.max() + 1)).tocsr()
    adj = (inc @ inc.T).tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    adj.data[:] = 1.0
    out = chosen.copy()
    for _ in range(iterations):
        out |= (adj @ out.astype(np.float64)) >= 2
    for _ in range(iterations):
        out &= (adj @ out.astype(np.float64)) >= 2
    return out


def _smooth_rim(points: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """`points` (n, 3) with the mesh's rim (its boundary edges, `faces` (F, 3)) smoothed as a curve: Taubin's λ|μ
    (0.5, −0.53) over each rim vertex's two neighbours along the rim. The rim follows the head model's triangles
    where the hair region ends (beside the cheeks, at the forehead): a sawtooth of their edges, which smoothing
    the vertices' selection or the whole shell leaves."""
    e = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    uniq, count = np.unique(e, axis=0, return_counts=True)
    b = uniq[count == 1]
    if not len(b):
        return points
    n = len(points)
    A = sp.coo_matrix((np.ones(2 * len(b)), (np.r_[b[:, 0], b[:, 1]], np.r_[b[:, 1], b[:, 0]])), shape=(n, n)).tocsr()
    deg = np.asarray(A.sum(axis=1)).ravel()
    on = deg == 2  # a rim vertex where the rim runs through (not where two loops touch)
    p = points.astype(np.float64).copy()
    for _ in range(iterations):
        for f in (0.5, -0.53):
            lap = (A @ p) / np.maximum(deg, 1)[:, None] - p
            p = p + np.where(on[:, None], f * lap, 0.0)
    return p


HANG_DZ = (0.01, -0.01)  # hair ending this high above the eyes beside the head does not hang, ending this low hangs


def _hangs(fall_dz: tuple[float, float] | None) -> float:
    """How far (0..1) the fall hangs straight (_fall_straight), by where the photo's hair ends beside the head
    (hair_fall_dz, m above the eyes; None: it says nothing, 1): none for hair ending HANG_DZ[0] or more above the
    eyes (short hair, worn up), fully from HANG_DZ[1] down (a bob)."""
    if fall_dz is None:
        return 1.0
    return float(np.clip((HANG_DZ[0] - min(fall_dz)) / (HANG_DZ[0] - HANG_DZ[1]), 0.0, 1.0))


FALL_BINS = 72  # angular bins (5°) around the head's vertical axis for the straight fall
FALL_LEAD_M = 0.01  # the fall starts flaring this far above what it clears (an ear's top)
FALL_CLEARANCE_M = 0.004  # the fallen hair passes the head (an ear) at least this far out
SHELL_LEAD_Z_M = (0.03, 0.06)  # the fall's lead fades out from this high above the eyes to this high
CROWN_Z_M = (0.07, 0.09)  # ... and the fall itself from this high to this high (the crown does not hang)


BACK_TAPER = 0.35  # behind the head the fall comes in toward the nape by this much per metre below what it hangs from
BACK_TAPER_DEG = (110.0, 160.0)  # ... none this far round from the face's midline, fully from this far
BACK_T_M = 0.015  # ... and hair that hangs lies on the skull there no thicker than this
NAPE_GAP_M = 0.01  # ... the fall never nearer the head at its own height (±NAPE_BAND_M) than this
NAPE_BAND_M = 0.01
SIDE_FLARE = 0.06  # beside the head (SIDE_FLARE_DEG either side of 90° round) the fall flares out by this per metre
SIDE_FLARE_DEG = 30.0


def _hang_radius(P: np.ndarray, b: np.ndarray, lead: np.ndarray, *sources, axis: np.ndarray,
                 least_taper: float | None = None) -> np.ndarray:
    """(n,) the radius from the head's vertical axis (x = 0, y = `axis`[1]) each point of `P` (n, 3) (in angular
    bin `b` (n,) of FALL_BINS) must have to hang clear of `sources` ((points (m, 3), clearance m), ...): the widest
    source point, plus its clearance, at least as high as (the point − its `lead` (n,)) in the bins b ± 1. Behind the
    head (BACK_TAPER_DEG) a source's radius counts less by BACK_TAPER per metre it lies above the point, so the fall
    comes in toward the nape instead of hanging straight from the back of the skull; there the point keeps
    NAPE_GAP_M off the sources at its own height (±NAPE_BAND_M). 0 where nothing is above."""
    centre = (np.arange(FALL_BINS) + 0.5) / FALL_BINS * 360.0 - 180.0
    taper = BACK_TAPER * np.clip((np.abs(centre) - BACK_TAPER_DEG[0]) / (BACK_TAPER_DEG[1] - BACK_TAPER_DEG[0]),
                                 0.0, 1.0)  # (FALL_BINS,)
    taper -= SIDE_FLARE * np.clip(1.0 - np.abs(np.abs(centre) - 90.0) / SIDE_FLARE_DEG, 0.0, 1.0)
    if least_taper is not None:  # all round (the ends' curl: _round_ends)
        taper = np.maximum(taper, least_taper)
    out = np.zeros(len(P))
    for src, clear in sources:
        d = src[:, :2] - axis
        th_s, rho_s = np.arctan2(d[:, 0], -d[:, 1]), np.hypot(d[:, 0], d[:, 1]) + clear
        z_s = src[:, 2]
        b_s = np.floor((th_s + np.pi) / (2 * np.pi) * FALL_BINS).astype(int) % FALL_BINS
        for j in range(FALL_BINS):
            srcj = np.isin(b_s, [(j - 1) % FALL_BINS, j, (j + 1) % FALL_BINS])
            tgt = np.nonzero(b == j)[0]
            if not srcj.any() or not len(tgt):
                continue
            k = taper[j]
            order = np.argsort(-z_s[srcj], kind="stable")  # from the top down
            zs, rs = z_s[srcj][order], rho_s[srcj][order]
            # the widest of everything at least as high as (the point − its lead)
            idx = np.searchsorted(-zs, -(P[tgt, 2] - lead[tgt]), side="right") - 1
            ok = idx >= 0
            t_ok, i_ok = tgt[ok], idx[ok]
            straight = np.maximum.accumulate(rs)[i_ok]
            if k < 0:  # beside the head: flaring out
                straight = np.maximum.accumulate(rs - k * zs)[i_ok] + k * P[t_ok, 2]
            elif k > 0:  # behind: tapering in, but NAPE_GAP_M clear of the sources at the point's own height (at
                # most as far out as the straight fall)
                tapered = np.maximum.accumulate(rs - k * zs)[i_ok] + k * P[t_ok, 2]
                local = 0.0
                if clear > 0:  # the head
                    near = np.abs(zs[None, :] - P[t_ok, 2][:, None]) < NAPE_BAND_M  # (t, s)
                    local = np.where(near, (rs - clear + NAPE_GAP_M)[None, :], 0.0).max(axis=1)
                straight = np.maximum(tapered, np.minimum(local, straight))
            out[t_ok] = np.maximum(out[t_ok], straight)
    return out


def _fall_straight(neutral: np.ndarray, offset: np.ndarray, shell_v: np.ndarray, head_v: np.ndarray,
                   side: np.ndarray, eye_z: float) -> np.ndarray:
    """Shell vertices (len(shell_v), 3): each moved out horizontally from the head's vertical axis until it is no
    closer to it than the shell above it, or the head above it (its ears) plus FALL_CLEARANCE_M, at the same
    angle (5° bins, ±1 bin): hair hangs, it does not follow the head in to the neck. Behind the head it tapers in
    toward the nape (BACK_TAPER), beside it it flares a little (SIDE_FLARE): _hang_radius. By `side` (V,) in [0, 1]:
    nothing in front of the temples, fully from the ears back."""
    band = neutral[(neutral[:, 2] > eye_z) & (neutral[:, 2] < eye_z + 0.05)]
    axis = np.array([0.0, (band[:, 1].min() + band[:, 1].max()) / 2])

    def polar(p):
        d = p[:, :2] - axis
        return np.arctan2(d[:, 0], -d[:, 1]), np.hypot(d[:, 0], d[:, 1])

    P = offset[shell_v]
    th, rho = polar(P)
    b = np.floor((th + np.pi) / (2 * np.pi) * FALL_BINS).astype(int) % FALL_BINS
    # the fall is led by FALL_LEAD_M only below SHELL_LEAD_Z_M above the eyes (an ear's top is lower): higher, over
    # the crown, every vertex behind the head's axis took the radius of the shell (or of the head, where the hair
    # lies flat on it) 1 cm lower and spread out round a flat cap in front of it, a fold seen from above
    # (hair_look.crown_folds)
    lead = FALL_LEAD_M * np.clip((eye_z + SHELL_LEAD_Z_M[1] - P[:, 2]) / (SHELL_LEAD_Z_M[1] - SHELL_LEAD_Z_M[0]),
                                 0.0, 1.0)
    need = np.maximum(rho, _hang_radius(P, b, lead, (P, 0.0), (neutral[head_v], FALL_CLEARANCE_M), axis=axis))
    # nothing hangs from the crown (CROWN_Z_M): round the head's axis the angular bins meet, and the apex took the
    # radius of its neighbours in them, a small pleat at the top
    s = side[shell_v] * np.clip((eye_z + CROWN_Z_M[1] - P[:, 2]) / (CROWN_Z_M[1] - CROWN_Z_M[0]), 0.0, 1.0)
    new_rho = rho + s * (need - rho)
    out = P.copy()
    scale = new_rho / np.maximum(rho, 1e-9)
    out[:, :2] = axis + (P[:, :2] - axis) * scale[:, None]
    return out


RIM_SINK_M = 0.0005  # the shell's front rim lies this far under the skin: its edge meets the forehead
RIM_SINK_SIDE = 0.3  # ... fully where the fall's weight (side) is under 1 − this, none from the ears back


def _rim_sunk(offset: np.ndarray, neutral: np.ndarray, faces: np.ndarray, rim: np.ndarray,
              side: np.ndarray) -> np.ndarray:
    """`offset` (V, 3) with the shell's rim in front (`rim` vertices, by `side` (V,): fully up to 1 − RIM_SINK_SIDE,
    the front of the fall included, none from the ears back, where the hair's ends hang free) moved along the
    skin's normal (the head `neutral` (V, 3), `faces`) to RIM_SINK_M under the skin: the rest of the shell stands
    FRINGE_M off the forehead, and its edge meets the skin instead of hovering over it. Standing off, it cast its
    shadow through the gap onto the skin below: the thin dark line along the hair's front edge in Cycles (the key
    light from above; benchmarks/hair_look.edge_shadow); and a bob's front edge, pushed out where the fall begins,
    left a gap beside the cheek through which the ear showed from the front (hair_look.ears_through)."""
    w = np.clip((1.0 - side[rim]) / RIM_SINK_SIDE, 0.0, 1.0)
    if not (w > 0).any():
        return offset
    n = vertex_normals(neutral, faces)[rim]
    lift = ((offset[rim] - neutral[rim]) * n).sum(axis=1)
    out = offset.copy()
    out[rim] += n * (w * (-RIM_SINK_M - lift))[:, None]
    return out


TUCK_M = 0.02  # a fallen bob's ends curl in toward the head over this height above them (a rounded corner)
TUCK_SHARE = 0.4  # ... or this share of how far below the eyes they end, up to TUCK_MAX_M
TUCK_MAX_M = 0.04
END_TAPER = 0.5  # ... under an ear, as far in as the head below it allows (_hang_radius's taper, all round)
OUTLINE_ZONE_M = 0.05  # ... and within this height above them keep inside the photo's outline of the head and hair


def _round_ends(neutral: np.ndarray, offset: np.ndarray, shell_v: np.ndarray, head_v: np.ndarray,
                side: np.ndarray, end_z: np.ndarray, eye_z: float, inside=None, tuck_m: float = TUCK_M,
                zone_m: float = OUTLINE_ZONE_M) -> np.ndarray:
    """Shell vertices (len(shell_v), 3) with the fallen hair's ends rounded: within `tuck_m` above the hair's
    end (`end_z` (V,): the hairline with the fall) each is moved toward the head's vertical axis along a quarter
    circle of radius `tuck_m` (nothing at its top, `tuck_m` at the end; hair ending 1 cm or more below the eyes
    curls in full, hair ending 1 cm above them or higher not at all), and within `zone_m` above it as far in
    again as needed for `inside` (points (n, 3) → (n,) bool: within the photo's outline) to hold; never closer
    than the head above it (its ears; as _fall_straight: 5° bins, FALL_LEAD_M, FALL_CLEARANCE_M, but tapering in
    by END_TAPER below it: under the ear toward the neck); by `side`
    (V,) as the fall. The straight curtain's square lower corners become round, as the photo's bob is."""
    P = offset[shell_v].copy()
    h = P[:, 2] - end_z[shell_v]
    u = np.clip(1.0 - h / tuck_m, 0.0, 1.0)
    # hair that ends above the ears (short hair) does not curl: its rim drawn in would bare the skin above the ear
    curl = np.clip((eye_z + 0.01 - end_z[shell_v]) / 0.02, 0.0, 1.0)
    inward = tuck_m * (1.0 - np.sqrt(1.0 - u**2)) * side[shell_v] * curl
    move = np.flatnonzero((side[shell_v] > 0) & (h < zone_m))
    if not len(move):
        return P
    band = neutral[(neutral[:, 2] > eye_z) & (neutral[:, 2] < eye_z + 0.05)]
    axis = np.array([0.0, (band[:, 1].min() + band[:, 1].max()) / 2])

    def polar(p):
        d = p[:, :2] - axis
        return np.floor((np.arctan2(d[:, 0], -d[:, 1]) + np.pi) / (2 * np.pi) * FALL_BINS).astype(int) % FALL_BINS, \
            np.hypot(d[:, 0], d[:, 1])

    b, rho = polar(P[move])
    # the widest head at least as high as (the vertex − FALL_LEAD_M), ±1 bin (tapering in behind: _hang_radius)
    floor = _hang_radius(P[move], b, np.full(len(move), FALL_LEAD_M), (neutral[head_v], FALL_CLEARANCE_M), axis=axis,
                         least_taper=END_TAPER)
    floor = np.minimum(rho, floor)
    new_rho = np.maximum(rho - inward[move], floor)
    d = (P[move, :2] - axis) / np.maximum(rho, 1e-9)[:, None]
    if inside is not None:  # the largest radius (of 12 down to the floor) the photo's outline holds
        weight = side[shell_v[move]]
        best = new_rho.copy()
        found = np.zeros(len(move), bool)
        for f in np.linspace(1.0, 0.0, 12):
            r = floor + f * (new_rho - floor)
            q = P[move].copy()
            q[:, :2] = axis + d * r[:, None]
            ok = inside(q) & ~found
            best[ok] = r[ok]
            found |= ok
        best[~found] = floor[~found]
        new_rho = new_rho + weight * (best - new_rho)
    P[move, :2] = axis + d * new_rho[:, None]
    return P


def hair_texture(model, atlas: np.ndarray, faces_sel: np.ndarray, axis_y: float, eye_z: float,
                 front_dz: float | None, front_profile=None) -> np.ndarray:
    """The skin atlas's scalp (above the hairline without the fall) and elsewhere the hair's median colour with
    strands: the shell's rim reaches below the hairline, and where the hair falls the atlas holds what lies
    under it (an ear, the side of the face, seen or completed), which must not show on the hair."""
    mask, pos = texel_surface(model, model.neutral, faces_sel, atlas.shape[0])[:2]
    w = np.zeros(mask.shape)
    w[mask] = hair_weight(pos[mask], hairline_height(pos[mask], axis_y, eye_z, front_dz, None, front_profile))
    if not (w > 0.5).any():
        return atlas
    hair_rgb = np.median(atlas[w > 0.5].reshape(-1, 3), axis=0)
    strands = hair_strands(hair_rgb, *w.shape, np.random.default_rng(1))
    out = atlas.astype(np.float32) * w[..., None] + strands * (1 - w[..., None])
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


HAIR_SEEN_FACING = 0.2  # a shell texel is read from the photo when it faces the camera at least this much
HAIR_SKIN_RATIO = 0.5  # a hair pixel whose colour is this much nearer the skin's than the hair's is skin (an ear)
SKIN_KEPT_DEG = 40.0  # ... within this angle of the face's midline (round the head's vertical axis)
HAIR_DETAIL_SIGMA = 1 / 128  # the seen hair's detail (strands) is what a Gaussian of this share of the atlas removes


def hair_texture_from_photo(texture: np.ndarray, shell: np.ndarray, faces: np.ndarray, uv: np.ndarray,
                            head: np.ndarray, head_faces: np.ndarray, photo: np.ndarray, hair_mask: np.ndarray,
                            K: np.ndarray, w2c: np.ndarray, skin_mask: np.ndarray | None = None
                            ) -> tuple[np.ndarray, dict]:
    """The hair mesh's texture (res, 2·res, 3) uint8 with the photo's own hair where the photo sees the shell, and
    the hair's own colour statistics elsewhere, instead of the scalp's projection and one median colour:
    - seen: every texel of the shell (vertices `shell` (n, 3) in the photo's pose, outward `faces`, atlas `uv`
      (n, 2)) that faces the camera (K, w2c), is nearest to it on the z-buffer of the shell and the head (`head`
      (V, 3), `head_faces`) and lands on the photo's hair (`hair_mask` (H, W)) takes the photo's colour there,
      averaged over hair pixels only, unless far nearer in colour (CIELAB, HAIR_SKIN_RATIO) to the photo's skin
      (`skin_mask` (H, W)) than to its hair (an ear or a forehead labelled hair; hair's highlights are kept) or
      of a hue the hair has nowhere (_usual_hair_chroma against `texture`'s hair: a grey shirt labelled hair);
    - unseen: the seen hair's colour continued over the shell in 3D (texture_complete.residual_on_head: the ends'
      and the sides' tones carry round the back, fading a few cm away) on the seen hair's median colour, with
      strands as strong as the seen hair's own detail (its high-pass spread, not a fixed 12 %), laid out on the
      shell round the head's axis (strands_on_shell: the atlas's strands, stretched where the fall leaves the
      scalp, were vertical streaks) and as elongated as the photo's hair's grain (hair_anisotropy; the fall from
      behind against the photo's hair, benchmarks/hair_look.py: astronaut 41.6 -> 3.7, group faces 3.3-31.8 ->
      1.0-3.1);
    - joined: the seen colours feathered into the rest over a few texels; texels the photo sees on its skin
      (`skin_mask`: a forehead under the shell's front edge, within SKIN_KEPT_DEG of the midline) keep
      `texture`'s colour (the skin's own).
    `texture`: the texture so far (hair_texture's), kept where the shell has no texel. → (texture, stats)."""
    res = texture.shape[0]
    Ht, Wt = res, 2 * res
    tid, bary, _ = rasterize(uv * [Wt, Ht] - 0.5, np.zeros(len(uv)), faces, Ht, Wt)
    texels = tid >= 0
    stats = {"hair_texels_seen": 0.0}
    if texels.sum() < 50:
        return texture, stats
    nrm = vertex_normals(shell, faces)
    attr = interpolate(tid, bary, faces, np.concatenate([shell, nrm], axis=1)).astype(np.float64)
    P, N = attr[texels, :3], attr[texels, 3:]
    N /= np.maximum(np.linalg.norm(N, axis=1, keepdims=True), 1e-9)
    # the photo's z-buffer of head and shell, drawn finer for a small photo (texture._seen_vertices' reason)
    Hp, Wp = hair_mask.shape
    both = np.concatenate([head, shell])
    both_f = np.concatenate([head_faces, faces + len(head)])
    xy, z = project(both, K, w2c)
    used = np.unique(both_f)
    scale = int(np.clip(np.ceil(400 / max(float(np.max(xy[used].max(0) - xy[used].min(0))), 1.0)), 1, 4))
    _, _, zbuf = rasterize((xy + 0.5) * scale - 0.5, z, both_f, Hp * scale, Wp * scale, cull_backfaces=True)
    pxy, pz = project(P, K, w2c)
    xs = np.clip(np.round((pxy[:, 0] + 0.5) * scale - 0.5).astype(int), 0, Wp * scale - 1)
    ys = np.clip(np.round((pxy[:, 1] + 0.5) * scale - 0.5).astype(int), 0, Hp * scale - 1)
    cam = -w2c[:3, :3].T @ w2c[:3, 3]
    view = cam - P
    facing = (N * view).sum(axis=1) / np.maximum(np.linalg.norm(view, axis=1), 1e-9)
    inside = (pxy[:, 0] >= 0) & (pxy[:, 0] <= Wp - 1) & (pxy[:, 1] >= 0) & (pxy[:, 1] <= Hp - 1)
    front = inside & (facing > HAIR_SEEN_FACING) & (pz <= zbuf[ys, xs] + 0.004)
    # the photo's hair pixels only: bilinear weights renormalised over them
    m = hair_mask.astype(np.float32)[..., None]
    pm = sample_bilinear(np.concatenate([photo[..., :3].astype(np.float32) * m, m], axis=-1), pxy)
    seen = front & (pm[:, 3] > 0.5)
    col = pm[:, :3] / np.maximum(pm[:, 3:], 1e-6)
    if skin_mask is not None and skin_mask.sum() > 50 and hair_mask.sum() > 50:
        lab = rgb_to_lab(col)
        d_skin = np.linalg.norm(lab - rgb_to_lab(np.median(photo[skin_mask][:, :3], axis=0)[None]), axis=1)
        d_hair = np.linalg.norm(lab - rgb_to_lab(np.median(photo[hair_mask][:, :3], axis=0)[None]), axis=1)
        seen &= d_skin > HAIR_SKIN_RATIO * d_hair
    # nor of a hue the hair has nowhere (a grey shirt labelled hair): against the hair the texture has so far
    # (the scalp's, read inside the head's outline, and its median), not the photo's hair label, which may be wrong
    seen &= _usual_hair_chroma(rgb_to_lab(col), rgb_to_lab(texture[texels].astype(np.float64)))
    stats["hair_texels_seen"] = round(float(seen.mean()), 4)
    if seen.sum() < 50:
        return texture, stats
    hair_rgb = np.median(col[seen], axis=0)
    # the seen hair's detail: high-pass of its luminance over the atlas, its robust spread
    lum_w = np.array([0.299, 0.587, 0.114], np.float32)
    grid = np.zeros((Ht, Wt, 3), np.float32)
    have = np.zeros((Ht, Wt), bool)
    idx = np.nonzero(texels)
    grid[idx[0][seen], idx[1][seen]] = col[seen]
    have[idx[0][seen], idx[1][seen]] = True
    filled = pull_push(grid, have)
    sig = max(1.0, res * HAIR_DETAIL_SIGMA)
    hp = (filled - cv2.GaussianBlur(filled, (0, 0), sig)) @ lum_w
    spread = 1.4826 * float(np.median(np.abs(hp[have] - np.median(hp[have]))))
    amp = float(np.clip(spread / max(float(hair_rgb @ lum_w), 1.0), 0.03, 0.35))
    # the strands as elongated as the photo's hair is anisotropic (a render at about 1.3 mm a pixel shows noise
    # of aspect a with an energy ratio near a^0.65: the power 1.5 carries the photo's ratio over)
    ratio = hair_anisotropy(photo[..., :3] @ lum_w, hair_mask,
                            STRAND_HIGHPASS_M * K[0, 0] / max(float(np.median(pz)), 1e-6))
    aspect = float(np.clip(ratio ** 1.5, *STRAND_ASPECT))
    strands = hair_rgb * (1.0 + amp * strands_on_shell(P, aspect, np.random.default_rng(2), N))[:, None]
    full = np.zeros((Ht, Wt, 3), np.float32)
    full[idx] = strands
    strands = full
    pos = np.zeros((Ht, Wt, 3))
    pos[idx] = P
    resid = np.where(have[..., None], grid - hair_rgb, 0).astype(np.float32)
    low = residual_on_head(resid, have, texels, pos, cell_m=0.008, sigma_cells=2.0)
    out = strands + low
    # feathered: the seen texels themselves, blended in over a few texels from the seen region's edge
    inner = cv2.distanceTransform(have.astype(np.uint8), cv2.DIST_L2, 3)
    a = np.clip(inner / max(1.0, res / 128), 0, 1)[..., None]
    out = a * grid + (1 - a) * out
    tex = texture.astype(np.float32)
    if skin_mask is not None:  # where the photo sees skin through the shell's edge (a forehead), it stays as it was
        # (over the forehead only: beside the face the shell stands out over the ear and the cheek's edge, and
        # their skin painted on it is a ragged skin-coloured band along the bob's inner edge)
        c = (P[:, :2].min(axis=0) + P[:, :2].max(axis=0)) / 2
        ahead = np.degrees(np.arctan2(np.abs(P[:, 0] - c[0]), -(P[:, 1] - c[1]))) < SKIN_KEPT_DEG
        on_skin = np.zeros((Ht, Wt), np.float32)
        on_skin[idx] = front & ahead & (sample_bilinear(skin_mask.astype(np.float32)[..., None], pxy)[:, 0] > 0.5)
        k = cv2.GaussianBlur(on_skin, (0, 0), max(1.0, res / 256))[..., None]
        out = k * tex + (1 - k) * out
    tex[texels] = out[texels]
    stats.update({"hair_rgb_photo": [round(float(c) / 255, 4) for c in hair_rgb], "strand_amplitude": round(amp, 3)})
    return np.clip(tex + 0.5, 0, 255).astype(np.uint8), stats


STRAND_HIGHPASS_M = 0.0015  # the photo's hair strands: its luminance's detail finer than this (a Gaussian's sigma)
STRAND_ASPECT = (2.0, 6.0)  # the synthesised strands' length over width, from the photo's hair, within these (hair
# always has a grain: isotropic noise, even for curls, reads as felt)
STRAND_WIDTH_M = (0.0004, 0.002)  # two octaves of strands: fine ones and clumps (sigma across, in metres)
STRAND_CELL_M = 0.0002  # the strands' grid round the head's vertical axis
STRAND_RADIUS_M = 0.09  # ... its arc length measured at this radius (strands meet at the crown)


def hair_anisotropy(lum: np.ndarray, mask: np.ndarray, sigma_px: float) -> float:
    """The photo's hair texture's horizontal over vertical gradient energy: the luminance `lum` (H, W) high-passed
    (minus its Gaussian of `sigma_px`, taken over `mask` (H, W) bool only), its Sobel gradients' mean squares over
    the mask eroded by 2 px (not its outline). Straight hanging hair (vertical strands) gives > 1, curls about 1,
    waves across the head < 1; 1.0 where the mask is too small to say."""
    inner = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if inner.sum() < 50:
        return 1.0
    m = mask.astype(np.float32)
    lum = lum.astype(np.float32)
    sigma_px = max(float(sigma_px), 0.7)
    low = cv2.GaussianBlur(lum * m, (0, 0), sigma_px) / np.maximum(cv2.GaussianBlur(m, (0, 0), sigma_px), 1e-6)
    hp = lum - low
    gx = cv2.Sobel(hp, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(hp, cv2.CV_32F, 0, 1, ksize=3)
    return float((gx[inner] ** 2).mean() / max(float((gy[inner] ** 2).mean()), 1e-12))


def _strand_noise(H: int, W: int, aspect: float, rng: np.random.Generator, wrap: bool) -> np.ndarray:
    """(H, W) unit-spread strand noise on a grid of STRAND_CELL_M cells: white noise Gaussian-filtered `aspect` times
    longer along the rows' axis (down the grid) than across, two octaves (STRAND_WIDTH_M); `wrap`: seamless across
    the columns' ends (round the head)."""
    grid = np.zeros((H, W), np.float32)
    for k, width in enumerate(STRAND_WIDTH_M):
        sx = width / STRAND_CELL_M
        sy = aspect * sx
        pad = int(np.ceil(4 * sx)) if wrap else 0
        noise = rng.standard_normal((H, W)).astype(np.float32)
        noise = np.pad(noise, ((0, 0), (pad, pad)), mode="wrap")  # round the head without a seam
        noise = cv2.GaussianBlur(noise, (0, 0), sigmaX=sx, sigmaY=sy)[:, pad:pad + W]
        grid += noise / max(float(noise.std()), 1e-6) * (1.0 if k == 0 else 0.7)
    return grid / max(float(grid.std()), 1e-6)


STRAND_LEVEL_NZ = (0.5, 0.85)  # the shell's top (its normal this far up and more) takes strands laid out from above


def strands_on_shell(points: np.ndarray, aspect: float, rng: np.random.Generator,
                     normals: np.ndarray | None = None) -> np.ndarray:
    """(n,) zero-mean unit-spread strand noise at points (n, 3) of the hair (world, +Z up): Gaussian-filtered
    white noise on a grid of arc length round the head's vertical axis (at STRAND_RADIUS_M, the seam at the face)
    by height, `aspect` times longer than wide (along the height: strands hang), two octaves (STRAND_WIDTH_M).
    Laid out on the head, not the atlas: a texel stretched where the hair falls away from the scalp does not
    stretch its strands into streaks. Faded out within 3 cm of the axis (the crown, where the grid's arcs crowd).
    With the shell's `normals` (n, 3), its top (normals up by STRAND_LEVEL_NZ) takes strands laid out from above
    instead (a grid on x, y, running front to back): round the axis the strands, as long as the head is high, were
    long rays from a flat patch at the crown, seen from above (hair_look.crown_tone's detail)."""
    x0, x1 = points[:, 0].min(), points[:, 0].max()
    y0, y1 = points[:, 1].min(), points[:, 1].max()
    d = points[:, :2] - [(x0 + x1) / 2, (y0 + y1) / 2]
    theta = np.arctan2(d[:, 0], d[:, 1])  # 0 at the back (+Y), ±π at the face
    rho = np.hypot(d[:, 0], d[:, 1])
    W = int(np.ceil(2 * np.pi * STRAND_RADIUS_M / STRAND_CELL_M))
    z0 = points[:, 2].min()
    H = int(np.ceil((points[:, 2].max() - z0) / STRAND_CELL_M)) + 2
    grid = _strand_noise(H, W, aspect, rng, wrap=True)
    u = (theta + np.pi) / (2 * np.pi) * W - 0.5
    v = (points[:, 2] - z0) / STRAND_CELL_M
    out = sample_bilinear(np.pad(grid, ((0, 0), (0, 1)), mode="wrap")[..., None], np.stack([u % W, v], axis=1))[:, 0]
    out = out * np.clip((rho - 0.01) / 0.02, 0.0, 1.0)
    if normals is None:
        return out
    nz = np.abs(normals[:, 2]) / np.maximum(np.linalg.norm(normals, axis=1), 1e-12)
    level = np.clip((nz - STRAND_LEVEL_NZ[0]) / (STRAND_LEVEL_NZ[1] - STRAND_LEVEL_NZ[0]), 0.0, 1.0)
    if not (level > 0).any():
        return out
    top = points[level > 0]
    lo = top[:, :2].min(axis=0)
    Hy, Wx = (np.ceil((top[:, :2].max(axis=0) - lo) / STRAND_CELL_M).astype(int) + 2)[::-1]
    flat = _strand_noise(int(Hy), int(Wx), aspect, rng, wrap=False)  # rows along y: strands run front to back
    xy = (points[:, :2] - lo) / STRAND_CELL_M
    above = sample_bilinear(flat[..., None], np.clip(xy, 0, [Wx - 1, Hy - 1]))[:, 0]
    # the two (independent, unit spread) by their share, brought back to a unit spread where they mix
    return (out * (1.0 - level) + above * level) / np.hypot(1.0 - level, level)


# Tried and rejected (benchmarks/hair_look spots, group face 0's pale greenish spots on her crown; hue off by 12° /
# 10 L* paler in ¾ 0.37 / 2.12 %): photo colours further than 12° from the seen hair's median hue not read (where its
# chroma is 20 or more): 0 / 2.25 %, but hair vs the photo from the front ΔE astronaut 2.60 -> 3.39, face 0 3.30 ->
# 3.41, face 3 2.31 -> 2.46; only where the shell is seen at a grazing angle (facing < 0.5): 0.10 / 2.23 %, ΔE 2.77 /
# 3.34 / 2.39; also not read 15 L* above the median there: 0.11 / 2.08 %, group face 1's ΔE 1.09 -> 1.95. The read
# weighted by facing (full at 0.6): 0.07 / 1.55 %, face 0's ΔE 4.08. The pale spots are the photo's own lit strands
# at her crown (the greenish ones its olive roots at the parting); in Cycles the hue test took the greenish spot away
# and left the pale ones.
HAIR_CHROMA_SPREADS = 3.0  # a colour further than this many of the hair's robust chroma spreads from its median ...
HAIR_CHROMA_MIN = 15.0  # ... and further than this (ΔE in a*b*) is not the hair's


def _usual_hair_chroma(lab: np.ndarray, hair_lab: np.ndarray) -> np.ndarray:
    """(M,) bool: colours (M, 3) CIELAB whose chroma (a*, b*) lies within the usual range of the hair's colours
    `hair_lab` (N, 3): HAIR_CHROMA_SPREADS robust spreads (1.4826 × the median distance from their median), at least
    HAIR_CHROMA_MIN. Lightness is left free (roots, highlights)."""
    centre = np.median(hair_lab[:, 1:], axis=0)
    spread = 1.4826 * float(np.median(np.linalg.norm(hair_lab[:, 1:] - centre, axis=1)))
    return np.linalg.norm(lab[:, 1:] - centre, axis=1) <= max(HAIR_CHROMA_MIN, HAIR_CHROMA_SPREADS * spread)
