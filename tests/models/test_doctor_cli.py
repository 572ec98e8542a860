"""`headforge doctor` model/folder checks and the `headforge models` sub-commands."""
import hashlib
import json

import pytest

from headforge.backend import doctor
from headforge.backend.cli import main
from headforge.backend.models import download as dl
from headforge.backend.models import registry
from headforge.backend.models.registry import ModelAsset, ModelFile


def by_name(checks):
    return {c["check"]: c for c in checks}


def test_doctor_reports_each_model_and_folder(tmp_path, monkeypatch):
    root = tmp_path / "models"
    yunet = registry.get("yunet")
    folder = root / yunet.folder
    folder.mkdir(parents=True)
    (folder / yunet.files[0].name).write_bytes(b"x" * 1000)  # wrong size: a file replaced by something else
    pack = root / "insightface/models/buffalo_sc"
    pack.mkdir(parents=True)
    (pack / "det_500m.onnx").write_bytes(b"partial pack")  # w600k_mbf.onnx absent
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    checks = by_name(doctor.diagnose(root, blocker / "jobs"))
    assert checks["model yunet"]["status"] == "error" and "expected 232589" in checks["model yunet"]["detail"]
    assert checks["model yunet"]["advice"] == "headforge models download yunet  (re-fetches the bad file)"
    sc = checks["model insightface-buffalo_sc"]
    assert sc["status"] == "warn" and sc["detail"].startswith("partial") and "--accept-terms" in sc["advice"]
    assert "model hqhead-stage1" not in checks and "model flame" not in checks  # missing: one compact line
    assert checks["models"]["status"] == "ok" and "hqhead-stage1" in checks["models"]["detail"]
    assert "flame (yours to supply)" in checks["models"]["detail"]
    assert checks["jobs folder"]["status"] == "error" and "NOT writable" in checks["jobs folder"]["detail"]
    assert checks["jobs folder"]["blocking"]
    assert checks["models folder"]["status"] == "ok" and "GiB free" in checks["models folder"]["detail"]
    assert checks["blender"]["detail"].startswith("not running inside Blender") or "online access" in \
        checks["blender"]["detail"]
    assert all(c["advice"] for c in checks.values() if c["status"] != "ok")  # one line of advice per problem
    assert all("\n" not in c["advice"] for c in checks.values())


def test_doctor_present_model_is_ok(tmp_path, monkeypatch):
    root = tmp_path / "models"
    data = b"tiny model" * 100
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.onnx").write_bytes(data)
    monkeypatch.setitem(registry.ASSETS, "tiny", ModelAsset(
        id="tiny", title="tiny", purpose="tests", folder="tiny",
        files=(ModelFile(name="m.onnx", sha256=hashlib.sha256(data).hexdigest()),), licence="MIT",
        licence_url="", commercial="yes", accept_terms=False))
    dl.download("tiny", root=root, from_folder=src)
    assert by_name(doctor.diagnose(root, tmp_path / "jobs"))["model tiny"]["status"] == "ok"


def test_models_cli_list_path_verify(tmp_path, capsys, monkeypatch):
    root = str(tmp_path / "models")
    assert main(["--json", "models", "--root", root, "list"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ids = {r["id"]: r for r in rows}
    assert {"hqhead-stage1", "hqhead-stage2", "hqhead-arcface", "clip-vit-h14", "aesthetic-predictor",
            "insightface-buffalo_l", "ict-facekit", "flame"} <= set(ids)
    assert ids["hqhead-stage1"]["files"][0]["source"] == "hf://BarryGao/HQ-Head/low_stage.pt@main"
    assert ids["flame"]["user_supplied"] and ids["flame"]["commercial"] == "no"
    assert ids["insightface-buffalo_l"]["accept_terms"] and ids["insightface-buffalo_l"]["commercial"] == "no"
    assert ids["hqhead-stage1"]["hash"] == "pin on first verified download"
    assert ids["yunet"]["hash"] == "known" and all(r["status"] == "missing" for r in rows)

    assert main(["models", "--root", root, "list"]) == 0
    assert "pin on first verified download" in capsys.readouterr().out

    assert main(["models", "--root", root, "path", "yunet"]) == 1  # not installed: a typed error
    assert "not installed" in capsys.readouterr().err

    src = tmp_path / "usb"
    src.mkdir()
    (src / "face_detection_yunet_2023mar.onnx").write_bytes(b"not the real model")
    assert main(["models", "--root", root, "download", "yunet", "--from", str(src)]) == 1
    assert "model.hash_mismatch" in capsys.readouterr().err
    assert main(["models", "--root", root, "verify", "yunet"]) == 1
    assert "missing" in capsys.readouterr().out


@pytest.mark.parametrize("model_id", list(registry.ASSETS))
def test_registry_entries_are_complete(model_id):
    a = registry.get(model_id)
    assert a.title and a.purpose and a.folder and a.files and a.licence and a.licence_url
    assert a.commercial in ("yes", "no", "conditional", "unknown")
    if a.commercial in ("no", "unknown"):
        assert a.accept_terms, "non-commercial or unclear terms must ask first"
    for f in a.files:
        assert bool(f.hf) + bool(f.url) == (0 if a.user_supplied else 1)
        assert f.sha256 is None or len(f.sha256) == 64
    if a.size is None:
        assert a.approx_size or a.user_supplied


def test_doctor_ends_with_what_this_machine_can_run(tmp_path, monkeypatch, shared):
    import torch

    from headforge.backend.idts import readiness
    from tests.models.test_full_mode import converted_weights

    root = tmp_path / "models"
    monkeypatch.delenv("HEADFORGE_ICT", raising=False)
    checks = doctor.diagnose(root, tmp_path / "jobs")
    report = doctor.format_report(checks)
    assert len([line for line in report.splitlines() if "not downloaded" in line]) == 1  # was one per asset
    last = checks[-1]
    assert last["check"] == "can run" and last["detail"] == "this machine can run no mode yet"
    assert last["advice"].startswith("headforge models download ict-facekit")
    assert report.splitlines()[-2].split()[:3] == ["warn", "can", "run"]

    monkeypatch.setenv("HEADFORGE_ICT", str(shared / "data/ict_facekit/ict_face_light.npz"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    last = doctor.diagnose(root, tmp_path / "jobs")[-1]
    assert last["detail"] == "this machine can run: instant, views (not full: no CUDA GPU here)"
    assert "NVIDIA GPU" in last["advice"]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, without running on it
    monkeypatch.setattr(readiness, "nvidia_driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (40 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "test GPU")
    monkeypatch.setattr(doctor, "_gsplat", lambda: doctor._check("gsplat", "ok", "not checked here"))
    last = doctor.diagnose(root, tmp_path / "jobs")[-1]
    assert last["status"] == "warn" and last["detail"].startswith("this machine can run: instant, views (not full: ")
    assert "headforge models download hqhead-stage1 hqhead-stage2" in last["advice"]
    converted_weights(root)
    last = doctor.diagnose(root, tmp_path / "jobs")[-1]
    assert (last["status"], last["detail"], last["advice"]) == ("ok", "this machine can run: instant, full, views", "")
    last = doctor.diagnose(root, tmp_path / "jobs", device="cpu")[-1]  # the Blender preferences' Device: CPU
    assert last["detail"] == "this machine can run: instant, views (not full: the device is set to CPU)"
    assert last["advice"] == "choose Automatic or CUDA as the device"


def test_doctor_face_mesh_without_mediapipe_solutions(tmp_path, monkeypatch):
    """An installed backend has no mediapipe package (and Python 3.13 no mediapipe.solutions): the doctor reports the
    OpenCV runtime and where its models are, and a blocking error naming the fix when they are absent (not a warning
    about the mediapipe module)."""
    import importlib.util

    from headforge.backend.face import blaze, landmarks

    modules = blaze.models_dir()  # this venv's legacy mediapipe carries them
    monkeypatch.setattr(landmarks, "_has_solutions", lambda: False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mediapipe" else real_find_spec(n, *a))
    monkeypatch.setattr(blaze.sys, "path", [])
    monkeypatch.setenv(blaze.ENV, str(modules))
    mesh = by_name(doctor.diagnose(tmp_path, tmp_path / "jobs", models=False))["face mesh"]
    assert mesh["status"] == "ok" and "OpenCV" in mesh["detail"] and str(modules) in mesh["detail"]
    monkeypatch.setenv(blaze.ENV, str(tmp_path / "empty"))
    mesh = by_name(doctor.diagnose(tmp_path, tmp_path / "jobs", models=False))["face mesh"]
    assert mesh["status"] == "error" and mesh["blocking"] and "face_landmark_with_attention.tflite" in mesh["detail"]
    assert "Reinstall the backend" in mesh["advice"]
