"""The backend installs on every Python HeadForge supports: 3.11 and 3.12 with numpy 1.26, 3.13 (Blender 5.1+)
with numpy 2; none with mediapipe (its model files are taken from its wheel, see addon/installer.py). The
requirement set (pyproject's dependencies, which the add-on's installer carries) resolves with pip, binary wheels
only, for Python 3.12 and 3.13 interpreters found on this machine (skipped, saying why, when there is none); the
pins the installer carries agree with pyproject.toml, constraints.txt and requirements-py313.lock."""
import glob
import json
import os
import shutil
import subprocess
import tomllib

import pytest
from packaging.requirements import Requirement

from headforge.addon import installer
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def find_python(minor: int) -> tuple[str | None, str]:
    """(interpreter, "") for Python 3.<minor>: $HEADFORGE_PY3<minor>, python3.<minor> on PATH, pyenv's; or
    (None, why not)."""
    candidates = [os.environ.get(f"HEADFORGE_PY3{minor}"), shutil.which(f"python3.{minor}"),
                  *sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.{minor}*/bin/python")))]
    for python in filter(None, candidates):
        ok = subprocess.run([python, "-c", f"import sys, pip; assert sys.version_info[:2] == (3, {minor})"],
                            capture_output=True, timeout=60)
        if ok.returncode == 0:  # a pyenv shim answers even when that version is not enabled: ask the real one
            return python, ""
    return None, f"no Python 3.{minor} with pip found ($HEADFORGE_PY3{minor}, python3.{minor}, ~/.pyenv/versions)"


def pins(lines) -> dict[str, Requirement]:
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            out.setdefault(req.name.lower().replace("_", "-"), []).append(req)
    return out


def test_installer_carries_pyproject_and_constraints():
    assert list(installer.BACKEND_REQUIREMENTS) == PYPROJECT["dependencies"]
    lines = [ln.strip() for ln in (REPO / "constraints.txt").read_text().splitlines()]
    assert list(installer.CONSTRAINTS) == [ln for ln in lines if ln and not ln.startswith("#")]
    assert PYPROJECT["requires-python"] == ">=3.11,<3.14"


@pytest.mark.parametrize("version,numpy", [("3.11", "1.26.4"), ("3.12", "1.26.4"), ("3.13", "2.5.5")])
def test_markers_choose_the_set_for_each_python(version, numpy):
    env = {"python_version": version, "python_full_version": version + ".0"}
    active = [Requirement(r) for r in installer.BACKEND_REQUIREMENTS]
    active = [r for r in active if r.marker is None or r.marker.evaluate(env)]
    numpys = [r for r in active if r.name == "numpy"]
    assert len(numpys) == 1 and numpys[0].specifier.contains(numpy)
    assert not any(r.name in ("mediapipe", "jax", "jaxlib") for r in active)
    cons = [Requirement(c) for c in installer.CONSTRAINTS]
    cons = [c for c in cons if c.marker is None or c.marker.evaluate(env)]
    assert [c for c in cons if c.name == "numpy"][0].specifier.contains(numpy)
    assert all(c.specifier == Requirement("x==4.11.0.86").specifier for c in cons if c.name.startswith("opencv"))


def test_py313_lock_satisfies_pyproject():
    lock = pins((REPO / "requirements-py313.lock").read_text().splitlines())
    env = {"python_version": "3.13", "python_full_version": "3.13.0", "extra": "blender"}
    for dep in PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["blender"]:
        req = Requirement(dep)
        if (req.marker is not None and not req.marker.evaluate(env)) or req.name == "torch":
            continue  # torch: per machine (CPU or CUDA build), like requirements.lock
        name = req.name.lower().replace("_", "-")
        assert name in lock, f"{dep} missing from requirements-py313.lock"
        version = str(lock[name][0].specifier).removeprefix("==")
        assert req.specifier.contains(version, prereleases=True), (dep, version)
    assert "mediapipe" not in lock and "torch" not in lock
    assert all(str(r[0].specifier) == "==4.11.0.86" for n, r in lock.items() if n.startswith("opencv"))


def resolve(python: str, tmp_path) -> list[dict]:
    """pip's resolution of the installer's requirement set and constraints for `python` (nothing installed)."""
    reqs, cons, report = tmp_path / "req.txt", installer.write_constraints(tmp_path), tmp_path / "report.json"
    reqs.write_text("\n".join(installer.BACKEND_REQUIREMENTS) + "\n")
    cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", *installer.binary_options(),
           "-c", str(cons), "-r", str(reqs), "--report", str(report)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{installer.missing_wheel(proc.stderr.splitlines())}: {proc.stderr[-3000:]}"
    return json.loads(report.read_text())["install"]


@pytest.mark.slow
@pytest.mark.parametrize("minor", [13, 12])
def test_requirement_set_resolves_to_binary_wheels(minor, tmp_path):
    python, why = find_python(minor)
    if python is None:
        pytest.skip(why)
    got = {i["metadata"]["name"].lower().replace("_", "-"): i for i in resolve(python, tmp_path)}
    sources = sorted(n for n, i in got.items() if not i["download_info"]["url"].endswith(".whl"))
    assert sources == list(installer.SOURCE_ALLOWED), f"would build from source: {sources}"
    numpy = got["numpy"]["metadata"]["version"]
    if minor >= 13:
        assert int(numpy.split(".")[0]) == 2 and int(numpy.split(".")[1]) >= 2, numpy
    else:
        assert numpy == "1.26.4"
    # mediapipe and what only it pulls in (jax, jaxlib: ~370 MB installed) stay out: its models come from its wheel
    assert not {"mediapipe", "jax", "jaxlib", "opencv-contrib-python"} & set(got), sorted(got)
    opencv = {n: i["metadata"]["version"] for n, i in got.items() if n.startswith("opencv")}
    assert opencv and set(opencv.values()) == {"4.11.0.86"}, opencv
    assert got["torch"]["metadata"]["version"] == "2.13.0"
    for name, item in got.items():  # every wheel is built for this Python (or is Python-agnostic)
        tag = item["download_info"]["url"].rsplit("/", 1)[-1].split("-")[-3:]
        if name not in installer.SOURCE_ALLOWED:
            assert tag[0].startswith(("py3", "py2", f"cp3{minor}")) or tag[1] == "abi3", (name, tag)
