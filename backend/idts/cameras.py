"""The reference's cameras (kiui 0.2.16, OpenGL; SPEC 4.11-4.12): orbit poses, projection matrix, Plücker rays.

These are the poses the released reconstructor was trained with. Our world and `cameras.json` use
`backend.cameras` (OpenCV cameras, Blender world); `backend.cameras.c2w_to_kiui` links the two and the
`cameras_96` parity test checks that they agree.
"""
from __future__ import annotations

import math

import numpy as np
import torch

FOVY_DEG = 10.0
ZNEAR, ZFAR = 0.01, 1000.0
CAM_RADIUS = 1.5
ELEVATION_ROWS = (-10, 0, 10, 20, 30, 40)
AZIMUTHS = (0.0, 4.04, 15.47, 33.22, 56.25, 83.5, 113.91, 146.43, 180.0, -146.43, -113.91, -83.5, -56.25,
            -33.22, -15.47, -4.04)


def orbit_camera(elevation_deg: float, azimuth_deg: float, radius: float = CAM_RADIUS) -> np.ndarray:
    """kiui `orbit_camera` (OpenGL, looking at the origin): camera at (r cos e sin a, -r sin e, r cos e cos a),
    rotation columns (right, up, back). Negative elevation is above. -> c2w [4, 4] float32."""
    e, a = math.radians(elevation_deg), math.radians(azimuth_deg)
    pos = np.array([radius * math.cos(e) * math.sin(a), -radius * math.sin(e), radius * math.cos(e) * math.cos(a)],
                   dtype=np.float32)
    back = pos / np.linalg.norm(pos)
    right = np.cross(np.array([0, 1, 0], dtype=np.float32), back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    up /= np.linalg.norm(up)
    c2w = np.eye(4, dtype=np.float32)
    c2w[:3, :3] = np.stack([right, up, back], axis=1)
    c2w[:3, 3] = pos
    return c2w


def reference_views() -> tuple[np.ndarray, np.ndarray]:
    """(elevations [96], azimuths [96]) with index i = 16 e + a, elevation -10 + 10 e (SPEC 7.7)."""
    elev = np.repeat(np.array(ELEVATION_ROWS, dtype=np.float32), len(AZIMUTHS))
    az = np.tile(np.array(AZIMUTHS, dtype=np.float32), len(ELEVATION_ROWS))
    return elev, az


def reference_c2w_96() -> np.ndarray:
    """The 96 reconstruction poses [96, 4, 4]: orbit_camera(-elevation, azimuth, 1.5)."""
    elev, az = reference_views()
    return np.stack([orbit_camera(-float(e), float(a)) for e, a in zip(elev, az)])


def projection_matrix(fovy_deg: float = FOVY_DEG, znear: float = ZNEAR, zfar: float = ZFAR) -> np.ndarray:
    """Row-vector projection used by the rasterizer [4, 4]."""
    p = np.zeros((4, 4), dtype=np.float32)
    p[0, 0] = p[1, 1] = 1.0 / math.tan(math.radians(fovy_deg) / 2)
    p[2, 2] = (zfar + znear) / (zfar - znear)
    p[3, 2] = -(zfar * znear) / (zfar - znear)
    p[2, 3] = 1.0
    return p


def plucker_rays(c2w: torch.Tensor, size: int, fovy_deg: float = FOVY_DEG) -> torch.Tensor:
    """Plücker map [size, size, 6] = [o x d, d] of an OpenGL pose c2w [4, 4] (pixel centres at +0.5)."""
    c2w = torch.as_tensor(c2w, dtype=torch.float32)
    focal = size * 0.5 / math.tan(0.5 * math.radians(fovy_deg))
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    dirs = torch.stack([(xs - size * 0.5 + 0.5) / focal, -(ys - size * 0.5 + 0.5) / focal,
                        -torch.ones_like(xs)], dim=-1)  # [H, W, 3], camera space (OpenGL)
    d = dirs @ c2w[:3, :3].T
    d = d / d.norm(dim=-1, keepdim=True)
    o = c2w[:3, 3].expand_as(d)
    return torch.cat([torch.cross(o, d, dim=-1), d], dim=-1)
