"""The in-Blender backend installer, model operator and doctor, driven headless in bpy in a subprocess.

pip runs against a local wheel folder with --no-index and a tiny pure-Python package this test writes.
"""
import base64
import hashlib
import json
import os
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest

import pythons  # beside this file: the Blender Pythons the driver runs in
from tests.conftest import REPO, has_module

pytestmark = pytest.mark.skipif(not has_module("bpy"), reason="needs the bpy module")


def write_wheel(folder: Path, name: str = "hf_tinypkg", version: str = "1.0", files: dict | None = None) -> Path:
    """A valid pure-Python wheel (PEP 427): module (or `files`: path -> bytes), METADATA, WHEEL and a RECORD with
    sha256 digests."""
    files = {k: v if isinstance(v, bytes) else v.encode() for k, v in (files or {
        f"{name}/__init__.py": f"ANSWER = 42\nVERSION = {version!r}\n"}).items()}
    files.update({
        f"{name}-{version}.dist-info/METADATA": (f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\n"
                                                 f"Version: {version}\n"
                                                 "Summary: HeadForge installer test package\n").encode(),
        f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: headforge-tests\nRoot-Is-Purelib: true\n"
                                             b"Tag: py3-none-any\n",
    })
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{name}-{version}.dist-info/RECORD,,")
    files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
    return wheel


def write_sdist(folder: Path, name: str = "hf_srconly", version: str = "1.0") -> Path:
    """A pure-Python source distribution (setup.py): pip would build it if it were allowed to."""
    import io
    import tarfile

    base = f"{name}-{version}"
    files = {f"{base}/setup.py": f"from setuptools import setup\nsetup(name={name.replace('_', '-')!r}, "
                                 f"version={version!r}, packages=[{name!r}])\n",
             f"{base}/{name}/__init__.py": "ANSWER = 42\n",
             f"{base}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n"}
    sdist = folder / f"{base}.tar.gz"
    with tarfile.open(sdist, "w:gz") as t:
        for path, text in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(text.encode())
            t.addfile(info, io.BytesIO(text.encode()))
    return sdist


DRIVER = textwrap.dedent('''
    import importlib, json, site, sys, threading, time
    from pathlib import Path
    import bpy
    import extension_setup  # tests/blender, on PYTHONPATH

    repo, wheels, work = (Path(a) for a in sys.argv[1:4])
    facts = {}
    module = extension_setup.install(repo)
    extension_setup.enable(module)
    installer = importlib.import_module(module + ".addon.installer")
    prefs_mod = importlib.import_module(module + ".addon.preferences")
    registry = importlib.import_module(module + ".backend.models.registry")
    prefs = bpy.context.preferences.addons[module].preferences
    prefs.wheel_folder = str(wheels)
    prefs.models_dir = str(work / "models")
    prefs.jobs_root = str(work / "jobs")
    facts["online_access"] = bool(getattr(bpy.app, "online_access", True))
    facts["operators"] = [hasattr(bpy.ops.headforge, n) for n in
                          ("install_backend", "cancel_install", "remove_backend", "download_model", "run_doctor")]

    def call(op, **kw):
        try:
            return list(op(**kw))
        except RuntimeError as e:  # an operator that reported {'ERROR'}
            return ["RuntimeError", str(e)]

    deps = installer.deps_dir(module, create=False)
    facts["deps_dir"] = str(deps)
    facts["python"] = list(sys.version_info[:2])
    facts["importable_before"] = importlib.util.find_spec("hf_tinypkg") is not None
    facts["install"] = call(bpy.ops.headforge.install_backend, requirements="hf-tinypkg==1.0")
    facts["install_state"] = dict(prefs_mod.STATE["install"], log=None)
    facts["log_file"] = (deps.parent / f"install-{installer.python_tag()}.log").read_text()
    facts["marker"] = installer.installed_info(deps)
    facts["deps_listing"] = sorted(p.name for p in deps.iterdir())
    facts["on_path_after_install"] = str(deps) in sys.path
    with installer.backend_path(deps):
        facts["on_path_inside"] = str(deps) in sys.path
        import hf_tinypkg
        facts["answer"] = hf_tinypkg.ANSWER
        facts["module_file"] = hf_tinypkg.__file__
    facts["on_path_after_context"] = str(deps) in sys.path
    facts["in_site_packages"] = [p for p in site.getsitepackages() + [site.getusersitepackages()]
                                 if list(Path(p).glob("hf_tinypkg*"))]

    # A failing install (package not in the wheel folder) keeps the previous install.
    facts["install_missing"] = call(bpy.ops.headforge.install_backend, requirements="hf-notthere==9.9")
    facts["after_failure_marker"] = installer.installed_info(deps) is not None
    facts["after_failure_listing"] = sorted(p.name for p in deps.parent.iterdir() if p.name.startswith("deps-"))

    # Cancel while pip runs: nothing changes.
    inst = installer.Installer(deps, ["hf-tinypkg==1.0"], find_links=str(wheels), no_index=True,
                               log_path=work / "cancel.log").start()
    t0 = time.time()
    while inst._proc is None and time.time() - t0 < 60:
        time.sleep(0.01)
    inst.cancel()
    inst.finished.wait(120)
    facts["cancel_error"] = getattr(inst.error, "code", None)
    facts["after_cancel_marker"] = installer.installed_info(deps) is not None
    facts["after_cancel_listing"] = sorted(p.name for p in deps.parent.iterdir() if p.name.startswith("deps-"))

    # Models: online access respected; local-folder mode through the operator.
    facts["download_online"] = call(bpy.ops.headforge.download_model, model_id="yunet")
    facts["download_state"] = dict(prefs_mod.STATE["download"])
    src = work / "usb"
    src.mkdir()
    (src / "face_detection_yunet_2023mar.onnx").write_bytes(b"an html page or some other file")
    prefs.model_folder_import = str(src)
    facts["download_wrong_file"] = call(bpy.ops.headforge.download_model, model_id="yunet")
    data = b"a tiny model" * 1000
    (src / "tiny.onnx").write_bytes(data)
    import hashlib
    registry.ASSETS["tiny"] = registry.ModelAsset(
        id="tiny", title="tiny", purpose="tests", folder="tiny",
        files=(registry.ModelFile(name="tiny.onnx", sha256=hashlib.sha256(data).hexdigest()),),
        licence="MIT", licence_url="", commercial="yes", accept_terms=False)
    facts["download_tiny"] = call(bpy.ops.headforge.download_model, model_id="tiny")
    facts["tiny_installed"] = (work / "models/tiny/tiny.onnx").read_bytes() == data
    prefs.model_folder_import = ""
    facts["terms_refused"] = call(bpy.ops.headforge.download_model, model_id="insightface-buffalo_l")

    facts["doctor"] = call(bpy.ops.headforge.run_doctor)
    facts["doctor_checks"] = {c["check"]: c for c in prefs_mod.STATE["doctor"]}

    # The preferences draw without errors (headless: call draw with a stand-in layout).
    class Layout:
        def __getattr__(self, name):
            return lambda *a, **k: self
    class Self:
        pass
    try:
        p = prefs
        p_layout = Layout()
        type(prefs).draw(type("P", (), {"layout": p_layout, "bl_idname": module, **{k: getattr(prefs, k) for k in (
            "backend_mode", "wheel_folder", "models_dir", "model_folder_import", "external_python", "head_model",
            "flame_file")},
            "_draw_backend": type(prefs)._draw_backend, "_draw_models": type(prefs)._draw_models,
            "_draw_doctor": type(prefs)._draw_doctor})(), bpy.context)
        facts["draw"] = "ok"
    except Exception as e:
        facts["draw"] = f"{type(e).__name__}: {e}"

    facts["remove"] = call(bpy.ops.headforge.remove_backend)
    facts["after_remove"] = deps.exists()
    extension_setup.disable(module)
    facts["classes_left"] = sorted(n for n in dir(bpy.types) if n.startswith("HEADFORGE_"))
    print("FACTS " + json.dumps(facts, default=str))
''')


@pytest.fixture(scope="module", params=pythons.params())
def facts(request, tmp_path_factory):
    """The driver's facts, in this venv's bpy and in the Python 3.13 venv's bpy 5.3 (when there is one)."""
    tmp = tmp_path_factory.mktemp("installer")
    wheels = tmp / "wheels"
    wheels.mkdir()
    write_wheel(wheels)
    work = tmp / "work"
    work.mkdir()
    driver = tmp / "drive_installer.py"
    driver.write_text(DRIVER)
    env = pythons.env(tmp, PIP_CONFIG_FILE=os.devnull)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env["PYTHONPATH"]])
    env.pop("HEADFORGE_MODELS", None)
    proc = subprocess.run([request.param, str(driver), str(REPO), str(wheels), str(work)], capture_output=True,
                          text=True, env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(lines[-1][6:])


def test_operators_registered(facts):
    assert facts["operators"] == [True] * 5


def test_install_into_private_per_python_folder(facts):
    assert facts["install"] == ["FINISHED"], facts["install_state"]
    deps = Path(facts["deps_dir"])
    assert deps.name == f"deps-py{facts['python'][0]}.{facts['python'][1]}"
    assert "extensions" in deps.parts and "headforge" in deps.parts  # the extension's user folder
    assert {"hf_tinypkg", "headforge-deps.json"} <= set(facts["deps_listing"])
    assert facts["marker"]["requirements"] == ["hf-tinypkg==1.0"]
    assert facts["marker"]["torch_build"] in ("cpu", "cu126", "cu128", "default")
    assert "Successfully installed hf-tinypkg-1.0" in facts["log_file"] and "--no-index" in facts["log_file"]
    command = facts["log_file"].splitlines()[0]
    assert "--only-binary=:all:" in command and " -c " in command and "headforge-constraints.txt" in command
    assert facts["install_state"]["fraction"] == 1.0
    assert facts["in_site_packages"] == []  # never into Blender's (or the user's) site-packages


def test_an_install_by_an_older_version_asks_for_a_reinstall(facts):
    """The preferences say "Reinstall" when the installed set is not this version's (installer.is_current): an
    install from before the backend dropped mediapipe lacks threadpoolctl, which the video fit imports."""
    from headforge.addon import installer

    assert not installer.is_current(facts["marker"])  # this test's one-package set
    current = dict(facts["marker"], requirements=list(installer.BACKEND_REQUIREMENTS))
    assert installer.is_current(current)
    older = [r for r in installer.BACKEND_REQUIREMENTS if not r.startswith("threadpoolctl")]
    assert not installer.is_current(dict(current, requirements=older + ["mediapipe==0.10.21; python_version < '3.13'"]))
    assert not installer.is_current(None)


def test_folder_on_sys_path_only_while_needed(facts):
    assert not facts["importable_before"]
    assert not facts["on_path_after_install"]
    assert facts["on_path_inside"] and facts["answer"] == 42
    assert facts["module_file"].startswith(facts["deps_dir"])
    assert not facts["on_path_after_context"]


def test_failed_install_keeps_previous_and_reports(facts):
    assert facts["install_missing"][0] == "RuntimeError" and "install.no_wheel" in facts["install_missing"][1]
    assert "hf-notthere==9.9" in facts["install_missing"][1]  # the message names the package
    assert facts["after_failure_marker"]
    assert all(not n.endswith((".staging", ".old")) for n in facts["after_failure_listing"])


def test_cancel_changes_nothing(facts):
    assert facts["cancel_error"] == "cancelled"
    assert facts["after_cancel_marker"]
    assert all(not n.endswith((".staging", ".old")) for n in facts["after_cancel_listing"])


def test_models_from_preferences(facts):
    if not facts["online_access"]:
        assert facts["download_online"][0] == "RuntimeError"
        assert "model.online_access_off" in facts["download_online"][1]
    assert "model.hash_mismatch" in " ".join(facts["download_wrong_file"])
    assert facts["download_tiny"] == ["FINISHED"] and facts["tiny_installed"]
    assert facts["terms_refused"][0] == "RuntimeError" and "accept its licence" in facts["terms_refused"][1]


def test_doctor_in_preferences(facts):
    assert facts["doctor"] == ["FINISHED"]
    checks = facts["doctor_checks"]
    assert checks["blender"]["detail"].startswith("5.") and "online access" in checks["blender"]["detail"]
    assert checks["model tiny"]["status"] == "ok"
    assert "yunet" in checks["models"]["detail"] and "model yunet" not in checks  # missing models: one line
    assert Path(checks["models folder"]["detail"].split(" (")[0]).name == "models"
    assert facts["draw"] == "ok"


def test_remove_and_disable(facts):
    assert facts["remove"] == ["FINISHED"] and not facts["after_remove"]
    assert facts["classes_left"] == []


def _install(tmp_path, requirements, wheels, **kw):
    from headforge.addon import installer

    target = tmp_path / "deps-test"
    inst = installer.Installer(target, requirements, find_links=str(wheels), no_index=True,
                               log_path=tmp_path / "install.log", **kw)
    inst.run_blocking()
    return inst, target, (tmp_path / "install.log").read_text()


def test_constraints_keep_every_opencv_at_4_11(tmp_path):
    """An unpinned OpenCV (as a dependency asks for it) comes at 4.11.0.86 although 5.1 is on offer."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for version in ("4.11.0.86", "5.1.0.0"):
        write_wheel(wheels, "opencv_python", version, {"cv2_fake/__init__.py": f"V = {version!r}\n"})
    inst, target, log = _install(tmp_path, ["opencv-python"], wheels)
    assert inst.error is None, log
    assert (target / "opencv_python-4.11.0.86.dist-info").is_dir(), sorted(p.name for p in target.iterdir())


def test_missing_wheel_is_named_never_compiled(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_sdist(wheels)
    inst, target, log = _install(tmp_path, ["hf-srconly==1.0"], wheels)
    assert inst.error is not None and inst.error.code == "install.no_wheel", log
    assert "hf-srconly==1.0" in inst.error.message and "compiles nothing" in inst.error.message
    assert "Building wheel" not in log and "setup.py" not in log
    assert not target.exists()


def test_install_adds_mediapipe_models(tmp_path, monkeypatch):
    """The install's extra step: the legacy mediapipe wheel is fetched (here from the wheel folder) and its four
    model files land in the install, where the OpenCV runtime finds them and meshes the astronaut."""
    import importlib.util

    import numpy as np
    from skimage import data

    from headforge.backend.face import blaze

    spec = importlib.util.find_spec("mediapipe")
    modules = Path(next(iter(spec.submodule_search_locations))) / "modules" if spec else None
    if modules is None or not (modules / blaze.FILES["mesh"]).is_file():
        pytest.skip("needs the legacy mediapipe wheel's model files (Python <= 3.12) to build the test wheel")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    write_wheel(wheels)
    write_wheel(wheels, "mediapipe", "0.10.21",
                {f"mediapipe/modules/{f}": (modules / f).read_bytes() for f in blaze.FILES.values()})
    inst, target, log = _install(tmp_path, ["hf-tinypkg==1.0"], wheels, models=True)
    assert inst.error is None, log
    folder = target / blaze.FOLDER
    assert all((folder / f).read_bytes() == (modules / f).read_bytes() for f in blaze.FILES.values())
    assert not list(target.glob("_mediapipe_wheel")) and not (target / "mediapipe").exists()
    monkeypatch.setenv(blaze.ENV, str(folder))
    assert blaze.models_dir() == folder
    mesh = blaze.face_mesh(data.astronaut(), [180.8, 55.7, 270.8, 178.4])
    assert mesh.shape == (478, 3) and np.abs(mesh[[468, 473], :2] - [[204.4, 100.8], [247.3, 103.1]]).max() < 4


@pytest.mark.parametrize("cuda,system,variant", [((12, 9), "Linux", "cu128"), ((12, 6), "Windows", "cu126"),
                                                  ((11, 8), "Linux", "cpu"), (None, "Linux", "cpu"),
                                                  ((12, 8), "Darwin", "default")])
def test_torch_build_choice(cuda, system, variant):
    from headforge.addon.installer import torch_build

    got, index = torch_build({"name": "GPU", "cuda": cuda} if cuda else None, system)
    assert got == variant
    assert (index is None) == (variant == "default") and (index is None or index.endswith(variant))
