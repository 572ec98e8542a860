"""Every module in this package is a pipeline stage that registers itself with `job.stage`.

Importing the package imports them all, so adding a stage is adding a module here and naming it in
`job.PIPELINES`.
"""
import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
