"""Install the backend's pinned dependencies with Blender's own Python into a private, per-Python folder.

The folder is `extension_path_user(<extension>, path="deps-pyX.Y")`, never Blender's site-packages. pip runs in
a child process (`sys.executable -m pip install --target <staging>`); the staging folder replaces the old one
only when pip succeeded, so a cancel or a failure leaves the previous install (or none) untouched. The folder
joins `sys.path` only inside `backend_path()`, while the add-on needs the backend.

pip gets the requirement set of the running Python (BACKEND_REQUIREMENTS: markers pick 3.11/3.12 or 3.13), the
constraints with -c (one numpy, every OpenCV at 4.11.0.86), and binary wheels only: a package without a wheel for
this Python is an `install.no_wheel` error naming it, never a compile. MediaPipe's face models are copied out of
the mediapipe 0.10.21 wheel afterwards, on every Python (backend/face/blaze.py runs them through OpenCV and
onnxruntime): mediapipe itself is not installed, which spares the install mediapipe, jax, jaxlib and a second
OpenCV (opencv-contrib-python): 630 MB installed on Python 3.11.

Nothing here imports torch; bpy is imported only where an extension folder must be resolved.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .runner import BackgroundTask

# Mirrors pyproject.toml's [project] dependencies, environment markers included: pip keeps the lines for the
# running Python, so this one list is the requirement set of 3.11, 3.12 and 3.13 (tests/blender/test_installer.py
# checks it agrees with pyproject.toml, and resolves it for 3.12 and 3.13 to binary wheels).
BACKEND_REQUIREMENTS = (
    "torch==2.13.0", "numpy==1.26.4; python_version < '3.13'", "numpy>=2.2,<3; python_version >= '3.13'",
    "diffusers==0.42.1", "transformers==5.23.0", "accelerate==1.15.0", "safetensors==0.8.0", "huggingface_hub==2.4.0",
    "gsplat==1.5.3", "insightface==2.1", "onnxruntime==1.32.0",
    "onnx==1.22.0; python_version < '3.13'", "onnx==1.23.2; python_version >= '3.13'", "flatbuffers==25.12.19",
    "opencv-python-headless==4.11.0.86", "dlib-bin==20.0.1.post1", "face-recognition-models==0.3.0",
    "trimesh==5.2.0", "pymeshlab==2025.7.post1", "xatlas==0.0.11", "pygltflib==1.16.5", "scikit-image==0.26.0",
    "scipy==1.17.1", "threadpoolctl==3.8.0", "pillow==13.0.0", "rich==15.0.0", "setuptools<81",
)
# The lines of constraints.txt (same check): passed to pip with -c, so no dependency can pull in another numpy or
# a second OpenCV.
CONSTRAINTS = (
    "torch==2.13.0", 'numpy==1.26.4; python_version < "3.13"', 'numpy>=2.2,<3; python_version >= "3.13"',
    "opencv-python==4.11.0.86", "opencv-python-headless==4.11.0.86", "opencv-contrib-python==4.11.0.86",
    "opencv-contrib-python-headless==4.11.0.86", 'protobuf<5; python_version < "3.13"',
)
# Binary wheels only: a package without a wheel for this Python is reported by name, never compiled. The one
# exception is a data-only source package (dlib's model files; nothing to compile).
SOURCE_ALLOWED = ("face-recognition-models",)
TORCH_INDEX = "https://download.pytorch.org/whl/{}"
CUDA_BUILDS = ((12, 8, "cu128"), (12, 6, "cu126"))  # newest first: the driver's CUDA version must reach it
MARKER = "headforge-deps.json"


def python_tag() -> str:
    return f"py{sys.version_info.major}.{sys.version_info.minor}"


def extension_folder(package: str, sub: str = "", create: bool = True) -> Path:
    import bpy

    return Path(bpy.utils.extension_path_user(package, path=sub, create=create))


def deps_dir(package: str, create: bool = True) -> Path:
    """The private dependency folder for this Python version (one per X.Y: wheels are version-specific)."""
    return extension_folder(package, f"deps-{python_tag()}", create=create)


def detect_nvidia() -> dict | None:
    """{'name', 'driver', 'cuda': (major, minor)} of the first NVIDIA GPU, or None (no driver, no GPU)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        query = subprocess.run([exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=15)
        header = subprocess.run([exe], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return None
    if query.returncode != 0 or not query.stdout.strip():
        return None
    name, _, driver = query.stdout.strip().splitlines()[0].partition(",")
    m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", header.stdout)
    return {"name": name.strip(), "driver": driver.strip(), "cuda": (int(m[1]), int(m[2])) if m else None}


def torch_build(gpu: dict | None = None, system: str | None = None) -> tuple[str, str | None]:
    """(variant, extra index URL) for torch: a CUDA build the driver supports, else the CPU build.

    macOS gets PyPI's default wheel (Metal); Windows and Linux without an NVIDIA GPU get the CPU index.
    """
    system = system or platform.system()
    if system == "Darwin":
        return "default", None
    cuda = (gpu or {}).get("cuda")
    if cuda:
        for major, minor, tag in CUDA_BUILDS:
            if cuda >= (major, minor):
                return tag, TORCH_INDEX.format(tag)
    return "cpu", TORCH_INDEX.format("cpu")


def pip_base() -> list[str]:
    """How to run pip with this Python: its own pip, or the pip wheel that ensurepip bundles (run from the zip)."""
    import importlib.util

    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    import ensurepip

    bundled = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not bundled:
        from ..backend.errors import DependencyError

        raise DependencyError("This Python has neither pip nor ensurepip's bundled pip wheel.",
                              code="install.no_pip", hint="Use External Python mode with a Python that has pip.")
    return [sys.executable, str(bundled[-1] / "pip")]


def binary_options() -> list[str]:
    return ["--only-binary=:all:"] + [f"--no-binary={name}" for name in SOURCE_ALLOWED]


def write_constraints(folder: Path) -> Path:
    path = Path(folder) / "headforge-constraints.txt"
    path.write_text("\n".join(CONSTRAINTS) + "\n", encoding="utf-8")
    return path


def pip_command(target: Path, requirements, *, extra_index_url: str | None = None, find_links: str | None = None,
                no_index: bool = False, constraints: Path | None = None) -> list[str]:
    cmd = pip_base() + ["install", "--target", str(target), "--upgrade", "--no-input", "--progress-bar", "off",
                        "--disable-pip-version-check", "--no-warn-script-location", *binary_options()]
    if constraints:
        cmd += ["-c", str(constraints)]
    if no_index:
        cmd.append("--no-index")
    if find_links:
        cmd += ["--find-links", str(find_links)]
    if extra_index_url and not no_index:
        cmd += ["--extra-index-url", extra_index_url]
    return cmd + list(requirements)


def missing_wheel(log_lines) -> str | None:
    """The requirement pip found no installable (binary) distribution for, from its log; None when not that."""
    for line in log_lines:
        m = re.match(r"ERROR: (?:Could not find a version that satisfies the requirement|"
                     r"No matching distribution found for) ([^\s(]+)", line)
        if m:
            return m[1]
    return None


def models_download_command(dest: Path, *, find_links: str | None = None, no_index: bool = False) -> list[str]:
    """pip download of the legacy mediapipe wheel (for Python 3.12: any platform's wheel carries the same
    .tflite files); nothing of it is installed, `blaze.extract_models` copies the four model files out."""
    from ..backend.face.blaze import WHEEL

    cmd = pip_base() + ["download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12", "--dest",
                        str(dest), "--no-input", "--progress-bar", "off", "--disable-pip-version-check"]
    if no_index:
        cmd.append("--no-index")
    if find_links:
        cmd += ["--find-links", str(find_links)]
    return cmd + [WHEEL]


def installed_info(target: Path) -> dict | None:
    """The marker written after a complete install (Python, torch build, requirements), or None."""
    try:
        return json.loads((Path(target) / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def is_current(info: dict | None) -> bool:
    """Whether an install (its marker, installed_info) holds this version's requirement set: an install made by an
    older HeadForge (e.g. with mediapipe and without threadpoolctl) needs a reinstall to run this backend."""
    return info is not None and info.get("requirements") == list(BACKEND_REQUIREMENTS)


@contextlib.contextmanager
def backend_path(target: Path):
    """Put the dependency folder first on sys.path for the duration (modules imported meanwhile stay loaded)."""
    entry = str(target)
    added = entry not in sys.path and Path(target).is_dir()
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def remove(target: Path) -> bool:
    """Delete an install (and any leftover staging folder); True when something was removed."""
    target = Path(target)
    found = False
    for p in (target, target.with_name(target.name + ".staging"), target.with_name(target.name + ".old")):
        if p.exists():
            shutil.rmtree(p)
            found = True
    if str(target) in sys.path:
        sys.path.remove(str(target))
    return found


_active: "Installer | None" = None


class Installer(BackgroundTask):
    """pip in a child process, its output turned into ProgressEvents on `events` (stage 'install').

    Same shape as runner.JobRunner: start() in a thread or run_blocking(); drain(); cancel(); `error` and
    `finished`. `log` keeps pip's lines; the full log is also written to `log_path`.
    """

    def __init__(self, target: Path, requirements=BACKEND_REQUIREMENTS, *, find_links: str | None = None,
                 no_index: bool = False, gpu: dict | None = None, log_path: Path | None = None,
                 models: bool | None = None):
        super().__init__()
        self.target = Path(target)
        self.requirements = tuple(requirements)
        # MediaPipe's model files: by default with the backend's own set (not with a test's set)
        self.with_models = self.requirements == BACKEND_REQUIREMENTS if models is None else models
        self.find_links, self.no_index = find_links, no_index
        self.variant, self.index_url = torch_build(gpu)
        self.log_path = Path(log_path) if log_path else self.target.with_name(f"install-{python_tag()}.log")
        self.log: list[str] = []
        self._proc: subprocess.Popen | None = None

    def _emit(self, kind: str, fraction: float, message: str) -> None:
        from ..backend.events import ProgressEvent

        self.events.put(ProgressEvent(kind, "install", fraction=fraction, overall=fraction, message=message))

    def _work(self) -> None:
        from ..backend.errors import Cancelled, DependencyError, HeadForgeError

        staging = self.target.with_name(self.target.name + ".staging")
        try:
            if staging.exists():
                shutil.rmtree(staging)
            staging.parent.mkdir(parents=True, exist_ok=True)
            constraints = write_constraints(staging.parent)
            cmd = pip_command(staging, self.requirements, extra_index_url=self.index_url,
                              find_links=self.find_links, no_index=self.no_index, constraints=constraints)
            self._emit("stage_start", 0.0, f"Installing {len(self.requirements)} packages (torch: {self.variant})")
            self._run_pip(cmd)
            if self.with_models:
                self._install_models(staging)
            if self.cancel_token.cancelled:
                raise Cancelled("Install cancelled; nothing was changed.")
            (staging / MARKER).write_text(json.dumps({
                "python": platform.python_version(), "torch_build": self.variant,
                "requirements": list(self.requirements), "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S")},
                indent=1))
            old = self.target.with_name(self.target.name + ".old")
            if self.target.exists():
                os.replace(self.target, old)
            os.replace(staging, self.target)
            if old.exists():
                shutil.rmtree(old, ignore_errors=True)
            self._emit("stage_done", 1.0, f"Backend installed in {self.target}")
        except HeadForgeError as e:
            self.error = e
        except OSError as e:
            self.error = DependencyError(f"Install failed: {e}", code="install.failed")
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
            if self.error is not None:
                self._emit("error", 0.0, str(self.error))
            self.finished.set()

    def _install_models(self, staging: Path) -> None:
        from ..backend.face.blaze import extract_models

        download = staging / "_mediapipe_wheel"
        self._emit("progress", 0.96, "MediaPipe's face models (from the mediapipe 0.10.21 wheel)")
        self._run_pip(models_download_command(download, find_links=self.find_links, no_index=self.no_index),
                      append=True)
        extract_models(next(download.glob("mediapipe-*.whl")), staging)
        shutil.rmtree(download, ignore_errors=True)

    def _run_pip(self, cmd: list[str], append: bool = False) -> None:
        from ..backend.errors import Cancelled, DependencyError

        env = {**os.environ, "PYTHONNOUSERSITE": "1", "PIP_NO_INPUT": "1", "PYTHONUNBUFFERED": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        seen, expected = 0, max(1, len(self.requirements) * 3)  # pins pull in about two more each
        with open(self.log_path, "a" if append else "w", encoding="utf-8") as log:
            log.write("$ " + " ".join(cmd) + "\n")
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                          env=env, bufsize=1)
            for line in self._proc.stdout:
                line = line.rstrip()
                log.write(line + "\n")
                log.flush()
                self.log.append(line)
                del self.log[:-400]
                if self.cancel_token.cancelled:
                    break
                if line.startswith(("Collecting ", "Processing ", "Looking in")):
                    seen += line.startswith(("Collecting ", "Processing "))
                    self._emit("progress", min(0.7, 0.7 * seen / expected), line[:120])
                elif line.startswith("Installing collected packages"):
                    self._emit("progress", 0.8, "Installing collected packages…")
                elif line.startswith("Successfully installed"):
                    self._emit("progress", 0.95, line[:120])
            if self.cancel_token.cancelled:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                raise Cancelled("Install cancelled; nothing was changed.")
            code = self._proc.wait()
        if code != 0:
            missing = missing_wheel(self.log)
            if missing:
                raise DependencyError(
                    f"No binary wheel of {missing} for Python {platform.python_version()} on {platform.system()} "
                    f"{platform.machine()}; HeadForge installs wheels only and compiles nothing.",
                    code="install.no_wheel", hint=f"The full pip log is in {self.log_path}. Use a Blender whose Python "
                    "HeadForge supports (3.11 or 3.13), or External Python mode.")
            tail = next((ln for ln in reversed(self.log) if ln.startswith("ERROR")), f"pip exited with {code}")
            raise DependencyError(f"pip failed: {tail}", code="install.failed",
                                  hint=f"The full pip log is in {self.log_path}.")

    thread_name = "headforge-install"

    def _activate(self) -> None:
        global _active
        _active = self

    def cancel(self) -> None:
        super().cancel()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()


def active() -> Installer | None:
    return _active if _active is not None and not _active.finished.is_set() else None
