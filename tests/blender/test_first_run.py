"""The artist's first run (issue 14), end to end in a Blender Python that starts with nothing of ours: an empty
Blender user folder and home, no ../shared beside the installed extension, no HEADFORGE_* variables.

- The Blender Python is a bare venv of the same interpreter holding only bpy and what bpy needs (numpy, requests,
  zstandard, cython…: what Blender bundles), so the backend's packages can only come from the add-on's installer.
- The backend is installed by the preferences' Install operator from a local wheel folder (pip --no-index). A full
  backend (torch, diffusers, gsplat…) cannot be installed offline here, so the operator gets the backend's own pins
  (installer.BACKEND_REQUIREMENTS) for the packages instant mode imports; their wheels, with every dependency, are
  repacked from the test venv's installed files (wheels_from_venv.py).
- ICT-FaceKit Light comes through the registry asset `ict-facekit` and the preferences' Download operator: the
  upstream archive's layout (ICT-FaceKit-<commit>/FaceXModel/*.obj, vertex_indices.json, LICENSE) is rebuilt from
  the team's .npz and served on 127.0.0.1; the registry entry's URL is the only thing the driver changes.
- Generate (mode Auto as the panel defaults) runs on the astronaut; the imported head is checked.

- Views mode needs torch, which this offline install leaves out; so the views-mode job that the panel's Generate made
  in the test venv's bpy (tests/conftest.views_job: render-views of the Lee Perry-Smith scan at 64 px, small splat
  and mesh settings) is imported here with the Import Job Results operator and the head is measured against its
  splat.
"""
import functools
import http.server
import json
import os
import subprocess
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pythons  # beside this file: the Blender Pythons the driver runs in
from tests.conftest import REPO, SHARED, has_module

pytestmark = [pytest.mark.skipif(not has_module("bpy"), reason="needs the bpy module"), pytest.mark.slow]
HERE = Path(__file__).resolve().parent
ICT_NPZ = SHARED / "data" / "ict_facekit" / "ict_face_light.npz"
# What instant mode (input → face → rig, the head imported in Blender) imports, by its pin's name in
# installer.BACKEND_REQUIREMENTS; setuptools for pkg_resources (face_recognition_models); onnxruntime, onnx and
# flatbuffers for MediaPipe's attention mesh (its model files through OpenCV and onnxruntime, no mediapipe package).
INSTANT_PACKAGES = ("numpy", "opencv-python-headless", "dlib-bin", "face-recognition-models",
                    "pygltflib", "scikit-image", "scipy", "pillow", "rich", "setuptools", "onnxruntime", "onnx",
                    "flatbuffers")


def write_ict_archive(npz: Path, licence: Path, out: Path, top: str) -> Path:
    """ICT-FaceKit's GitHub archive as the registry downloads it, from the converted .npz: quads rebuilt from
    triangle pairs with their materials, every identity and expression shape as a full OBJ."""
    z = np.load(npz)
    F, FU, t2p, mat, names = z["faces"], z["face_uv"], z["tri_to_poly"], z["tri_material"], z["material_names"]
    lines, cur, k = [], None, 0
    while k < len(F):
        quad = k + 1 < len(F) and t2p[k + 1] == t2p[k]
        vi = (F[k, 0], F[k, 1], F[k, 2], F[k + 1, 2]) if quad else tuple(F[k])
        ti = (FU[k, 0], FU[k, 1], FU[k, 2], FU[k + 1, 2]) if quad else tuple(FU[k])
        if str(names[mat[k]]) != cur:
            cur = str(names[mat[k]])
            lines.append(f"usemtl {cur}")
        lines.append("f " + " ".join(f"{a + 1}/{b + 1}" for a, b in zip(vi, ti)))
        k += 2 if quad else 1
    uv = z["uv"].astype(np.float64)
    tail = ("vt %.6f %.6f\n" * len(uv)) % tuple(uv.ravel()) + "\n".join(lines) + "\n"

    def obj(v):
        return (("v %.6f %.6f %.6f\n" * len(v)) % tuple(np.asarray(v, np.float64).ravel()) + tail).encode()

    base = f"{top}/FaceXModel/"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr(f"{top}/LICENSE", licence.read_bytes())
        zf.writestr(base + "generic_neutral_mesh.obj", obj(z["neutral"]))
        zf.writestr(base + "vertex_indices.json", json.dumps({
            "idx_to_landmark_verts": z["landmarks_68"].tolist(), "idx_to_fitting_verts": z["fitting_vertices"].tolist(),
            "idx_to_rigid_verts": z["rigid_vertices"].tolist()}))
        for i, d in enumerate(z["identity_basis"]):
            zf.writestr(base + f"identity{i:03d}.obj", obj(z["neutral"] + d))
        for n, d in zip(z["expression_names"], z["expression_basis"]):
            zf.writestr(base + f"{n}.obj", obj(z["neutral"] + d))
    return out


@pytest.fixture(scope="module")
def ict_url(tmp_path_factory):
    """The archive on a local HTTP server, at the file name the registry expects."""
    from headforge.backend.models import registry

    if not ICT_NPZ.is_file():
        pytest.fail(f"{ICT_NPZ} not found; set HEADFORGE_SHARED")
    folder = tmp_path_factory.mktemp("ict_server")
    name = registry.get("ict-facekit").files[0].name
    write_ict_archive(ICT_NPZ, ICT_NPZ.with_name("LICENSE.ict-facekit.txt"), folder / name,
                      name[: -len(".zip")])
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{name}"
    server.shutdown()


def instant_requirements(python_version: str) -> list[str]:
    """The backend's own pins for instant mode's packages, markers evaluated for that Python (no markers left)."""
    from packaging.requirements import Requirement

    from headforge.addon.installer import BACKEND_REQUIREMENTS

    out = []
    for line in BACKEND_REQUIREMENTS:
        req = Requirement(line)
        applies = req.marker is None or req.marker.evaluate({"python_version": python_version})
        if req.name in INSTANT_PACKAGES and applies:
            out.append(f"{req.name}{req.specifier}")
    return out


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, " ".join(map(str, cmd))[:500] + "\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module", params=pythons.params())
def first_run(request, tmp_path_factory, ict_url, astronaut_path, views_job):
    python = request.param
    tmp = tmp_path_factory.mktemp("first_run")
    info = json.loads(_run([python, "-c", "import json, sys, sysconfig; print(json.dumps([sys._base_executable, "
                            "'%d.%d' % sys.version_info[:2], sysconfig.get_paths()['purelib']]))"]).splitlines()[-1])
    base, version, purelib = info
    requirements = instant_requirements(version)
    wheels = tmp / "wheels"
    from headforge.addon.installer import SOURCE_ALLOWED  # taken from source only: repacked as an sdist

    sdists = [a for name in SOURCE_ALLOWED for a in ("--sdist", name)]
    build = ["setuptools", "wheel"]  # pip builds that sdist (a data copy) with these, from the same folder
    made = json.loads(_run([python, str(HERE / "wheels_from_venv.py"), str(wheels), *sdists, *requirements, *build],
                           timeout=600).splitlines()[-1])
    # a package whose files another one overwrote in the venv (cv2/: opencv-python, which insightface pulls into a
    # full install, over opencv-python-headless) is installed with it, as in the full backend install
    requirements += made["overwriters"]
    # a bare Python like Blender's own: bpy and what it needs, nothing of the backend, no pip (ensurepip's wheel)
    bare = tmp / "blender-python"
    _run([base, "-m", "venv", "--without-pip", str(bare)], timeout=300)
    bare_site = next((bare / "lib").glob("python3*/site-packages"))
    _run([python, str(HERE / "wheels_from_venv.py"), "--link", str(bare_site), "bpy"], timeout=300)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HEADFORGE_", "PIP_", "PYTHON", "BLENDER_", "VIRTUAL_ENV"))}
    env.update(HOME=str(tmp / "home"), BLENDER_USER_RESOURCES=str(tmp / "blender"), PYTHONPATH=str(HERE),
               PIP_CONFIG_FILE=os.devnull, HF_HUB_OFFLINE="1", PYTHONNOUSERSITE="1")
    # The installer extracts MediaPipe's model files from the mediapipe 0.10.21 wheel only with the full backend
    # set; no venv here holds that wheel, so the venv's copy is handed over (3.11: the test dependency mediapipe's
    # modules/; 3.13: the copy `make` extracted)
    env["HEADFORGE_MEDIAPIPE_MODELS"] = str(Path(purelib) / ("mediapipe_legacy_models" if version >= "3.13"
                                                             else "mediapipe/modules"))
    (tmp / "home").mkdir()
    proc = subprocess.run([str(bare / "bin" / "python"), str(HERE / "drive_first_run.py"), str(REPO), str(wheels),
                           " ".join(requirements), ict_url, str(astronaut_path), str(views_job)],
                          capture_output=True, text=True, env=env, timeout=900, cwd=tmp)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-4000:] + proc.stderr[-4000:]
    facts = json.loads(lines[-1][6:])
    facts.update(requirements=requirements, wheels=made, tmp=str(tmp))
    print(f"\nfirst run on Blender {facts['blender']} / Python {version}: {facts['first_run_s']} s from an empty user "
          f"folder to the imported head (backend install {facts['install_s']} s from {len(made['wheels'])} wheels, "
          f"{made['bytes'] / 1e6:.0f} MB; ICT-FaceKit download + unpack {facts['download_s']} s; Generate "
          f"{facts['generate_s']} s)")
    return facts


def test_starts_with_nothing_of_ours(first_run):
    assert not any(first_run["bare_python"].values()), first_run["bare_python"]
    tmp = Path(first_run["tmp"])
    # the defaults live in the (empty) home, not in a development checkout
    assert Path(first_run["models_dir"]).is_relative_to(tmp / "home")
    assert Path(first_run["jobs_root"]).is_relative_to(tmp / "home")
    assert first_run["ict_before"] is False


def test_backend_installed_by_the_preferences(first_run):
    assert first_run["install"] == ["FINISHED"]
    assert first_run["deps_marker"]["requirements"] == first_run["requirements"]
    assert not first_run["deps_on_path_after"]  # only while the backend runs
    # no mediapipe and none of what only it pulls in: the face stage runs its model files (blaze.py)
    assert not {"mediapipe", "jax", "jaxlib", "matplotlib"} & set(first_run["deps_packages"])


def test_without_ict_generate_says_how_to_get_it(first_run):
    assert first_run["generate_without_ict"][0] == "RuntimeError"
    assert first_run["error_without_ict"]["code"] == "model.ict_missing"
    assert "Preferences → HeadForge → Models" in first_run["error_without_ict"]["hint"]


def test_ict_downloaded_through_the_registry(first_run):
    # Blender starts with online access off: the download says so, and works once the artist allows it
    assert first_run["download_offline"][0] == "RuntimeError"
    assert "model.online_access_off" in first_run["download_offline"][1]
    assert first_run["download"] == ["FINISHED"] and first_run["ict_after"] is True


def test_generate_auto_runs_instant_and_imports_the_head(first_run):
    from headforge.backend.headmodel import ARKIT_52

    assert first_run["mode_setting"] == "auto"
    assert first_run["generate"] == ["FINISHED"], first_run["state"]
    assert first_run["job_mode"] == "instant" and "instant" in first_run["state"]["mode_note"].lower()
    assert {"input", "face", "rig"} <= set(first_run["job_stages"])
    coll = first_run["state"]["imported"]
    assert coll and first_run["new_collections"] == [coll]  # one collection, nothing else made
    objects = first_run["new_objects"]
    assert objects and all(o["collections"] == [coll] for o in objects), objects
    assert {o["type"] for o in objects} <= {"MESH", "ARMATURE", "EMPTY"}
    assert sorted(first_run["arkit_keys"]) == sorted(ARKIT_52)
    assert max(len(o["keys"]) for o in objects) >= 52
    assert first_run["orphan_meshes"] == []


def test_views_job_head_sits_on_its_splat(first_run):
    assert first_run["import_views"] == ["FINISHED"] and len(first_run["views_collections"]) == 1
    a = first_run["views_align"]
    print(f"views job in Blender {first_run['blender']}: head vertex → nearest splat centre median {a['median_mm']} "
          f"mm, 90th percentile {a['p90_mm']} mm ({a['head_vertices']} vertices, {a['splats']} splats)")
    assert a["median_mm"] < 6.0 and a["p90_mm"] < 15.0, a  # the frames apart (no to_reconstruction): ~80 mm
