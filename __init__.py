"""HeadForge Blender extension: register/unregister only.

Submodules are imported inside `register` so that this package stays importable without bpy (the same folder
is the `headforge` Python package whose backend and CLI run on machines without Blender).
"""

_MODULES = ("addon", "operators", "ui")


def register():
    import importlib

    for name in _MODULES:
        importlib.import_module(f".{name}", __package__).register()


def unregister():
    import sys

    for name in reversed(_MODULES):
        module = sys.modules.get(f"{__package__}.{name}")
        if module is not None:
            module.unregister()
