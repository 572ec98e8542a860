"""The three detectors (SCRFD from both shared packs, YuNet, MediaPipe) on real photos: same faces, keypoints in
image order, numbers as shared/models/README.md records them."""
import numpy as np
import pytest

from headforge.backend.face.detect import detect_faces

from .catalogue import astronaut, group_t1

# SCRFD 2.5G on the astronaut (shared/models/README.md)
ASTRO_KPS = np.array([[204.4, 100.8], [247.3, 103.1], [223.5, 128.4], [201.2, 138.5], [246.4, 140.6]])


@pytest.mark.parametrize("detector,pack,tol", [("scrfd", "buffalo_m", 1.0), ("scrfd", "buffalo_sc", 3.0),
                                               ("yunet", "buffalo_m", 8.0), ("mediapipe", "buffalo_m", 8.0)])
def test_detectors_agree_on_the_astronaut(models_root, detector, pack, tol):
    faces = detect_faces(astronaut(), detector, pack, models_root)
    assert len(faces) == 1
    f = faces[0]
    assert f.detector == detector and 0.5 < f.score <= 1.0
    assert np.abs(f.kps5 - ASTRO_KPS).max() < tol, f.kps5
    assert f.kps5[0, 0] < f.kps5[1, 0] and f.kps5[3, 0] < f.kps5[4, 0]  # image order
    assert 80 < f.size_px < 130


@pytest.mark.parametrize("detector", ["scrfd", "yunet"])
def test_detectors_find_the_six_people_in_t1(models_root, detector):
    faces = detect_faces(group_t1(), detector, "buffalo_m", models_root)
    assert len(faces) == 6
    centres = [(f.bbox[0] + f.bbox[2]) / 2 for f in faces]
    assert centres == sorted(centres)
