"""bpy operators, one module per user action."""
import bpy

from . import generate

_register, unregister = bpy.utils.register_classes_factory(generate.CLASSES)


def register():
    _register()
