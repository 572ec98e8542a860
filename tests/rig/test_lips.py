"""The lips' albedo from the photo's lips (backend/rig/texture.py lip_tone), on reads with a known albedo."""
import numpy as np

from headforge.backend.render.image import rgb_to_lab
from headforge.backend.rig.photo_parse import LIPS, SKIN
from headforge.backend.rig.texture import lip_tone


def test_the_lips_come_out_at_their_albedo_under_a_coloured_light():
    """A photo's light at the mouth is seldom white: the skin round a smiling mouth lies in the folds' shade, which
    the room's bounce and the light scattered under the skin make orange (group face 1: the skin beside his lips
    (205, 114, 70), as orange as the lips themselves, (213, 148, 105) once its light was divided out). The de-lit
    skin round the lips says what the light did there, its colour too, and the lips under the same light come out
    at their albedo. The old code divided out the light's strength only: the lips kept the light's colour (a pale
    orange band for lips; here (221, 81, 56) for (170, 95, 85): ΔE76 34.3, now 0.2)."""
    rng = np.random.default_rng(0)
    skin, lips_albedo = np.array([200.0, 150.0, 120.0]), np.array([170.0, 95.0, 85.0])
    light = np.array([0.95, 0.62, 0.48])  # the light at the mouth: dimmer than the face's mean, and orange
    x = np.linspace(0.0, 0.03, 600)  # texels along the face, metres from the mouth's middle; the lips within 1 cm
    pos = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1)
    lips = x < 0.01
    detail = 1 + 0.03 * rng.standard_normal((len(x), 1))
    delit = skin * detail  # the skin round the lips with its light divided out: its albedo
    raw = delit * light  # ... as the photo shows it
    lab = np.where(lips, LIPS, SKIN).astype(np.uint8)
    wgt = np.ones(len(x))
    photo_lips = np.clip(lips_albedo * light * (1 + 0.03 * rng.standard_normal((200, 1))), 0, 255)
    tone = lip_tone(photo_lips, raw, delit, lab, wgt, pos, lips)
    de = float(np.linalg.norm(rgb_to_lab(tone[None].astype(np.float32))[0]
                              - rgb_to_lab(lips_albedo[None].astype(np.float32))[0]))
    print(f"lips {np.round(tone, 1)} against their albedo {lips_albedo}: ΔE76 {de:.1f}")
    assert de < 2.0


def test_the_photos_lips_are_read_up_to_the_mouths_opening(ict):
    """The open mouth is kept out of the texture with a margin (photo_rig dilates its hole by 6 % of the eye
    distance); a smile's lips are a few pixels thick and the margin covered most of them (group face 1: 1093 of
    his 1685 lip pixels, the astronaut 248 of 279), so the lips were completed with a flat tone rather than read.
    The pixels the photo's parse calls lips are read however near the opening they lie: here, the lips kept out
    entirely, the old code read none of the 222 lip texels the photo sees, now all (the astronaut's read lip texels
    64 -> 584)."""
    from types import SimpleNamespace

    import cv2

    from headforge.backend.headmodel.base import mirror_map
    from headforge.backend.render.raster import project
    from headforge.backend.rig.texture import PhotoView, _sample_view, lip_region, skin_faces, texel_surface

    res, size = 128, 384
    verts = ict.neutral
    centre = verts[ict.landmarks_68[48:60]].mean(axis=0)
    R = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # looking along +y at the face, z up
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = R, -R @ (centre + [0.0, -0.5, 0.0])
    K = np.array([[2400.0, 0.0, size / 2], [0.0, 2400.0, size / 2], [0.0, 0.0, 1.0]])
    faces = skin_faces(ict)
    mask, pos, _, _ = texel_surface(ict, verts, faces, res)
    on_lips = lip_region(ict, res)[mask] > 0.5
    pxy, _ = project(pos[mask][on_lips], K, w2c)
    labels = np.full((size, size), SKIN, np.uint8)
    cv2.fillConvexPoly(labels, cv2.convexHull(np.round(pxy).astype(np.int32)), int(LIPS))  # (the closed lips)
    photo = np.where((labels == LIPS)[..., None], [170, 90, 85], [205, 160, 135]).astype(np.uint8)
    exclude = cv2.dilate((labels == LIPS).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # (all of them)
    s = _sample_view(ict, faces, res, PhotoView(verts, K, w2c, photo, exclude, SimpleNamespace(labels=labels)),
                     mirror_map(ict.neutral))
    seen = _sample_view(ict, faces, res, PhotoView(verts, K, w2c, photo, None, SimpleNamespace(labels=labels)),
                        mirror_map(ict.neutral))  # nothing kept out: the lip texels the photo sees
    read = on_lips & (s.wgt > 0.02) & (s.lab == LIPS)
    visible = on_lips & (seen.wgt > 0.02) & (seen.lab == LIPS)
    print(f"lip texels read from the photo's lips: {read.sum()} of the {visible.sum()} it sees")
    assert read.sum() > 0.9 * visible.sum() > 0
    assert np.abs(np.median(s.col[read], axis=0) - [170, 90, 85]).max() < 3  # the lips' colour, not the skin's
    skin_far = (~on_lips) & (s.lab == SKIN) & (s.wgt > 0.02)
    assert not exclude[np.clip(np.round(project(pos[mask][skin_far], K, w2c)[0]).astype(int), 0, size - 1)[:, 1],
                       np.clip(np.round(project(pos[mask][skin_far], K, w2c)[0]).astype(int), 0, size - 1)[:, 0]].any()


def test_the_lips_keep_their_grain_and_lose_the_photos_light():
    """The lips' reads carry the photo's light and the lips' stretch across them (a smile's thin lower lip lit from
    above, the upper lip in shade, a lip corner in the light: group face 2's red-orange patch at a corner); those
    low frequencies are the lips' tone once the reads are evened (lips_evened), their grain and the darker line
    where the lips meet kept. The old code shifted the reads by one colour: a 40-level ramp stayed a 40-level
    ramp."""
    from headforge.backend.rig.texture import lips_evened

    rng = np.random.default_rng(1)
    rows, cols = np.mgrid[:40, :80]
    rows, cols = rows.ravel(), cols.ravel()
    pos = np.stack([cols * 5e-4, np.zeros(len(cols)), -rows * 5e-4], axis=1)  # 0.5 mm texels
    tone = np.array([190.0, 110.0, 95.0])
    grain = 6.0 * rng.standard_normal((len(rows), 1))
    seam = np.where(np.abs(rows - 20) < 1, -25.0, 0.0)[:, None]  # the line where the lips meet, 1 mm wide
    light = (rows[:, None] - 20) * 1.0 + np.where(cols < 20, 30.0, 0.0)[:, None] * [1.0, 0.4, 0.0]  # ramp, corner
    out = lips_evened(tone + grain + seam + light, rows, cols, pos, tone)
    inner = (cols > 25) & (cols < 75) & (rows > 8) & (rows < 32)  # (away from the reads' edge)
    low = lambda a, m: np.abs(np.mean(a[m] - tone, axis=0))  # noqa: E731
    top, bottom = inner & (rows < 14), inner & (rows > 26)
    print(f"upper and lower lip: {low(out, top)}, {low(out, bottom)}; the corner: {low(out, cols < 15)}")
    assert max(low(out, top).max(), low(out, bottom).max()) < 3.0  # the ramp's ±10 levels there gone
    assert low(out, (cols < 15) & (rows > 8) & (rows < 32)).max() < 4.0  # the corner's 30 levels gone
    line = inner & (np.abs(rows - 20) < 1)
    assert np.mean(out[line] - tone) < -12  # the line between the lips kept (-25 before evening; σ 2 mm blurs it)
    g = inner & ~line & (np.abs(rows - 20) > 4)
    assert np.corrcoef(out[g][:, 0] - tone[0], grain[g][:, 0])[0, 1] > 0.9  # the grain kept
