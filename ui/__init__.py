"""Panels: drawing only."""
import bpy

from . import animation_panel, panel, previews, results_panel

_register, _unregister = bpy.utils.register_classes_factory(
    panel.CLASSES + results_panel.CLASSES + animation_panel.CLASSES)


def register():
    _register()


def unregister():
    _unregister()
    previews.clear()
