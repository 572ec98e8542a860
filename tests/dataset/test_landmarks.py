"""landmarks.json: the expression points the builder writes for each view where a face is found, placed where an
independent detector (SCRFD's five keypoints) puts the mouth and eyes, and read by the expression loss."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from headforge.backend import cameras as rig
from headforge.backend.dataset import landmarks
from headforge.backend.face import detect
from headforge.backend.train.expression import LIPS, RIGHT_EYE, LandmarkSource


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    """A 512-px views folder whose frontal view is the astronaut portrait and whose other views are blank."""
    from skimage import data

    root = tmp_path_factory.mktemp("lm-data")
    vdir = root / "seq" / "views"
    vdir.mkdir(parents=True)
    face = np.concatenate([data.astronaut(), np.full((512, 512, 1), 255, np.uint8)], -1)
    blank = np.zeros((512, 512, 4), np.uint8)
    enc = {}
    for name, img in (("face", face), ("blank", blank)):
        buf = io.BytesIO()
        Image.fromarray(img, "RGBA").save(buf, format="PNG")
        enc[name] = buf.getvalue()
    cams = rig.rig_cameras(512)
    for c in cams:
        (vdir / f"{c['index']:03d}.png").write_bytes(enc["face" if c["index"] == 16 else "blank"])
    rig.save_cameras_json(vdir / "cameras.json", cams)
    return root, face


def test_points_of_the_views_with_a_face(views, shared):
    root, face = views
    data = landmarks.write_landmarks(root, "seq")
    saved = json.loads((root / "seq" / "landmarks.json").read_text())
    assert saved == data and data["size"] == 512 and data["searched"] == 96
    assert list(data["views"]) == ["16"]  # the blank views have no face: absent, and counted as searched
    pts = np.asarray(data["views"]["16"])
    # against SCRFD's keypoints (an independent detector): the mouth corners (mesh points 61 and 291) at its mouth
    # keypoints, the right eye's centre at its eye keypoint, within 6 % of the eye-mouth distance
    kps = detect.detect_faces(face[..., :3], "scrfd", "buffalo_m", str(shared / "models"))[0].kps5
    scale = np.linalg.norm(kps[3:].mean(0) - kps[:2].mean(0))
    corners = pts[[LIPS.index(61), LIPS.index(291)]]  # the subject's right corner (image left) first
    eye = pts[len(LIPS):len(LIPS) + len(RIGHT_EYE)].mean(0)
    err_mouth = np.linalg.norm(corners - kps[3:], axis=1).max() / scale
    err_eye = np.linalg.norm(eye - kps[0]) / scale  # the subject's right eye: the image's left
    print(f"\nlandmarks vs SCRFD: mouth corners {err_mouth:.3f}, right eye {err_eye:.3f} eye-mouth distances")
    assert err_mouth < 0.06 and err_eye < 0.06
    # the expression loss reads them (scaled to the training frames' size) instead of running MediaPipe
    src = LandmarkSource(root, "auto")
    got = src.points("seq", [16, 17], np.zeros((2, 256, 256, 3), np.uint8))
    assert np.allclose(got[0], pts * 0.5) and got[1] is None and not src._mesh
