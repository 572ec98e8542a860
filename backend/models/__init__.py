"""Model assets: the registry (what exists, on what terms), the store (where it lives) and downloads."""
from .registry import ASSETS, ModelAsset, ModelFile, get, local_path  # noqa: F401
