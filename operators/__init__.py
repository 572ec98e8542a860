"""bpy operators, one module per user action."""
import bpy

from . import animate, export, generate, import_batch, import_head, import_splat, install

_register, _unregister = bpy.utils.register_classes_factory(
    generate.CLASSES + install.CLASSES + import_splat.CLASSES + import_head.CLASSES + export.CLASSES
    + animate.CLASSES + import_batch.CLASSES)
_IMPORT_MENUS = (import_splat.menu_import, import_head.menu_import, animate.menu_import, import_batch.menu_import)
_EXPORT_MENUS = (import_splat.menu_export, export.menu_export)


def register():
    _register()
    for fn in _IMPORT_MENUS:
        bpy.types.TOPBAR_MT_file_import.append(fn)
    for fn in _EXPORT_MENUS:
        bpy.types.TOPBAR_MT_file_export.append(fn)


def unregister():
    for fn in _IMPORT_MENUS:
        bpy.types.TOPBAR_MT_file_import.remove(fn)
    for fn in _EXPORT_MENUS:
        bpy.types.TOPBAR_MT_file_export.remove(fn)
    _unregister()
