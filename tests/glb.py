"""Reading a glb's accessors in tests (pygltflib gives the JSON and the binary blob, not arrays)."""
from __future__ import annotations

import numpy as np

_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
_DTYPE = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}


def read_accessor(gl, index: int) -> np.ndarray:
    """Accessor `index` of a loaded pygltflib.GLTF2 (a .glb) as an array (count, width), dense part only."""
    acc = gl.accessors[index]
    view = gl.bufferViews[acc.bufferView]
    width = _WIDTH[acc.type]
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    return np.frombuffer(gl.binary_blob(), _DTYPE[acc.componentType], acc.count * width, start).reshape(
        acc.count, width)
