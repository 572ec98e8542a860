"""The Blender Pythons the Blender tests run their driver scripts in: this venv's bpy, and the Python 3.13 venv
with bpy 5.3 (native Gaussian splats) when there is one: $HEADFORGE_PY313, else REPO/.venv313/bin/python.

`params()` gives pytest params (a skipped one, with the reason, when the 3.13 venv is absent); `env(python, tmp)`
the environment a driver needs there (a throw-away Blender user folder and `headforge` importable)."""
import glob
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def py313() -> tuple[str | None, str]:
    """(python, "") when a Python with bpy 5.3 is there, else (None, why not)."""
    python = os.environ.get("HEADFORGE_PY313") or str(REPO / ".venv313" / "bin" / "python")
    if not Path(python).is_file():
        return None, f"no Python 3.13 venv with bpy 5.3 ({python} absent; set HEADFORGE_PY313 or make it)"
    venv = Path(python).parents[1]  # not resolved: a venv's python links to the base interpreter
    if not glob.glob(str(venv / "lib" / "python3*" / "site-packages" / "bpy" / "__init__*")):
        return None, f"{python} has no bpy installed"
    return python, ""


def params() -> list:
    python, why = py313()
    return [pytest.param(sys.executable, id="bpy-venv"),
            pytest.param(python, id="bpy-5.3", marks=pytest.mark.skipif(python is None, reason=why))]


def env(tmp: Path, **extra) -> dict:
    """Environment for a driver subprocess: its own Blender user folder, `headforge` importable."""
    link_dir = tmp / "pythonpath"
    link_dir.mkdir(parents=True, exist_ok=True)
    if not (link_dir / "headforge").exists():
        (link_dir / "headforge").symlink_to(REPO, target_is_directory=True)
    path = os.pathsep.join([str(link_dir)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return {**os.environ, "BLENDER_USER_RESOURCES": str(tmp / "blender"), "PYTHONPATH": path, **extra}


def blender_ext(python: str) -> Path:
    """Blender's extension command-line tool (`blender --command extension …`) inside that Python's bpy."""
    import subprocess

    out = subprocess.run([python, "-c", "import bpy, os, sys; sys.stdout.write(bpy.utils.system_resource('SCRIPTS'))"],
                         capture_output=True, text=True, timeout=300)
    path = Path(out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "") / "addons_core" / "bl_pkg" / \
        "cli" / "blender_ext.py"
    assert path.is_file(), f"blender_ext.py not found for {python}: {out.stdout[-500:]} {out.stderr[-500:]}"
    return path
