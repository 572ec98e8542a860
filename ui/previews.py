"""Image previews for the panel (the job's latest preview image, the face chooser's boxed photo)."""
import os

import bpy.utils.previews

_collection = None


def icon_for(path: str) -> int:
    """Icon id of the image at `path` (reloaded when the file changes); 0 when it cannot be shown."""
    global _collection
    if not path or not os.path.isfile(path):
        return 0
    if _collection is None:
        _collection = bpy.utils.previews.new()
    key = f"{path}:{os.path.getmtime(path)}"
    if key not in _collection:
        try:
            _collection.load(key, path, "IMAGE")
        except (KeyError, RuntimeError):
            return 0
    return _collection[key].icon_id


def clear() -> None:
    global _collection
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
        _collection = None
