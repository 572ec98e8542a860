"""Framing: the layout constants re-measured from the reference repository's example inputs, the examples left
nearly as they are, and small or off-centre heads re-framed to the same layout."""
import numpy as np
import pytest
from PIL import Image

from headforge.backend.face import framing


def _fixture(shared, i):
    rgba = np.asarray(Image.open(shared / f"fixtures/idts/framing/000{i}.png"))
    a = rgba[..., 3:4] / 255.0
    return (rgba[..., :3] * a + 255 * (1 - a) + 0.5).astype(np.uint8), rgba[..., 3]


def test_layout_constants_match_the_reference_examples(shared, run_analyse):
    layouts = []
    for i in (1, 2, 3):
        rgb, _ = _fixture(shared, i)
        mesh = np.array(run_analyse(rgb).analysis["face"]["landmarks_478"])
        layouts.append(framing.measure_layout(mesh, 512))
    mean = {k: np.mean([lay[k] for lay in layouts]) for k in layouts[0]}
    print("reference layout:", {k: round(v, 4) for k, v in mean.items()})
    assert mean["eye_x"] == pytest.approx(framing.EYE_X, abs=0.004)
    assert mean["eye_y"] == pytest.approx(framing.EYE_Y, abs=0.004)
    assert mean["eye_mouth"] == pytest.approx(framing.EYE_MOUTH, abs=0.004)


def test_reference_examples_keep_their_framing(shared, run_analyse):
    for i in (1, 2, 3):
        rgb, _ = _fixture(shared, i)
        r = run_analyse(rgb)
        aff = np.array(r.analysis["crop"]["affine_photo_to_crop"])
        scale = np.sqrt(abs(np.linalg.det(aff[:, :2])))
        centre_shift = np.linalg.norm(framing.apply_affine(aff, [256, 256]) - 256) / 512
        assert 0.8 < scale < 1.25 and centre_shift < 0.08, (i, scale, centre_shift)


def test_small_offcentre_head_is_reframed_like_the_portrait(run_analyse, artifacts):
    from .catalogue import astronaut, small_offcentre

    ref = run_analyse(astronaut())
    small = run_analyse(small_offcentre())
    e_ref = framing.eye_mouth_points(None, np.array(ref.analysis["face"]["landmarks_478"]))[0][:2]
    e_small = framing.eye_mouth_points(None, np.array(small.analysis["face"]["landmarks_478"]))[0][:2]
    a_ref = np.array(ref.analysis["crop"]["affine_photo_to_crop"])
    a_small = np.array(small.analysis["crop"]["affine_photo_to_crop"])
    assert np.linalg.norm(framing.apply_affine(a_ref, e_ref) - framing.apply_affine(a_small, e_small)) < 6.0
    s_ref, s_small = (np.sqrt(abs(np.linalg.det(a[:, :2]))) for a in (a_ref, a_small))
    assert s_small / s_ref == pytest.approx(1 / 0.9, rel=0.04)  # the small photo is the portrait at 0.9×
    # and the crops themselves look alike (same framing; the background differs only outside the matte)
    diff = np.abs(ref.crop.astype(float) - small.crop.astype(float)).mean()
    Image.fromarray(np.concatenate([ref.crop, small.crop], axis=1)).save(artifacts / "face_reframed_small_head.png")
    assert diff < 20, diff


def test_warp_shrinks_big_photos_without_aliasing():
    stripes = np.zeros((4000, 4000), np.float32)
    stripes[:, ::2] = 1.0  # 1-pixel stripes: aliasing would show as strong bands
    aff = np.array([[0.1, 0, 0], [0, 0.1, 0]])
    out = framing.warp(stripes, aff, 256, border=0.0)
    assert abs(out[10:200, 10:200].mean() - 0.5) < 0.02 and out[10:200, 10:200].std() < 0.02
