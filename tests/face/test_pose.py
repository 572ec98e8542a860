"""Head pose: the sign convention on a synthetic projection of ICT-FaceKit's landmarks, and the estimators on
real photos (in-plane rotation is roll, mirroring flips yaw and roll, estimators agree)."""
import numpy as np
import pytest

from headforge.backend.face import pose


def _project(yaw, pitch, roll, size=512, f=600.0, dist=0.6):
    h = pose.head_rotation_from_euler(yaw, pitch, roll)
    pts = pose.ict_landmarks_68() @ h.T  # head → world, (68, 3)
    cam = pts @ pose.R0.T
    cam += np.array([0, 0, dist]) - cam[27:48].mean(0)  # the face on the optical axis (= the line of sight)
    return f * cam[:, :2] / cam[:, 2:] + size / 2


def test_sign_convention_and_pnp_round_trip():
    lm = _project(25, 0, 0)
    eyes_mid = (lm[36:42].mean(0) + lm[42:48].mean(0)) / 2
    assert lm[30, 0] > eyes_mid[0] + 5  # yaw > 0: the nose points to the viewer's right (the subject's left)
    lm = _project(0, 20, 0)
    assert lm[30, 1] < _project(0, 0, 0)[30, 1] - 5  # pitch > 0 (looking up): the nose rises in the image
    lm = _project(0, 0, 15)
    assert lm[27, 0] > lm[8, 0] + 5  # roll > 0: crown toward the subject's left shoulder (viewer's right)
    for yaw, pitch, roll in [(25, 10, -8), (-40, -15, 5), (60, 0, 0), (0, 0, 20)]:
        est = pose.pose_from_68(_project(yaw, pitch, roll), (512, 512))
        got = np.array([est["yaw_deg"], est["pitch_deg"], est["roll_deg"]])
        assert np.abs(got - [yaw, pitch, roll]).max() < 2.0, (yaw, pitch, roll, got)


def test_image_rotation_is_roll(run_analyse):
    from .catalogue import rotated

    rolls = {deg: run_analyse(rotated(deg)).analysis["face"]["pose"]["roll_deg"] for deg in (-15, 15)}
    # turning the photo counter-clockwise by 15° tilts the head toward the subject's right shoulder
    assert rolls[15] - rolls[-15] == pytest.approx(-30, abs=4)


def test_estimators_agree_on_t1(run_analyse):
    from .catalogue import group_t1

    img = group_t1()
    for i in range(6):
        p = run_analyse(img, face=i).analysis["face"]["pose"]
        alt = {a["source"]: a for a in p["alternatives"]}
        assert p["source"] == "mesh478"
        assert abs(p["yaw_deg"] - alt["dlib68"]["yaw_deg"]) < 10, (i, p, alt)
        assert abs(p["roll_deg"] - alt["dlib68"]["roll_deg"]) < 5, (i, p, alt)


def test_side_view_cameraman(run_analyse):
    """scikit-image's cameraman looks to the viewer's right, about 50° from the camera (a real side view)."""
    import numpy as np

    from .catalogue import skimage_image

    img = skimage_image("camera")
    p = run_analyse(img).analysis["face"]["pose"]
    q = run_analyse(np.ascontiguousarray(img[:, ::-1])).analysis["face"]["pose"]
    assert 35 < p["yaw_deg"] < 65 and -65 < q["yaw_deg"] < -35, (p, q)
    assert abs(p["yaw_deg"] + q["yaw_deg"]) < 6
