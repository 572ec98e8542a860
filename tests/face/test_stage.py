"""The `face` stage in a job folder: artifacts and schema, EXIF and mirrored photos, identity, refusals that
leave the job intact."""
import json

import numpy as np
import pytest
from PIL import Image

from headforge.backend.errors import FaceError
from headforge.backend.job import run_job

from .catalogue import astronaut, group_t1


def _run(job, photo, models_root, **opts):
    return run_job(job, inputs={"photo": str(photo)}, until="face",
                   options={"face": {"models_root": models_root, **opts}})


def test_stage_writes_the_contract(tmp_path, astronaut_path, models_root, artifacts):
    job = tmp_path / "job"
    record = _run(job, astronaut_path, models_root)
    assert record["stages"]["face"]["status"] == "done"
    a = json.loads((job / "face/analysis.json").read_text())
    assert a["image_size"] == [512, 512]
    assert a["chosen"] == 0 and len(a["faces"]) == 1
    f = a["face"]
    for key in ("bbox", "score", "kps5", "size_px", "landmarks_68", "landmarks_478", "pose", "quality"):
        assert key in f
    assert len(f["kps5"]) == 5 and len(f["landmarks_68"]) == 68 and len(f["landmarks_478"]) == 478
    assert all(len(p) == 3 for p in f["landmarks_478"])
    # the astronaut's face (shared/models/README.md): SCRFD 2.5G box 180.8, 55.7, 270.8, 178.4
    assert np.allclose(f["bbox"], [180.8, 55.7, 270.8, 178.4], atol=1.5)
    # dlib's and MediaPipe's landmarks agree on the eyes and mouth corners (iBUG 36/45/48/54 ↔ mesh 33/263/61/291)
    l68, mesh = np.array(f["landmarks_68"]), np.array(f["landmarks_478"])[:, :2]
    err = np.linalg.norm(l68[[36, 45, 48, 54]] - mesh[[33, 263, 61, 291]], axis=1)
    assert err.max() < 6.0, err
    # the iris centres sit on the detector's eye keypoints
    assert np.linalg.norm(mesh[[468, 473]] - np.array(f["kps5"])[:2], axis=1).max() < 4.0
    assert {"yaw_deg", "pitch_deg", "roll_deg"} <= set(f["pose"])
    assert abs(f["pose"]["yaw_deg"]) < 10 and abs(f["pose"]["roll_deg"]) < 8
    assert a["crop"]["size"] == 512 and a["crop"]["background"] == "white"
    assert np.array(a["crop"]["affine_photo_to_crop"]).shape == (2, 3)
    assert a["matte"]["source"] in ("mediapipe", "birefnet")
    crop = np.asarray(Image.open(job / "face/crop.png"))
    assert crop.shape == (512, 512, 3)
    # the eye midpoint lands where the reference framing puts it
    aff = np.array(a["crop"]["affine_photo_to_crop"])
    eye = np.mean(mesh[[468, 473]], axis=0) @ aff[:, :2].T + aff[:, 2]
    assert abs(eye[0] / 512 - 0.501) < 0.03 and abs(eye[1] / 512 - 0.421) < 0.03
    matte = np.asarray(Image.open(job / "face/matte.png"))
    assert matte.shape == (512, 512)
    emb = np.load(job / "face/identity.npy")
    assert emb.dtype == np.float32 and emb.shape == (a["identity"]["dim"],)
    Image.fromarray(np.concatenate([crop, np.asarray(Image.open(job / "face/crop_matte.png").convert("RGB"))],
                                   axis=1)).save(artifacts / "face_astronaut_crop_matte.png")


def test_refusal_keeps_the_job_folder(tmp_path, models_root):
    from skimage import data

    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    job = tmp_path / "job"
    with pytest.raises(FaceError) as e:
        _run(job, photo, models_root)
    assert e.value.code == "face.none"
    record = json.loads((job / "job.json").read_text())
    assert record["stages"]["face"]["status"] == "failed"
    assert record["stages"]["face"]["error"]["code"] == "face.none"
    assert record["stages"]["input"]["status"] == "done" and (job / "input/portrait.png").exists()
    assert not (job / "face").exists() or not any((job / "face").iterdir())


def test_exif_rotated_and_mirrored_photos_give_the_same_face(tmp_path, models_root, run_analyse):
    from headforge.backend.face.identity import identity_distance

    upright = astronaut()
    # stored turned by 90° with EXIF orientation 6 ("rotate 90 CW to display"): the input stage undoes it
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1)))
    exif = stored.getexif()
    exif[0x0112] = 6
    photo = tmp_path / "exif6.jpg"
    stored.save(photo, quality=95, exif=exif.tobytes())
    _run(tmp_path / "job", photo, models_root)
    a = json.loads((tmp_path / "job/face/analysis.json").read_text())
    ref = run_analyse(np.asarray(Image.open(tmp_path / "job/input/portrait.png").convert("RGB")))
    plain = run_analyse(upright)
    assert a["orientation"]["upright_deg"] == 0
    assert np.allclose(a["face"]["bbox"], plain.analysis["face"]["bbox"], atol=2.0)
    assert np.allclose(a["face"]["bbox"], ref.analysis["face"]["bbox"], atol=0.01)

    mirrored = run_analyse(np.ascontiguousarray(upright[:, ::-1]))
    b0, b1 = np.array(plain.analysis["face"]["bbox"]), np.array(mirrored.analysis["face"]["bbox"])
    assert np.allclose(b1[[2, 0]], 511 - b0[[0, 2]], atol=4.0)  # the box mirrors
    p0, p1 = plain.analysis["face"]["pose"], mirrored.analysis["face"]["pose"]
    assert abs(p0["yaw_deg"] + p1["yaw_deg"]) < 4 and abs(p0["roll_deg"] + p1["roll_deg"]) < 2
    assert abs(p0["pitch_deg"] - p1["pitch_deg"]) < 4
    d = identity_distance(plain.identity, mirrored.identity)
    print(f"dlib distance astronaut vs mirrored: {d:.4f}")
    assert d < 0.4


def test_identity_separates_the_people_in_t1(run_analyse):
    from headforge.backend.face.identity import identity_distance, identity_similarity

    img = group_t1()
    n = len(run_analyse(img).analysis["faces"])
    embs = [run_analyse(img, face=i).identity for i in range(n)]
    d = [identity_distance(embs[i], embs[j]) for i in range(n) for j in range(i + 1, n)]
    print(f"dlib distance between the {len(d)} pairs of different people in t1: min {min(d):.4f} mean {np.mean(d):.4f}")
    assert min(d) > 0.6
    assert identity_similarity(embs[0], embs[0]) == pytest.approx(1.0)
    assert identity_similarity(embs[0], embs[1]) < 0.99


def test_rgba_photo_uses_its_own_alpha(tmp_path, shared, models_root):
    src = shared / "fixtures/idts/framing/0001.png"
    job = tmp_path / "job"
    _run(job, src, models_root)
    a = json.loads((job / "face/analysis.json").read_text())
    assert a["matte"]["source"] == "alpha"
    alpha = np.asarray(Image.open(src))[..., 3]
    assert np.array_equal(np.asarray(Image.open(job / "face/matte.png")), alpha)
    # an already-framed reference portrait is left nearly as it is
    aff = np.array(a["crop"]["affine_photo_to_crop"])
    scale = np.sqrt(abs(np.linalg.det(aff[:, :2])))
    assert 0.75 < scale < 1.3, scale


def test_without_the_mesh_the_68_points_carry_pose_and_framing(run_analyse, monkeypatch):
    from headforge.backend.face import landmarks

    full = run_analyse(astronaut()).analysis
    monkeypatch.setattr(landmarks, "mesh_478", lambda *a, **k: None)
    a = run_analyse(astronaut()).analysis
    assert a["face"]["landmarks_478"] is None and "face.no_mesh" in {w["code"] for w in a["warnings"]}
    assert a["face"]["pose"]["source"] == "dlib68"
    assert abs(a["face"]["pose"]["yaw_deg"] - full["face"]["pose"]["yaw_deg"]) < 8
    s = [np.sqrt(abs(np.linalg.det(np.array(x["crop"]["affine_photo_to_crop"])[:, :2]))) for x in (a, full)]
    assert s[0] == pytest.approx(s[1], rel=0.1)  # 2D eye–mouth distance, corrected by pose ≈ the mesh's 3D one


def test_no_mesh_and_no_ict_is_a_coded_refusal(run_analyse, monkeypatch, tmp_path):
    """Without the mesh the pose comes from the 68 or 5 points, which need ICT-FaceKit: without it, a clear
    refusal (not an IndexError)."""
    from headforge.backend.face import landmarks, pose

    def no_ict():
        raise FileNotFoundError(tmp_path / "ict_face_light.npz")

    monkeypatch.setattr(landmarks, "mesh_478", lambda *a, **k: None)
    monkeypatch.setattr(pose, "model_points", no_ict)  # as without the archive (the real one is cached)
    with pytest.raises(FaceError) as e:
        run_analyse(astronaut())
    assert e.value.code == "face.no_pose" and "ICT-FaceKit" in e.value.message and e.value.hint
