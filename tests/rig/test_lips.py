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
