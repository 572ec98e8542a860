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


def _damaged_models(tmp_path, shared, *, scrfd=True, yunet=False):
    """A models folder holding a truncated SCRFD (buffalo_sc) and a real or garbage YuNet."""
    import shutil

    root = tmp_path / "models"
    det = root / "insightface/models/buffalo_sc/det_500m.onnx"
    det.parent.mkdir(parents=True)
    good = (shared / "models/insightface/models/buffalo_sc/det_500m.onnx").read_bytes()
    det.write_bytes(good[: len(good) // 3] if scrfd else good)
    yn = root / "opencv_zoo/face_detection_yunet/face_detection_yunet_2026may.onnx"
    yn.parent.mkdir(parents=True)
    if yunet:
        yn.write_bytes(b"not an onnx model" * 100)
    else:
        shutil.copy(shared / "models/opencv_zoo/face_detection_yunet/face_detection_yunet_2026may.onnx", yn)
    return root, det, yn


def test_damaged_detector_is_named_and_the_next_one_used(tmp_path, shared):
    """A truncated SCRFD: `auto` says which file and how to check it, then uses YuNet and still finds the face;
    asking for SCRFD by name is a model.corrupt error naming the file (never the library's own message alone)."""
    from headforge.backend.errors import ModelMissingError
    from headforge.backend.face.detect import resolve_detector

    root, det, _ = _damaged_models(tmp_path, shared)
    heard = []
    kind, path = resolve_detector("auto", "buffalo_sc", str(root), warn=heard.append)
    assert kind == "yunet" and len(heard) == 1
    assert str(det) in heard[0] and "headforge models verify insightface-buffalo_sc" in heard[0]
    faces = detect_faces(astronaut(), kind, "buffalo_sc", str(root))
    assert len(faces) == 1 and np.abs(faces[0].kps5 - ASTRO_KPS).max() < 8.0
    with pytest.raises(ModelMissingError) as e:
        resolve_detector("scrfd", "buffalo_sc", str(root))
    assert e.value.code == "model.corrupt" and str(det) in e.value.message
    assert "headforge models verify insightface-buffalo_sc" in e.value.hint


def test_damaged_detectors_fall_back_to_the_bundled_one_in_the_face_stage(tmp_path, shared, run_analyse):
    root, det, yn = _damaged_models(tmp_path, shared, yunet=True)
    result = run_analyse(astronaut(), models_root=str(root), pack="buffalo_sc")
    warnings = [w for w in result.analysis["warnings"] if w["code"] == "face.detector_fallback"]
    assert len(warnings) == 2 and str(det) in warnings[0]["message"] and str(yn) in warnings[1]["message"]
    assert "headforge models verify yunet" in warnings[1]["message"]
    assert result.analysis["detector"]["name"] == "mediapipe" and len(result.analysis["faces"]) == 1


def test_damaged_matte_model_is_named_and_the_bundled_segmenter_used(tmp_path, run_analyse):
    from headforge.backend.errors import ModelMissingError

    onnx = tmp_path / "birefnet-portrait/BiRefNet-portrait-epoch_150.onnx"
    onnx.parent.mkdir(parents=True)
    onnx.write_bytes(b"\x08\x07" + b"\0" * 4000)  # truncated protobuf
    result = run_analyse(astronaut(), matte="auto", **{"models_root": str(tmp_path)})
    assert result.analysis["matte"]["source"] == "mediapipe"
    said = [w["message"] for w in result.analysis["warnings"] if w["code"] == "face.matte_fallback"]
    assert said and str(onnx) in said[0] and "headforge models verify birefnet-portrait" in said[0]
    with pytest.raises(ModelMissingError) as e:
        run_analyse(astronaut(), matte="birefnet", models_root=str(tmp_path))
    assert e.value.code == "model.corrupt" and str(onnx) in e.value.message
