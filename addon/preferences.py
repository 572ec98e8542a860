"""Add-on preferences: folders, device, how the backend runs (installed here or an external Python), the
backend installer, model downloads and the doctor report. Drawing only reads state; operators change it."""
import os
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty


def _default_models_dir() -> str:
    return os.environ.get("HEADFORGE_MODELS", str(Path.home() / ".cache" / "headforge" / "models"))


def _default_jobs_dir() -> str:
    return os.environ.get("HEADFORGE_JOBS", str(Path.home() / "headforge-jobs"))


def _models_dir_changed(self, context):
    from ..backend.models import store

    store.set_root(bpy.path.abspath(self.models_dir) if self.models_dir else None)


# Live state the operators fill and draw() shows (never saved): doctor checks, install and download progress.
STATE = {"doctor": [], "install": {"message": "", "fraction": 0.0, "log": []},
         "download": {"message": "", "fraction": 0.0, "id": ""}}

_FEATURED = ("yunet", "birefnet-portrait", "insightface-buffalo_l", "hqhead-stage1", "hqhead-stage2",
             "hqhead-lgm", "hqhead-arcface", "clip-vit-h14", "clip-vit-l14", "aesthetic-predictor")


class HEADFORGE_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__.rsplit(".", 1)[0]

    models_dir: StringProperty(name="Models folder", subtype="DIR_PATH", default=_default_models_dir(),
                               description="Where downloaded model weights are kept", update=_models_dir_changed)
    jobs_root: StringProperty(name="Job folder root", subtype="DIR_PATH", default=_default_jobs_dir(),
                              description="Each generated head gets a job folder here")
    device: EnumProperty(name="Device", default="AUTO", description="Where the backend runs its models",
                         items=[("AUTO", "Automatic", "CUDA when available, otherwise the CPU"),
                                ("CUDA", "CUDA GPU", "Use the NVIDIA GPU"), ("CPU", "CPU", "CPU only (slow)")])
    backend_mode: EnumProperty(name="Backend", default="IN_PROCESS", items=[
        ("IN_PROCESS", "Installed here", "Run the backend inside Blender with the dependencies installed below"),
        ("EXTERNAL", "External Python", "Run jobs with another Python's `headforge` command (its own torch/CUDA)")])
    external_python: StringProperty(name="External Python", subtype="FILE_PATH", default="",
                                    description="A python with headforge installed, or the headforge executable")
    wheel_folder: StringProperty(name="Offline wheels", subtype="DIR_PATH", default="",
                                 description="Install from this folder of wheels only (no internet); empty: PyPI")
    head_model: EnumProperty(name="Head model", default="ICT", description="The head model the rig is built on",
                             items=[("ICT", "ICT-FaceKit Light", "MIT licence; downloaded on first use"),
                                    ("FLAME", "FLAME (your file)", "The FLAME model you registered for and "
                                                                   "downloaded (non-commercial licence)")])
    flame_file: StringProperty(name="FLAME file", subtype="FILE_PATH", default="",
                               description="FLAME 2020, 2023 or 2023 Open pickle (flame.is.tue.mpg.de)")
    model_folder_import: StringProperty(name="Import models from", subtype="DIR_PATH", default="",
                                        description="Local-folder mode: copy model files from this folder instead of "
                                                    "downloading them")

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "models_dir")
        col.prop(self, "jobs_root")
        col.prop(self, "device")
        online = getattr(bpy.app, "online_access", True)
        if not online:
            box = layout.box()
            box.label(text="Online access is off: installs and downloads need it, or use local folders.",
                      icon="INTERNET_OFFLINE")
            box.label(text="Preferences → System → Network → Allow Online Access")
        self._draw_backend(layout.box())
        self._draw_models(layout.box())
        self._draw_doctor(layout.box())

    def _draw_backend(self, box):
        from . import installer

        box.label(text="Backend", icon="SCRIPT")
        box.prop(self, "backend_mode", expand=True)
        if self.backend_mode == "EXTERNAL":
            box.prop(self, "external_python")
            return
        package = self.bl_idname
        info = installer.installed_info(installer.deps_dir(package, create=False))
        box.label(text=f"Installed: torch {info['torch_build']} build, Python {info['python']}" if info else
                  "Not installed: the backend needs about 5 GB of Python packages.",
                  icon="CHECKMARK" if info else "ERROR")
        box.prop(self, "wheel_folder")
        row = box.row(align=True)
        running = installer.active() is not None
        row.operator("headforge.install_backend", text="Reinstall backend" if info else "Install backend",
                     icon="IMPORT")
        if running:
            row.operator("headforge.cancel_install", text="", icon="CANCEL")
        row.operator("headforge.remove_backend", text="", icon="TRASH")
        st = STATE["install"]
        if st["message"]:
            if running and hasattr(box, "progress"):
                box.progress(factor=st["fraction"], type="BAR", text=st["message"][:80])
            else:
                box.label(text=st["message"][:120])
        for line in st["log"][-6:]:
            box.label(text=line[:120])

    def _draw_models(self, box):
        from ..backend.models import registry, store

        box.label(text="Models", icon="FILE_3D")
        box.prop(self, "head_model")
        if self.head_model == "FLAME":
            box.prop(self, "flame_file")
        box.prop(self, "model_folder_import")
        st = STATE["download"]
        if st["message"]:
            if hasattr(box, "progress") and 0 < st["fraction"] < 1:
                box.progress(factor=st["fraction"], type="BAR", text=st["message"][:80])
            else:
                box.label(text=st["message"][:120])
        for model_id in _FEATURED:
            asset = registry.get(model_id)
            status = store.check_asset(asset, deep=False)["status"]
            row = box.row()
            row.label(text=f"{asset.title}", icon="CHECKMARK" if status == "present" else "DOT")
            row.label(text=status + ("  (non-commercial)" if asset.commercial == "no" else ""))
            op = row.operator("headforge.download_model", text="Get" if status != "present" else "Verify")
            op.model_id = model_id

    def _draw_doctor(self, box):
        row = box.row()
        row.label(text="Doctor", icon="INFO")
        row.operator("headforge.run_doctor", text="Check this machine")
        marks = {"ok": "CHECKMARK", "warn": "ERROR", "error": "CANCEL"}
        for c in STATE["doctor"]:
            if c["status"] == "ok" and c["check"].startswith("model "):
                continue
            box.label(text=f"{c['check']}: {c['detail']}"[:120], icon=marks.get(c["status"], "DOT"))
            if c["advice"]:
                box.label(text=f"    → {c['advice']}"[:120])


def get(context=None) -> "HEADFORGE_AP_preferences":
    """The preferences; also points the backend's model store at their models folder (callers run jobs next)."""
    context = context or bpy.context
    prefs = context.preferences.addons[HEADFORGE_AP_preferences.bl_idname].preferences
    _models_dir_changed(prefs, context)
    return prefs


CLASSES = (HEADFORGE_AP_preferences,)


def rig_options(prefs) -> dict:
    """The rig stage's head-model options from the preferences (always passed, so switching back resets them)."""
    if prefs.head_model == "FLAME":
        return {"head_model": "flame", "head_model_path": bpy.path.abspath(prefs.flame_file) if prefs.flame_file else ""}
    return {"head_model": "ict", "head_model_path": ""}
