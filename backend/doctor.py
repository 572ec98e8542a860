"""`headforge doctor`: what this machine can run, and one line of advice per problem."""
from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from .errors import HeadForgeError


def default_models_dir() -> Path:
    from .models import store

    return store.models_root()


def default_jobs_dir() -> Path:
    return Path(os.environ.get("HEADFORGE_JOBS", Path.home() / "headforge-jobs"))


def _check(name, status, detail, advice="", blocking=False) -> dict:
    return {"check": name, "status": status, "detail": detail, "advice": advice, "blocking": blocking}


def diagnose(models_dir: str | os.PathLike | None = None, jobs_dir: str | os.PathLike | None = None,
             *, models: bool = True, device: str = "auto") -> list[dict]:
    """Every check, in reading order, the last saying what this machine can run with `device` (auto | cuda |
    cpu). The folders default to the models store's root and $HEADFORGE_JOBS."""
    checks = [_check("python", "ok", f"{platform.python_version()} ({platform.platform()})"), _blender()]
    try:
        import torch

        checks.append(_check("torch", "ok", torch.__version__))
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            checks.append(_check("cuda", "ok", f"{torch.cuda.get_device_name(0)}, {free / 2**30:.1f} of "
                                               f"{total / 2**30:.1f} GiB free, CUDA {torch.version.cuda}"))
        else:
            checks.append(_check("cuda", "warn", "no CUDA GPU: multi-view diffusion and splat fitting run on "
                                 "the CPU only at tiny sizes", "use --mode instant, or a machine with an NVIDIA GPU"))
    except ImportError:
        checks.append(_check("torch", "error", "not installed", "run `make demo` or install torch==2.13.0",
                             blocking=True))
    checks.append(_gsplat())
    for mod, why in (("bpy", "Blender as a module: render-views and the Blender tests"),
                     ("diffusers", "multi-view diffusion"), ("insightface", "SCRFD face detection"),
                     ("trimesh", "meshes"),
                     ("pymeshlab", "mesh clean-up"), ("xatlas", "UV unwrapping")):
        spec = importlib.util.find_spec(mod)
        checks.append(_check(mod, "ok" if spec else "warn", "present" if spec else f"missing ({why})",
                             "" if spec else f"pip install the pinned {mod} (requirements.lock)"))
    checks.append(_face_mesh())
    models_dir = Path(models_dir) if models_dir else default_models_dir()
    for label, folder in (("models folder", models_dir), ("jobs folder", Path(jobs_dir) if jobs_dir else
                                                           default_jobs_dir())):
        checks.append(_folder(label, folder))
    if models:
        checks.extend(_models(models_dir))
    torch_ok = any(c["check"] == "torch" and c["status"] == "ok" for c in checks)
    checks.append(can_run(models_dir, torch_ok=torch_ok, device=device))
    return checks


def can_run(models_dir: Path | None = None, *, torch_ok: bool = True, device: str = "auto") -> dict:
    """The last line: which modes this machine can run (instant / full / views) and the one step to run more.

    instant needs ICT-FaceKit Light; views (from existing views/) also needs torch; full needs those and
    idts.readiness.full_mode_readiness (a CUDA GPU and the converted ID-TS weights)."""
    from .headmodel.ict import default_ict_path
    from .idts.readiness import full_mode_readiness
    from .models import store

    ict = default_ict_path(models_dir, convert=False) is not None
    full, why = full_mode_readiness(str(store.model_path("idts", root=models_dir)), device) if ict and torch_ok \
        else (False, "")
    modes = [m for m, ok in (("instant", ict), ("full", full), ("views", ict and torch_ok)) if ok]
    if not ict:
        step = "headforge models download ict-facekit  (ICT-FaceKit Light, MIT: the head model every mode needs)"
    elif not torch_ok:
        step = "install torch (the backend's requirements) for the views and full modes"
    else:
        step = "" if full else why.split("; ", 1)[-1]
    detail = ("this machine can run: " + ", ".join(modes)) if modes else "this machine can run no mode yet"
    if not full and modes:
        detail += f" (not full: {why.split('; ', 1)[0]})" if why else " (not full)"
    return _check("can run", "ok" if full else "warn", detail, step)


def _blender() -> dict:
    """Blender's version when running inside it (bpy already loaded); the backend itself never imports bpy."""
    bpy = sys.modules.get("bpy")
    if bpy is None:
        return _check("blender", "ok", "not running inside Blender (CLI)")
    app = bpy.app
    online = getattr(app, "online_access", None)
    detail = f"{app.version_string}" + ("" if online is None else f", online access {'on' if online else 'off'}")
    advice = "" if online in (None, True) else \
        "downloads are off: allow online access (Preferences → System → Network) or use a local models folder"
    return _check("blender", "ok" if not advice else "warn", detail, advice)


def _models(root: Path) -> list[dict]:
    """One line per model that is present or has a problem (partial, corrupt, unverified; quick check, no
    re-hash), then one line listing the optional models not downloaded."""
    from .models import registry, store

    out, missing = [], []
    for asset in registry.ASSETS.values():
        try:
            check = store.check_asset(asset, root, deep=False)
        except OSError as e:
            out.append(_check(f"model {asset.id}", "error", f"unreadable: {e}", "check the folder's permissions"))
            continue
        status = check["status"]
        bad = [f for f in check["files"] if f["status"] != "present"]
        detail = f"{status}: " + "; ".join(f"{f['name']} {f['detail']}" for f in bad[:2])
        terms = " --accept-terms" if asset.accept_terms and not asset.user_supplied else ""
        if status == "present":
            out.append(_check(f"model {asset.id}", "ok", "present, verified"))
        elif status == "missing":  # ICT-FaceKit's absence is the "can run" line's business
            if asset.id != "ict-facekit":
                missing.append(asset.id + (" (yours to supply)" if asset.user_supplied else ""))
        elif status == "partial":
            out.append(_check(f"model {asset.id}", "warn", detail, f"headforge models download {asset.id}{terms}"))
        elif status == "unverified":
            out.append(_check(f"model {asset.id}", "warn", detail, f"headforge models verify {asset.id}"))
        else:
            fix = (f"headforge models download {asset.id} --from FOLDER" if asset.user_supplied else
                   f"headforge models download {asset.id}{terms}  (re-fetches the bad file)")
            out.append(_check(f"model {asset.id}", "error", detail, fix))
    if missing:
        out.append(_check("models", "ok", f"optional, not downloaded: {', '.join(missing)}",
                          "`headforge models list` says what each is for; `headforge models download ID`"))
    return out


def _face_mesh() -> dict:
    """MediaPipe's face mesh and matte: its model files through OpenCV and onnxruntime (or, where forced with
    $HEADFORGE_MEDIAPIPE_RUNTIME=solutions, mediapipe's own graphs)."""
    from .face import blaze, landmarks

    try:
        runtime = landmarks.mediapipe_runtime()
        where = ("mediapipe.solutions" if runtime == "solutions"
                 else f"OpenCV DNN + onnxruntime, models in {blaze.models_dir()}")
        return _check("face mesh", "ok", where)
    except HeadForgeError as e:
        return _check("face mesh", "error", e.message, e.hint, blocking=True)


def _gsplat() -> dict:
    if importlib.util.find_spec("gsplat") is None:
        return _check("gsplat", "error", "not installed", "pip install gsplat==1.5.3", blocking=True)
    try:
        import torch

        if not torch.cuda.is_available():
            return _check("gsplat", "ok", "installed; CUDA kernels not used (no GPU), CPU rasterizer instead")
        from gsplat.cuda._backend import _C

        ok = _C is not None
        return _check("gsplat", "ok" if ok else "error", "CUDA kernels load" if ok else "CUDA kernels failed",
                      "" if ok else "install the CUDA toolkit matching torch so gsplat can compile its kernels")
    except Exception as e:  # noqa: BLE001  (kernel compilation errors come in many types)
        return _check("gsplat", "error", f"CUDA kernels failed: {e}", "check nvcc and TORCH_EXTENSIONS_DIR")


def _folder(label: str, folder: Path) -> dict:
    probe = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free / 2**30
    try:
        probe_dir = folder if folder.exists() else probe
        with tempfile.NamedTemporaryFile(dir=probe_dir):
            pass
        writable = True
    except OSError:
        writable = False
    contents = ""
    if folder.is_dir():
        names = sorted(p.name for p in folder.iterdir())
        contents = f"; holds {len(names)} item(s)" + (f": {', '.join(names[:8])}" if names else "")
    status = "ok" if writable and free > 2 else ("error" if not writable else "warn")
    advice = "" if status == "ok" else ("choose a writable folder" if not writable else "free some disk space")
    return _check(label, status, f"{folder} ({'writable' if writable else 'NOT writable'}, {free:.1f} GiB free"
                                 f"{contents})", advice, blocking=not writable)


def format_report(checks: list[dict]) -> str:
    marks = {"ok": "ok   ", "warn": "warn ", "error": "ERROR"}
    lines = []
    for c in checks:
        lines.append(f"{marks[c['status']]} {c['check']:<14} {c['detail']}")
        if c["advice"]:
            lines.append(f"{'':20}→ {c['advice']}")
    return "\n".join(lines)
