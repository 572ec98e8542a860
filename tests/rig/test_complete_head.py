"""A complete head from one photo, against ground truth: the Lee Perry-Smith scan (known albedo) lit and
rendered over blue/green stripes with a white collar (benchmarks/complete_head.py's scene, smaller). Only the
head's pixels may reach the texture, every texel is coloured, and the result seen from the side and the back is
closer to the scan's albedo than the photo's colours diffused."""

import numpy as np
import pytest

from tests.conftest import load_benchmark

SIZE = 256


def _analysed(photo: np.ndarray):
    """(the face stage's analysis of a SIZE × SIZE render: MediaPipe's 478 landmarks and their box; its matte)."""
    from headforge.backend.face.matte import mediapipe_matte
    from headforge.backend.fitting.landmarks import mediapipe_478

    mp = mediapipe_478(photo)
    assert mp is not None, "MediaPipe finds no face in the render"
    bbox = np.array([*mp[:, :2].min(axis=0), *mp[:, :2].max(axis=0)])
    analysis = {"image_size": [SIZE, SIZE], "face": {"bbox": bbox.tolist(), "landmarks_478": mp.tolist(),
                                                     "landmarks_68": None}}
    return analysis, mediapipe_matte(photo, bbox)


@pytest.fixture(scope="module")
def scene(shared):
    """(benchmark module, scan, photo uint8, truth head mask, K, w2c, analysis, matte)."""
    bench = load_benchmark("complete_head")
    lps = bench.load_lps()
    photo, head, K, w2c = bench.make_photo(lps, SIZE)
    photo8 = (photo * 255).round().astype(np.uint8)
    return bench, lps, photo8, head, K, w2c, *_analysed(photo8)


def test_only_head_pixels_are_labelled_skin(scene):
    from headforge.backend.rig.photo_parse import HAIR, SKIN, parse_photo

    bench, lps, photo, head, K, w2c, analysis, matte = scene
    parse = parse_photo(photo, np.array(analysis["face"]["landmarks_478"]), matte)
    skin = parse.labels == SKIN
    precision = (skin & head).sum() / skin.sum()
    recall = (skin & head).sum() / head.sum()
    print(f"skin label vs the scan's mask: precision {precision:.4f}, recall {recall:.3f}; "
          f"hair fraction {parse.hair_fraction:.3f}")
    assert precision > 0.995  # stripes and collar are never skin
    assert recall > 0.6  # most of the head (the shadowed neck under the jaw is left out)
    assert parse.hair_rgb is None  # a shaved head: no hair colour
    assert not (parse.labels[~head & (photo.min(axis=2) > 235)] == SKIN).any()  # the white collar
    assert (parse.labels == HAIR).sum() < 0.05 * head.sum()


@pytest.fixture(scope="module")
def completed(scene, ict):
    from headforge.backend.rig.photo_rig import rig_from_photo

    bench, lps, photo, head, K, w2c, analysis, matte = scene
    from headforge.backend.rig.texture import bake_photo_texture

    rig, atlas, fit, lm, info = rig_from_photo(ict, photo, analysis, texture_size=256, matte=matte)
    # without the photo's labels: every pixel projected, the rest diffused
    before = bake_photo_texture(ict, ict.vertices(fit.identity, fit.expression), fit.K, fit.w2c, photo, res=256)
    return rig, atlas, fit, info, before[0], before[1]


def _novel_psnr(scene, rig, atlas, fit, degs=(90, -90, 180)):
    """Masked PSNR of the rig against the scan, both turned by each of `degs` (benchmarks/complete_head)."""
    bench, lps, photo, head, K, w2c, analysis, matte = scene
    rows, _ = bench.turned_views(lps, rig, atlas, fit.K, fit.w2c, K, w2c, SIZE, degs)
    return np.array([r[1] for r in rows])


def test_every_texel_coloured_and_nothing_leaks(scene, completed, ict):
    from headforge.backend.rig.texture import skin_faces, texel_surface

    bench = scene[0]
    rig, atlas, fit, info, atlas_before, info_before = completed
    tex = info["texture"]
    assert tex["from_photo"] + tex["mirrored"] + tex["completed"] == pytest.approx(1.0, abs=1e-6)
    assert tex["from_photo"] > 0.2  # 0.267 before the reads at the photo's outline gave way (outline_trust): 0.229
    texels = texel_surface(ict, rig.basis, skin_faces(ict), atlas.shape[0])[0]
    leak, leak_before = bench.leak_fraction(atlas, texels), bench.leak_fraction(atlas_before, texels)
    print(f"leak: {100 * leak:.2f}% of texels background/collar coloured (every pixel projected: "
          f"{100 * leak_before:.2f}%)")
    assert leak_before > 0.05  # the scene does tempt: projecting everything paints stripes and collar
    assert leak < 0.003
    assert tex["light_sh1"] is not None and tex["light_sh1"][1] < 0  # lit from the subject's right (−X)
    assert info["hair_mesh"] is None and tex["hair_rgb"] is None  # a shaved head: no hair volume, no hair


def test_side_and_back_views_match_the_scan(scene, completed):
    rig, atlas, fit, info, atlas_before, _ = completed
    after, before = _novel_psnr(scene, rig, atlas, fit), _novel_psnr(scene, rig, atlas_before, fit)
    print(f"masked PSNR at +90, -90, 180: {np.round(after, 2)} dB (photo projected and diffused: "
          f"{np.round(before, 2)} dB)")
    assert after.mean() > before.mean() + 4.0
    assert after.min() > 18.0
    # 24.01 dB with the cast shadows under the jaw kept as skin colour, 24.31 without, 24.57 with the dark neck
    # below the chin left to the completion too (24.42 on later fits); labels read between pixels: 24.39 (the seen
    # texels that seed the completion change at the labels' edges: ±0.04 dB with their softening 0.35-1.0 px;
    # the 384 px benchmark's novel views are unchanged, 22.98 dB)
    assert after.mean() > 24.35


def test_shading_fit_recovers_the_light():
    from headforge.backend.rig.texture_complete import fit_shading, sh1

    rng = np.random.default_rng(0)
    n = rng.standard_normal((4000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    n = n[n[:, 1] < 0.2]  # the side a camera on −Y sees
    c_true = np.array([150.0, -30.0, -40.0, 20.0])
    grey = (sh1(n) @ c_true)[:, None] * np.ones(3)
    grey[:200] *= 0.3  # a beard and brows: dark outliers
    c = fit_shading(grey, n)
    assert np.abs(c - c_true).max() < 2.0, c


def test_blond_hair_coloured_like_skin_is_not_skin(scene):
    """Hair whose chroma is the skin's (blond under warm light) is told apart by the edge where it meets the
    face: a strand-textured cap painted over the scan's crown must not be labelled skin."""
    from headforge.backend.rig.photo_parse import HAIR, SKIN, parse_photo

    bench, lps, photo, head, K, w2c, analysis, matte = scene
    pts = np.array(analysis["face"]["landmarks_478"])[:, :2]
    rows = np.nonzero(head.any(axis=1))[0]
    brow_y = pts[[70, 300], 1].mean()
    top = rows.min()
    from headforge.backend.fitting.landmarks import MP_FACE_OVAL

    oval_top = pts[list(MP_FACE_OVAL), 1].min()
    cut = int(top + 0.95 * (oval_top - top))  # a cap over the crown, down to the face's top (the hairline)
    cap = head.copy()
    cap[cut:] = False
    skin = np.median(photo[head & (np.arange(photo.shape[0])[:, None] > brow_y)], axis=0).astype(np.float64)
    rng = np.random.default_rng(0)
    strands = np.repeat(rng.uniform(0.8, 1.05, (1, photo.shape[1])), photo.shape[0], axis=0)
    hair = np.clip(skin[None, None] * np.array([1.0, 0.92, 0.8]) * strands[..., None] * 0.85, 0, 255)
    img = np.where(cap[..., None], hair, photo).astype(np.uint8)
    parse = parse_photo(img, pts, matte)
    on_cap = parse.labels[cap]
    skin_lab = parse.labels == SKIN
    print(f"blond cap: {100 * (on_cap == SKIN).mean():.1f}% labelled skin, {100 * (on_cap == HAIR).mean():.1f}% "
          f"hair; skin precision {(skin_lab & head & ~cap).sum() / skin_lab.sum():.4f}")
    assert (on_cap == SKIN).mean() < 0.1
    assert (on_cap == HAIR).mean() > 0.6
    assert parse.hair_rgb is not None


def test_microphone_over_the_jaw_stays_out_of_the_texture(scene, ict):
    """A dark microphone in front of the jaw (inside the face's outline): labelled occluder, never skin, and the
    jaw's texels come from the mirror side or the completion, not from the microphone."""
    import cv2

    from headforge.backend.rig.photo_parse import OCCLUDER, SKIN, parse_photo
    from headforge.backend.rig.photo_rig import rig_from_photo
    from headforge.backend.rig.texture import skin_faces, texel_surface

    bench, lps, photo, head, K, w2c, analysis, matte = scene
    pts = np.array(analysis["face"]["landmarks_478"])[:, :2]
    mic = np.zeros(head.shape, np.uint8)
    jaw = pts[172]  # the jaw's corner on the image's left
    centre = (jaw + pts[152]) / 2
    cv2.ellipse(mic, (int(centre[0]), int(centre[1])), (10, 7), 30, 0, 360, 1, -1)
    cv2.line(mic, (int(centre[0]), int(centre[1])), (int(centre[0]) - 30, int(centre[1]) + 60), 1, 4)
    mic = mic.astype(bool)
    img = photo.copy()
    img[mic] = (38, 38, 42)
    parse = parse_photo(img, pts, matte)
    print(f"microphone: {100 * (parse.labels[mic] == OCCLUDER).mean():.1f}% occluder, "
          f"{100 * (parse.labels[mic] == SKIN).mean():.2f}% skin")
    assert (parse.labels[mic] == SKIN).mean() < 0.01
    rig, atlas, fit, lm, info = rig_from_photo(ict, img, analysis, texture_size=256, matte=matte)
    from headforge.backend.rig.texture import bake_photo_texture

    texels = texel_surface(ict, rig.basis, skin_faces(ict), atlas.shape[0])[0]
    before = bake_photo_texture(ict, ict.vertices(fit.identity, fit.expression), fit.K, fit.w2c, img, res=256)[0]

    def dark_grey(at):
        a = at[texels].astype(np.int32)
        return float(((a.max(axis=1) < 70) & (a.max(axis=1) - a.min(axis=1) < 12)).mean())

    print(f"  dark grey texels {100 * dark_grey(atlas):.3f}% (every pixel projected: {100 * dark_grey(before):.3f}%)")
    assert dark_grey(before) > 0.002  # the microphone does land on the jaw when nothing keeps it out
    assert dark_grey(atlas) < 0.001


def _teeth_pixels(rig, keys):
    """Upper and lower teeth pixels of the rig seen from the front (orbit camera, 25° lens, 256 px)."""
    import dataclasses

    from headforge.backend.cameras import orbit_c2w_opencv
    from headforge.backend.fitting.photo import default_focal
    from headforge.backend.rig.render import render_rig

    from headforge.backend.headmodel import ARKIT_52

    teeth = [p for p in rig.primitives if p.name == "teeth"][0]
    move = np.linalg.norm(rig.deltas[ARKIT_52.index("jawOpen")][teeth.vertex_ids], axis=1)
    colours = np.where((move <= 0.5 * move.max())[:, None], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])  # upper: green
    prims = [dataclasses.replace(p, colour=colours) if p is teeth else p for p in rig.primitives]
    f = default_focal(256, 256) * 4
    K = np.array([[f, 0, 127.5], [0, f, 127.5], [0, 0, 1.0]])
    T = np.eye(4)
    T[:3, 3] = -rig.basis[teeth.vertex_ids].mean(axis=0)
    img, _ = render_rig(dataclasses.replace(rig, primitives=prims), None, K,
                        np.linalg.inv(orbit_c2w_opencv(0.0, 0.0, radius=0.75)) @ T, (256, 256), shape_keys=keys)
    return int((img[..., 1] > 0.99).sum()), int((img[..., 2] > 0.99).sum())


def test_open_mouth_shows_the_upper_teeth(ict):
    """ICT's jawOpen lowers the upper lip over its upper incisors; placed by show_upper_teeth they show below it
    when the mouth opens and stay hidden when it is closed."""
    from headforge.backend.rig.build import build_rig
    from headforge.backend.rig.teeth import show_upper_teeth

    rig = build_rig(ict, np.zeros(ict.n_identity))
    before, closed_before = _teeth_pixels(rig, {"jawOpen": 1.0}), _teeth_pixels(rig, None)
    drop = show_upper_teeth(ict, rig)
    after, closed = _teeth_pixels(rig, {"jawOpen": 1.0}), _teeth_pixels(rig, None)
    print(f"upper teeth moved down {1000 * drop:.1f} mm; jawOpen 1 shows upper/lower teeth pixels {after} "
          f"(before {before}); closed mouth {closed} (before {closed_before})")
    assert 0 < drop <= 0.003
    # jawOpen carries them down with the upper lip for what the drop cannot reach: 810 px (558 at SHOW_M 3.5 mm,
    # 240 with the neutral drop alone at 2 mm)
    assert rig.extras["upper_teeth_follow_m"] > 0.001
    assert after[0] > max(600, 4 * before[0])
    # the closed mouth: through the neutral lips' seam the same sliver shows, no more
    assert sum(closed) <= sum(closed_before) + 20


def test_lifted_shadows_keep_the_skin_colour():
    """Skin under a side light: its shadows are darker and redder (light scattered under the skin). Dividing the
    light out lifts them; with the light's colour by exposure divided out too (texture_complete.light_tint), they
    keep the skin's colour instead of turning orange."""
    from skimage.color import rgb2lab

    from headforge.backend.rig.texture_complete import delight, fit_shading, light_tint, sh1

    rng = np.random.default_rng(1)
    n = rng.standard_normal((6000, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    n = n[n[:, 1] < 0.1]  # the side a camera on −Y sees
    albedo = np.array([205.0, 150.0, 128.0])
    s = np.clip(sh1(n) @ np.array([0.75, -0.35, -0.35, 0.2]), 0.2, None)  # lit from the subject's right and front
    rel = s / s.mean()
    tint = 1 + np.clip(1 - rel, 0, 1)[:, None] * np.array([0.15, -0.1, -0.2])  # redder, more saturated shadows
    photo = albedo * rel[:, None] * tint
    light = fit_shading(photo, n)
    mean_s = float((sh1(n) @ light).mean())

    def chroma_error(c):
        lab, ref = rgb2lab(np.clip(c / 255, 0, 1)[None]), rgb2lab(albedo[None, None] / 255)
        return np.hypot(*(lab[0, :, 1:] - ref[0, 0, 1:]).T)

    plain = chroma_error(delight(photo, n, light, mean_s))
    kept = chroma_error(delight(photo, n, light, mean_s, light_tint(photo, n, light, mean_s)))
    print(f"chroma error (ΔE a*b*) of the albedo, p90: {np.percentile(kept, 90):.2f} with the light's tint divided "
          f"out, {np.percentile(plain, 90):.2f} without")
    assert np.percentile(kept, 90) < 0.6 * np.percentile(plain, 90)
    assert np.median(kept) < 3.0


def _tone_curve(x: np.ndarray, contrast: float = 0.8) -> np.ndarray:
    """A camera's S-shaped tone curve on values (...) in [0, 1], per channel: darks pressed down and highlights
    compressed, so a shadow comes out more saturated than the lit skin and a highlight paler."""
    return x + contrast * (x * x * (3 - 2 * x) - x)


def test_side_lit_shadows_keep_the_known_albedo(scene, completed, ict):
    """The scan (known albedo) lit from the subject's right by a white key light (0.9 n·l) with a warm fill in its
    shadow (ambient (0.3, 0.2, 0.14): light scattered under the skin, a warm room), through a camera's S-shaped
    tone curve: the shadowed cheek comes out darker and far more orange than the lit one (as the group photo's
    laughing man's did). On the skin the photo sees well, the baked texture's chroma against the scan's albedo
    read at the same texels (a*b* distance, CIELAB, the truth brought to the texel's lightness: L*+16 scaled; the
    texture's brightness is the mean shading's): the shadowed side (exposure below 3/4 of the median) must stray
    no further than the lit side (exposure above the median) does. Beyond the lit side's median error, median /
    p90 over the shadowed side: 1.98 / 5.37 with the light's tint divided out (texture_complete.light_tint); the
    old shadow pull toward the lit skin's colour (SHADOW_PULL 0.7) 3.65 / 9.09; plain de-lighting 10.33 / 13.88.
    (The whole face takes the colour the skin has at its albedo's exposure, where the warm fill still shows: the
    lit side's own error is 19.3 here, 12.0 with the old code, which left the lit side as the photo had it.)"""
    from headforge.backend.headmodel.base import mirror_map
    from headforge.backend.render.image import rgb_to_lab
    from headforge.backend.rig.photo_parse import SKIN
    from headforge.backend.rig.photo_rig import _photo_view, landmarks_from_analysis
    from headforge.backend.rig.texture import PhotoView, _sample_view, bake_photo_texture, skin_faces, texel_surface

    bench, lps, photo, head, K, w2c, analysis, matte = scene
    fit = completed[2]  # the photo's landmarks are the scene's: so is the fit
    side = np.array([-1.0, -0.35, 0.25])  # toward the light: the subject's right, a little in front and above
    lit, mask = bench.render_lps(lps, K, w2c, SIZE, light=True, light_dir=side)
    albedo, _ = bench.render_lps(lps, K, w2c, SIZE, light=False)
    cos = np.clip(((lit.sum(-1) / np.maximum(albedo.sum(-1), 1e-3)) - 0.45) / 0.65, 0.0, 1.0)  # render_lps' n·l
    lit = np.clip(albedo * (np.array([0.3, 0.2, 0.14]) + 0.9 * cos[..., None]), 0.0, 1.0)
    img = photo.copy()
    img[mask] = (_tone_curve(lit[mask]) * 255).round().astype(np.uint8)
    view = _photo_view(ict, fit, landmarks_from_analysis(ict, analysis), img, matte)
    atlas, _ = bake_photo_texture(ict, view.verts, fit.K, fit.w2c, img, res=SIZE, exclude=view.exclude,
                                  parse=view.parse)
    faces, mirror = skin_faces(ict), mirror_map(ict.neutral)
    read = _sample_view(ict, faces, SIZE, view, mirror)
    truth = _sample_view(ict, faces, SIZE, PhotoView(view.verts, fit.K, fit.w2c, (albedo * 255).round().astype(
        np.uint8), view.exclude, view.parse), mirror)
    texels = texel_surface(ict, view.verts, faces, SIZE)[0]
    luma = np.array([0.299, 0.587, 0.114])
    well = (read.wgt > 0.3) & (read.lab == SKIN) & (truth.col.max(axis=1) > 0)
    exposure = (read.col @ luma) / np.maximum(truth.col @ luma, 1.0)
    shadow = well & (exposure < 0.75 * np.median(exposure[well]))
    lit_side = well & (exposure > np.median(exposure[well]))
    assert shadow.sum() > 2000 and lit_side.sum() > 2000

    def chroma_error(sel):
        got = rgb_to_lab(atlas[texels][sel].astype(np.float32)).astype(np.float64)
        ref = rgb_to_lab(truth.col[sel]).astype(np.float64)
        return got[:, 1:] - ref[:, 1:] * ((got[:, :1] + 16) / (ref[:, :1] + 16))

    bias = np.median(chroma_error(lit_side), axis=0)
    beyond = np.hypot(*(chroma_error(shadow) - bias).T)
    print(f"shadowed side ({shadow.sum()} texels): albedo chroma error beyond the lit side's ({np.hypot(*bias):.2f}) "
          f"median {np.median(beyond):.2f}, p90 {np.percentile(beyond, 90):.2f}")
    assert np.median(beyond) < 2.8
    assert np.percentile(beyond, 90) < 7.0


def test_flushed_face_carries_its_tone_onto_the_neck(scene, ict):
    """A lower face redder than the neck (flushed, shaved, made up): the scan's photo with the skin inside the
    face's outline below the nose tinted (red up, blue down). The texture's skin below the jaw line continues the
    face's chroma: the colour step across the jaw (benchmarks/complete_head.jaw_step, ΔE76 between 2 cm above and
    below each jaw point) falls from what the same texture has without the carry (6.77 -> 4.11 median; the chroma
    step 5.3 -> 0.7, the rest is lightness, left alone), and the neck far below keeps its own colour. With the
    light's colour by exposure divided out (texture_complete.light_tint: the neck in the jaw's shadow is less
    orange than it was) the step is smaller with and without the carry: 6.01 -> 3.94 (chroma step 1.2)."""
    import cv2

    import headforge.backend.rig.texture as texture
    from headforge.backend.fitting.landmarks import MP_FACE_OVAL
    from headforge.backend.rig.photo_rig import rig_from_photo

    bench, lps, photo, head, K, w2c, analysis, matte = scene
    pts = np.array(analysis["face"]["landmarks_478"])[:, :2]
    face = np.zeros(head.shape, np.uint8)
    cv2.fillPoly(face, [np.round(pts[list(MP_FACE_OVAL)]).astype(np.int32)], 1)
    face[: int(pts[1, 1])] = 0  # below the nose's tip: the mouth, the chin, the jaw
    tint = cv2.GaussianBlur(face.astype(np.float32), (0, 0), 2.0)[..., None] * np.array([0.16, -0.02, -0.12])
    img = np.clip(photo * (1 + tint), 0, 255).astype(np.uint8)
    rig, atlas, fit, _, info = rig_from_photo(ict, img, analysis, texture_size=256, matte=matte)
    carry = texture.carry_tone_below_jaw
    try:  # the same texture without the carry: the step the scene makes
        texture.carry_tone_below_jaw = lambda rgb, *a: rgb
        _, plain, _, _, _ = rig_from_photo(ict, img, analysis, texture_size=256, matte=matte)
    finally:
        texture.carry_tone_below_jaw = carry
    step, step_max, up, down = bench.jaw_step(ict, rig.basis, atlas)
    step0, step0_max, up0, down0 = bench.jaw_step(ict, rig.basis, plain)
    print(f"jaw colour step ΔE76 median {step:.2f} (max {step_max:.2f}); without the carry {step0:.2f} "
          f"({step0_max:.2f}); Lab above/below {np.round(up, 1)} / {np.round(down, 1)} (without: "
          f"{np.round(up0, 1)} / {np.round(down0, 1)})")
    assert step0 > 5.0  # the tint does make a step
    assert step < 0.7 * step0 and step < 4.11
    assert np.hypot(*(up[1:] - down[1:])) < 2.5  # the chroma continues across the jaw line
    # 8 cm below the chin (past the fade) the neck is what it was
    from headforge.backend.rig.texture import skin_faces, texel_surface

    mask, pos = texel_surface(ict, rig.basis, skin_faces(ict), atlas.shape[0])[:2]
    low = mask & (pos[..., 2] < rig.basis[ict.landmarks_68[8], 2] - 0.08)
    assert np.abs(atlas[low].astype(int) - plain[low].astype(int)).mean() < 1.0


def test_photo_labels_read_between_pixels_follow_the_true_edge():
    """A forehead's texels are smaller than the photo's pixels: labels read at the nearest pixel magnify the
    photo's pixel staircase onto the texture (the stair-stepped hairline). Read between pixels (texture.label_at
    on soft_labels) the hair/skin boundary of a 48 px photo, sampled 8× finer, follows the true edge (a circle's
    arc, the hairline) to a fraction of a pixel: mean 0.15 px, max 0.44 px (nearest pixel: 0.24, 0.69)."""
    from headforge.backend.rig.photo_parse import HAIR, SKIN
    from headforge.backend.rig.texture import label_at, soft_labels

    size, r, c = 48, 30.0, np.array([24.0, 50.0])  # hair above an arc: the skin is the disc below
    ys, xs = np.mgrid[0:size, 0:size]
    skin = np.hypot(xs - c[0], ys - c[1]) < r
    masks = np.stack([skin, np.zeros_like(skin), ~skin], axis=-1)
    fine = (np.mgrid[0:8 * size, 0:8 * size][::-1].reshape(2, -1).T + 0.5) / 8 - 0.5  # texel centres, px
    soft = label_at(soft_labels(masks), fine).reshape(8 * size, 8 * size)
    near = np.where(skin, SKIN, HAIR)[np.clip(np.round(fine[:, 1]).astype(int), 0, size - 1),
                                     np.clip(np.round(fine[:, 0]).astype(int), 0, size - 1)].reshape(soft.shape)

    def edge_error(lab):
        """Mean distance (px) of the label boundary's texels from the true arc, away from the image's border."""
        b = (lab[1:, :] != lab[:-1, :])[:, 8:-8] | (lab[:-1, 1:] != lab[:-1, :-1])[:, 8:-7]
        yy, xx = np.nonzero(b)
        p = (np.stack([xx + 8, yy], axis=1) + 0.5) / 8 - 0.5
        d = np.abs(np.hypot(p[:, 0] - c[0], p[:, 1] - c[1]) - r)
        return float(d.mean()), float(d.max())

    assert set(np.unique(soft)) <= {SKIN, HAIR}
    (e_soft, m_soft), (e_near, m_near) = edge_error(soft), edge_error(near)
    print(f"label boundary off the true edge: mean {e_soft:.3f} px, max {m_soft:.3f} px read between pixels; "
          f"{e_near:.3f} px, {m_near:.3f} px at the nearest pixel")
    # (the photo's labels are whole pixels: within half a pixel of the arc is all they can say)
    assert e_soft < 0.17 and m_soft < 0.5
    assert e_near > 1.5 * e_soft and m_near > 0.6


def test_fringe_keeps_the_hair_joined_to_the_hair_region():
    """texture.fringe_weight: a fringe hanging from the hair region stays hair (with its small skin-coloured
    highlights), a strand or shadow labelled hair alone on the forehead does not, and the edge is soft."""
    from headforge.backend.rig.texture import fringe_weight

    res = 128
    mask = np.zeros((res, 2 * res), bool)
    mask[:, :res] = True
    yy, xx = np.mgrid[0:res, 0:2 * res]
    hair = mask & (yy < 30)
    fringe = mask & (yy >= 30) & (yy < 45) & (xx > 40) & (xx < 80)
    fringe &= ~((yy > 35) & (yy < 38) & (xx > 55) & (xx < 60))  # a highlight read as skin
    speck = mask & (yy > 70) & (yy < 74) & (xx > 20) & (xx < 24)
    idx = np.nonzero(mask)
    w = np.zeros(mask.shape)
    w[idx] = fringe_weight((fringe | speck)[idx], hair[idx], mask, res)
    print(f"fringe {w[fringe].mean():.2f}, highlight {w[36, 57]:.2f}, speck {w[speck].max():.3f}")
    assert w[speck].max() < 0.01
    assert w[38:43, 45:75].min() > 0.9 and w[36, 57] > 0.9
    assert 0.2 < w[45, 60] < 0.8  # a soft edge, not a step


def _hard_switch(col_d, w_d, lab_d, col_m, w_m, lab_m, idx, shape, res, trust=None):
    """The join before texture.blend_mirrored: the mirrored read wherever the direct one weighs under 0.05."""
    use_m = (w_d < 0.05) & (w_m > w_d)
    return (np.where(use_m[:, None], col_m, col_d), np.where(use_m, w_m, w_d), np.where(use_m, lab_m, lab_d), use_m)


def test_mirrored_skin_joins_the_seen_skin_without_a_seam(scene, ict):
    """The scan turned 35° (its far cheek seen at a glance, the rest of that side only in the mirror) with the near
    side's skin warmer than the far side's (a flush, or light the de-lighting leaves behind): the mirrored reads of
    the warm side meet the far side's own pixels. The colour step across the seen/mirrored boundary
    (benchmarks/complete_head.mirror_seam_step, ΔE76 between the two sides' means within 6 texels) falls from the
    hard switch's (old code) to a join a few ΔE wide, the face's tone matched and feathered."""
    import cv2

    import headforge.backend.rig.texture as texture
    from headforge.backend.fitting.landmarks import mediapipe_478
    from headforge.backend.face.matte import mediapipe_matte
    from headforge.backend.rig.photo_rig import rig_from_photo

    bench, lps = scene[0], scene[1]
    photo, head, K, w2c = bench.make_photo(lps, SIZE, yaw_deg=35.0)
    img = (photo * 255).round().astype(np.uint8)
    mp = mediapipe_478(img)
    assert mp is not None
    pts = mp[:, :2]
    bbox = np.array([*pts.min(axis=0), *pts.max(axis=0)])
    analysis = {"image_size": [SIZE, SIZE], "face": {"bbox": bbox.tolist(), "landmarks_478": mp.tolist(),
                                                     "landmarks_68": None}}
    # the side of the face nearer the camera (wider in the photo, beyond the nose tip) warmer
    nose = pts[1, 0]
    near_right = (bbox[2] - nose) > (nose - bbox[0])
    xs = np.arange(SIZE)[None, :].repeat(SIZE, 0)
    side = ((xs > nose) if near_right else (xs < nose)) & head
    tint = cv2.GaussianBlur(side.astype(np.float32), (0, 0), 3.0)[..., None] * np.array([0.10, -0.03, -0.10])
    img = np.clip(img * (1 + tint), 0, 255).astype(np.uint8)
    matte = mediapipe_matte(img, bbox)
    steps = {}
    for name, join in (("feathered", texture.blend_mirrored), ("hard", _hard_switch)):
        keep, band = texture.blend_mirrored, texture.OUTLINE_BAND_M
        texture.blend_mirrored = join
        if name == "hard":  # the old code: every read at the photo's outline trusted too
            texture.OUTLINE_BAND_M = (0.0, 1e-9)
        try:
            rig, atlas, fit, lm, info = rig_from_photo(ict, img, analysis, texture_size=256, matte=matte)
        finally:
            texture.blend_mirrored, texture.OUTLINE_BAND_M = keep, band
        from headforge.backend.rig.photo_rig import _photo_view

        view = _photo_view(ict, fit, lm, img, matte)
        _, seen, mirrored = bench.seen_and_mirrored(ict, view.verts, fit.K, fit.w2c, img, view.exclude, view.parse,
                                                    256)
        steps[name] = bench.mirror_seam_step(atlas, seen, mirrored)
    print(f"seen/mirrored colour step ΔE76 median, p90: feathered {steps['feathered'][0]:.2f}, "
          f"{steps['feathered'][1]:.2f}; hard switch {steps['hard'][0]:.2f}, {steps['hard'][1]:.2f}")
    assert steps["hard"][0] > 4.0  # the scene does make a seam
    assert steps["feathered"][0] < 0.5 * steps["hard"][0]
    assert steps["feathered"][1] < 0.6 * steps["hard"][1]


def _seen_at_photo_resolution(finer):
    """The seen test before texture._seen_vertices: the z-buffer at the photo's own resolution (the normal image
    still `finer`'s, the function it stands in for)."""
    from headforge.backend.render.raster import rasterize

    def seen_test(xy, z, faces, Hp, Wp, exclude, n_vertices, normals):
        tid, _, _ = rasterize(xy, z, faces, Hp, Wp, cull_backfaces=True)
        if exclude is not None:
            tid = np.where(exclude, -1, tid)
        seen = np.zeros(n_vertices, bool)
        seen[faces[np.unique(tid[tid >= 0])].ravel()] = True
        return seen, finer(xy, z, faces, Hp, Wp, exclude, n_vertices, normals)[1]

    return seen_test


def test_small_photo_keeps_the_face_it_sees(scene, completed, ict):
    """The scene's photo shrunk to 96 px (the eyes ~20 px apart, like a 240p portrait's): the face's small
    triangles (eyelids, the nose's folds, the mouth's corners) cover no pixel centre of the photo, and tested at
    the photo's resolution they counted as unseen, leaving islands inside the seen face that the completion filled
    with the skin's median tone (the 240p photo's blotches). Tested on a finer z-buffer, the small photo's unseen
    islands inside the seen face (texture.holes_in_seen) and its texture's distance from the full-size photo's
    (benchmarks/complete_head.texture_mismatch) come close to the full-size photo's."""
    import cv2

    import headforge.backend.rig.texture as texture
    from headforge.backend.rig.photo_rig import _photo_view, landmarks_from_analysis, rig_from_photo

    bench, lps, photo, head, K, w2c, analysis, matte = scene
    small = 96
    s = small / SIZE
    img = cv2.resize(photo, (small, small), interpolation=cv2.INTER_AREA)
    pts = (np.array(analysis["face"]["landmarks_478"]) + [0.5, 0.5, 0.0]) * [s, s, s] - [0.5, 0.5, 0.0]
    bbox = np.array([*pts[:, :2].min(axis=0), *pts[:, :2].max(axis=0)])
    an = {"image_size": [small, small], "face": {"bbox": bbox.tolist(), "landmarks_478": pts.tolist(),
                                                 "landmarks_68": None}}
    m = cv2.resize(matte, (small, small), interpolation=cv2.INTER_AREA)
    rig_f, atlas_f, fit_f, info_f = completed[:4]
    view = _photo_view(ict, fit_f, landmarks_from_analysis(ict, analysis), photo, matte)
    _, seen_full, _ = bench.seen_and_mirrored(ict, view.verts, fit_f.K, fit_f.w2c, photo, view.exclude, view.parse,
                                              256)
    out = {}
    for name in ("finer", "photo"):
        keep = texture._seen_vertices
        if name == "photo":
            texture._seen_vertices = _seen_at_photo_resolution(keep)
        try:
            rig, atlas, fit, lm, info = rig_from_photo(ict, img, an, texture_size=256, matte=m)
        finally:
            texture._seen_vertices = keep
        out[name] = (info["texture"]["holes"]["texels"], info["texture"]["from_photo"],
                     bench.texture_mismatch(atlas, atlas_f, seen_full))
    full = info_f["texture"]
    for name, (holes, seen, (med, far)) in out.items():
        print(f"96 px photo, seen test {name}: unseen islands {100 * holes:.2f} % of the seen texels, from the photo "
              f"{100 * seen:.1f} %, vs the {SIZE} px photo's texture median ΔE {med:.2f}, {100 * far:.1f} % over 10")
    print(f"{SIZE} px photo: unseen islands {100 * full['holes']['texels']:.2f} %, from the photo "
          f"{100 * full['from_photo']:.1f} %")
    assert out["photo"][0] > 1.5 * out["finer"][0]  # the old test leaves islands ...
    assert out["photo"][1] < 0.8 * full["from_photo"]  # ... and a third of the face unseen
    assert out["finer"][0] < 1.5 * full["holes"]["texels"] + 0.002
    assert out["finer"][1] > 0.9 * full["from_photo"]
    # with the reads at the photo's outline below the eyes distrusted (texture.outline_trust: 1.6-3.2 px of the 96 px
    # photo, 4-8 px of the full one) the two photos keep different outline texels: the finer test's texels over ΔE 10
    # 0.2 -> 1.4 % (the coarse test's 0.4 -> 0.9 %), along one jaw and the neck's crease
    assert out["finer"][2][1] < 0.02


def test_hair_mesh_takes_the_photos_own_hair(ict, astronaut_path):
    """The astronaut's bob: the hair mesh's texture was the scalp's projection and, where the hair falls beside the
    head, one median colour with strands; now it takes the photo's own hair where the photo sees the shell
    (hair_mesh.hair_texture_from_photo) and the seen hair's tones and strand strength elsewhere. From the fitted
    camera, the rendered hair mesh against the photo's hair pixels it covers (benchmarks/complete_head.
    hair_front_error, ΔE76 median) falls from the flat colour's ~11.6 to ~2, the shape (its outline) unchanged."""
    from PIL import Image

    from headforge.backend.face.matte import mediapipe_matte
    from headforge.backend.fitting.landmarks import mediapipe_478
    from headforge.backend.rig.hair_mesh import hair_fall_dz, hair_shell
    from headforge.backend.rig.photo_parse import HAIR, SKIN
    from headforge.backend.rig.photo_rig import _photo_view, rig_from_photo
    from tests.conftest import load_benchmark

    bench = load_benchmark("complete_head")
    photo = np.asarray(Image.open(astronaut_path).convert("RGB"))
    mp = mediapipe_478(photo)
    assert mp is not None
    bbox = np.array([*mp[:, :2].min(axis=0), *mp[:, :2].max(axis=0)])
    analysis = {"image_size": list(photo.shape[1::-1]), "face": {"bbox": bbox.tolist(), "landmarks_478": mp.tolist(),
                                                                "landmarks_68": None}}
    matte = mediapipe_matte(photo, bbox)
    rig, atlas, fit, lm, info = rig_from_photo(ict, photo, analysis, texture_size=256, matte=matte)
    parse = _photo_view(ict, fit, lm, photo, matte).parse
    hair_px, tex = parse.labels == HAIR, info["texture"]
    fall = hair_fall_dz(ict, fit.identity, fit.expression, fit.K, fit.w2c, hair_px)
    meshes = {}
    for name, src in (("flat", None), ("photo", photo)):
        meshes[name], _ = hair_shell(ict, fit.identity, fit.expression, fit.K, fit.w2c, hair_px, atlas,
                                     tex.get("hairline_front_m_above_eyes"), fall_dz=fall,
                                     skin_mask=parse.labels == SKIN, front_profile=tex.get("hairline_front_profile"),
                                     photo=src)
    assert meshes["flat"] is not None
    np.testing.assert_array_equal(meshes["flat"]["verts"], meshes["photo"]["verts"])  # the same shape
    err = {n: bench.hair_front_error(rig, atlas, [m], photo, hair_px, fit.K, fit.w2c) for n, m in meshes.items()}
    print(f"hair mesh vs the photo's hair from the front, ΔE76 median (mean, pixels): photo's hair "
          f"{err['photo'][0]:.2f} ({err['photo'][1]:.2f}, {err['photo'][2]}), flat colour {err['flat'][0]:.2f} "
          f"({err['flat'][1]:.2f})")
    assert err["flat"][2] > 2000
    assert err["photo"][0] < 0.35 * err["flat"][0]
    assert err["photo"][1] < 0.6 * err["flat"][1]


def test_thin_features_are_delit_by_the_light_their_pixels_show(scene, completed, ict):
    """The lids' margins, the nostrils' rims, the lips' line: strips a pixel or less wide whose own normals turn
    away from the light, painted from pixels that mostly show the lit skin beside them. Divided by the shading of
    their own normals they came out far too bright (white slivers along the eyes, pale rings round the
    nostrils); by the shading of the normals their pixels show (texture.shading_normals) they keep the albedo.
    De-lit luminance against the scan's albedo read at the same texels (|ln ratio|, each side's median over the
    well-seen skin taken out), over the skin texels whose two normals differ by more than 20°: median 0.28 -> 0.09
    (p90 0.70 -> 0.35); the rest of the skin 0.044 either way."""
    from headforge.backend.headmodel.base import mirror_map
    from headforge.backend.rig.photo_parse import SKIN
    from headforge.backend.rig.photo_rig import _photo_view, landmarks_from_analysis
    from headforge.backend.rig.texture import PhotoView, _sample_view, skin_faces
    from headforge.backend.rig.texture_complete import delight, fit_shading, sh1

    bench, lps, photo, head, K, w2c, analysis, matte = scene
    fit = completed[2]
    albedo, _ = bench.render_lps(lps, K, w2c, SIZE, light=False)
    view = _photo_view(ict, fit, landmarks_from_analysis(ict, analysis), photo, matte)
    faces, mirror = skin_faces(ict), mirror_map(ict.neutral)
    read = _sample_view(ict, faces, SIZE, view, mirror)
    truth = _sample_view(ict, faces, SIZE, PhotoView(view.verts, fit.K, fit.w2c, (albedo * 255).round().astype(
        np.uint8), view.exclude, view.parse), mirror)
    luma = np.array([0.299, 0.587, 0.114])
    well = (read.wgt > 0.3) & (read.lab == SKIN) & (truth.col.max(axis=1) > 0)
    thin = well & (np.einsum("ij,ij->i", read.nrm, read.shade) < np.cos(np.radians(20)))
    assert thin.sum() > 40

    def error(normals):
        light = fit_shading(read.col[well], normals[well])
        r = np.log(delight(read.col, normals, light, float((sh1(normals[well]) @ light).mean())) @ luma
                   / np.maximum(truth.col @ luma, 1.0))
        r = np.abs(r - np.median(r[well]))
        return np.median(r[thin]), np.percentile(r[thin], 90), np.median(r[well & ~thin])

    own, shown = error(read.nrm), error(read.shade)
    print(f"{thin.sum()} thin texels: |ln albedo ratio| median / p90 {own[0]:.3f} / {own[1]:.3f} with their own "
          f"normals, {shown[0]:.3f} / {shown[1]:.3f} with their pixels'; the rest {own[2]:.3f} / {shown[2]:.3f}")
    assert shown[0] < 0.5 * own[0] and shown[1] < own[1]
    assert shown[2] < 0.05 and shown[2] < own[2] + 0.003


def test_highlights_and_over_lifted_skin_are_compressed(ict, monkeypatch):
    """A dataset head (known albedo, benchmarks/complete_head_expression's head 0) photographed at 256 px: the
    rig's atlas against the albedo over the front of the face (gain-fitted mean |error| of 255, texel SSIM) with
    the de-lit skin's brightest texels compressed above its 95th percentile (texture.highlights_compressed) and
    without: measured 10.40 / 0.732 -> 9.67 / 0.748 (heads 1 and 2: 10.56 -> 10.07, 7.52 -> 7.15)."""
    import headforge.backend.rig.texture as texture
    from headforge.backend.rig.photo_rig import rig_from_photo

    bench, expr = load_benchmark("complete_head"), load_benchmark("complete_head_expression")
    res = 256
    scan = bench.ict_head_as_scan(ict, expr.ict_heads(1)[0], {}, res)
    photo = (bench.make_photo(scan, SIZE)[0] * 255).round().astype(np.uint8)
    an, matte = _analysed(photo)
    masks = expr.regions(ict, res)
    got, default = {}, texture.HIGHLIGHT_PCT
    for pct in (100.0, default):  # 100: nothing compressed
        monkeypatch.setattr(texture, "HIGHLIGHT_PCT", pct)
        atlas = rig_from_photo(ict, photo, an, texture_size=res, matte=matte)[1]
        got[pct] = expr.compare(atlas, scan[3][:res, :2 * res], masks)["face front"]
    (e0, s0), (e1, s1) = got[100.0], got[default]
    print(f"face front, mean |error| / SSIM: without {e0:.2f} / {s0:.3f}, compressed {e1:.2f} / {s1:.3f}")
    assert e1 < 0.96 * e0 and s1 > s0 + 0.005
