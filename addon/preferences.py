"""Add-on preferences: where models and jobs live, and which device runs the backend."""
import os
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty


def _default_models_dir() -> str:
    return os.environ.get("HEADFORGE_MODELS", str(Path.home() / ".cache" / "headforge" / "models"))


def _default_jobs_dir() -> str:
    return os.environ.get("HEADFORGE_JOBS", str(Path.home() / "headforge-jobs"))


class HEADFORGE_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__.rsplit(".", 1)[0]

    models_dir: StringProperty(name="Models folder", subtype="DIR_PATH", default=_default_models_dir(),
                               description="Where downloaded model weights are kept")
    jobs_root: StringProperty(name="Job folder root", subtype="DIR_PATH", default=_default_jobs_dir(),
                              description="Each generated head gets a job folder here")
    device: EnumProperty(name="Device", default="AUTO", description="Where the backend runs its models",
                         items=[("AUTO", "Automatic", "CUDA when available, otherwise the CPU"),
                                ("CUDA", "CUDA GPU", "Use the NVIDIA GPU"), ("CPU", "CPU", "CPU only (slow)")])

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "models_dir")
        col.prop(self, "jobs_root")
        col.prop(self, "device")


def get(context=None) -> "HEADFORGE_AP_preferences":
    context = context or bpy.context
    return context.preferences.addons[HEADFORGE_AP_preferences.bl_idname].preferences


CLASSES = (HEADFORGE_AP_preferences,)
