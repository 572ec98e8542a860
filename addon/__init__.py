"""Blender-side machinery without UI: preferences, properties, the job runner, importers, render-views."""
import bpy

from . import preferences, properties

# The extension's own package ("headforge" or "bl_ext.<repo>.headforge"): the preferences' bl_idname.
ADDON_ID = __package__.rsplit(".", 1)[0]

_register, _unregister = bpy.utils.register_classes_factory(preferences.CLASSES + properties.CLASSES)


def register():
    _register()
    properties.attach()


def unregister():
    from . import runner

    runner.cancel_active()
    properties.detach()
    _unregister()
