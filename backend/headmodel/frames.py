"""Axis and unit conversions between head-model frames, our world frame and glTF.

World (DESIGN.md): Blender's — right-handed, +Z up, metres, the head faces −Y, +X is the subject's left.
ICT-FaceKit: +Y up, face toward +Z, centimetres, +X the subject's left. FLAME: +Y up, face toward +Z, metres.
glTF: +Y up, a model's front toward +Z, metres (Blender's importer maps glTF (x, y, z) → (x, −z, y)).
"""
from __future__ import annotations

import numpy as np

# (x, y up, z front) → world (X, Y = −z, Z = y): +90° about X.
YUP_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
WORLD_TO_GLTF = YUP_TO_WORLD.T  # world → glTF (+Y up, front +Z)
ICT_UNIT_M = 0.01  # ICT stores centimetres


def ict_to_world(points: np.ndarray) -> np.ndarray:
    """ICT-FaceKit positions or deltas (..., 3) in cm → world (..., 3) in metres."""
    return (np.asarray(points, np.float64) @ YUP_TO_WORLD.T * ICT_UNIT_M).astype(np.float32)


def yup_to_world(points: np.ndarray, unit_m: float = 1.0) -> np.ndarray:
    """Any +Y-up, face-toward-+Z frame (..., 3) → world (..., 3); `unit_m` is metres per file unit."""
    return (np.asarray(points, np.float64) @ YUP_TO_WORLD.T * unit_m).astype(np.float32)


def world_to_gltf(points: np.ndarray) -> np.ndarray:
    """World (..., 3) → glTF axes (..., 3), both in metres."""
    return (np.asarray(points, np.float64) @ WORLD_TO_GLTF.T).astype(np.float32)


def gltf_to_world(points: np.ndarray) -> np.ndarray:
    return (np.asarray(points, np.float64) @ YUP_TO_WORLD.T).astype(np.float32)
