"""For driver scripts run in a fresh bpy process: install this repository as the `user_default` extension and
enable or disable it, raising on any error (Blender would only print it)."""
import shutil
from pathlib import Path

import bpy
import addon_utils

MODULE = "bl_ext.user_default.headforge"
_SKIP = shutil.ignore_patterns(".venv*", ".git", "tests", "benchmarks", "__pycache__", "test-artifacts",
                               "*.egg-info", "demo-job")


def _raise(error):
    raise error


def install(repo: Path) -> str:
    """Copy the repository into the user extension folder (what installing the built zip does)."""
    target = Path(bpy.utils.user_resource("EXTENSIONS", path="user_default", create=True)) / "headforge"
    shutil.copytree(repo, target, ignore=_SKIP)
    bpy.ops.extensions.repo_refresh_all()
    return MODULE


def enable(module: str = MODULE) -> None:
    addon_utils.enable(module, default_set=True, handle_error=_raise)


def disable(module: str = MODULE) -> None:
    addon_utils.disable(module, default_set=True, handle_error=_raise)
