"""Add-on preferences: folders, device, how the backend runs (installed here or an external Python), the
backend installer, model downloads and the doctor report. Drawing only reads state; operators change it."""
import os
import textwrap
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

# Step 2 of the preferences: the one model every mode needs. Step 3: optional models, in the registry's order
# (better detection and mattes, then the HQ-Head files full mode converts); FLAME is chosen as a file above.
HEAD_MODEL_ID = "ict-facekit"
_FEATURED = ("yunet", "birefnet-portrait", "insightface-buffalo_l", "hqhead-stage1", "hqhead-stage2",
             "hqhead-arcface", "clip-vit-h14", "aesthetic-predictor")
DEVICES = {"AUTO": "auto", "CUDA": "cuda", "CPU": "cpu"}
DEVICE_STAGES = ("multiview", "splat", "mesh")  # the stages that take a `device` option


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
        """The first run, in order: 1. install the backend, 2. download ICT-FaceKit Light (instant mode needs
        nothing else), 3. optional models; then the folders, the device and the doctor."""
        layout = self.layout
        online = getattr(bpy.app, "online_access", True)
        if not online:
            box = layout.box()
            box.label(text="Online access is off: installs and downloads need it, or use local folders.",
                      icon="INTERNET_OFFLINE")
            box.label(text="Preferences → System → Network → Allow Online Access")
        self._draw_backend(layout.box())
        self._draw_models(layout.box())
        col = layout.box().column()
        col.label(text="Settings", icon="PREFERENCES")
        col.prop(self, "models_dir")
        col.prop(self, "jobs_root")
        col.prop(self, "device")
        self._draw_doctor(layout.box())

    def _draw_backend(self, box):
        from . import installer

        box.label(text="1. Install the backend", icon="SCRIPT")
        box.prop(self, "backend_mode", expand=True)
        if self.backend_mode == "EXTERNAL":
            box.prop(self, "external_python")
            return
        package = self.bl_idname
        info = installer.installed_info(installer.deps_dir(package, create=False))
        if info and not installer.is_current(info):
            box.label(text="Installed, but not this version's set of packages (an older HeadForge's?): reinstall "
                      "the backend.", icon="ERROR")
        else:
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
        from ..backend.headmodel.ict import default_ict_path
        from ..backend.models import registry, store

        ict = registry.get(HEAD_MODEL_ID)
        found = default_ict_path(convert=False)
        downloaded = store.check_asset(ict, deep=False)["status"] == "present"
        box.label(text="2. Download the head model (all Instant mode needs)", icon="FILE_3D")
        row = box.row()
        row.label(text=ict.title, icon="CHECKMARK" if found else "ERROR")
        if downloaded or found is None:
            row.operator("headforge.download_model", text="Verify" if downloaded else "Download").model_id = ict.id
        else:
            shown = str(found) if len(str(found)) <= 72 else "…" + str(found)[-71:]
            row.label(text=f"found: {shown}")  # e.g. $HEADFORGE_ICT
        for line in textwrap.wrap(f"Licence: {ict.licence}", 100):
            box.label(text=line)
        box.prop(self, "head_model")
        if self.head_model == "FLAME":
            box.prop(self, "flame_file")
        st = STATE["download"]
        if st["message"]:
            if hasattr(box, "progress") and 0 < st["fraction"] < 1:
                box.progress(factor=st["fraction"], type="BAR", text=st["message"][:80])
            else:
                box.label(text=st["message"][:120])
        box.separator()
        box.label(text="3. Optional models (better detection and mattes; Full mode's weights)", icon="PACKAGE")
        box.prop(self, "model_folder_import")
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


def job_options(prefs) -> dict:
    """Options every job gets from the preferences, always passed so that switching back resets them: the
    device of the stages that run models, and the rig's head model."""
    device = DEVICES[prefs.device]
    return {"rig": rig_options(prefs), **{stage: {"device": device} for stage in DEVICE_STAGES}}


def rig_options(prefs) -> dict:
    """The rig stage's head-model options from the preferences (always passed, so switching back resets them)."""
    if prefs.head_model == "FLAME":
        path = bpy.path.abspath(prefs.flame_file) if prefs.flame_file else ""
        return {"head_model": "flame", "head_model_path": path}
    return {"head_model": "ict", "head_model_path": ""}
