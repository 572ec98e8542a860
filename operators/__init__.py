"""bpy operators, one module per user action."""
import bpy

from . import generate
from . import install

_register, unregister = bpy.utils.register_classes_factory(generate.CLASSES + install.CLASSES)


def register():
    _register()
