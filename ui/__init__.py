"""Panels: drawing only."""
import bpy

from . import panel

register, unregister = bpy.utils.register_classes_factory(panel.CLASSES)
