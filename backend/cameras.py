"""The 96-view orbit rig (6 elevation rings × 16 eased azimuths) and every camera conversion we need.

World frame (DESIGN.md): Blender's — right-handed, +Z up, metres, the head faces −Y, +X is the subject's left.
`cameras.json` stores OpenCV-convention intrinsics `K` and world-to-camera matrices `w2c` (camera +X right,
+Y down, +Z forward; pixel centres at integer coordinates). The reference (kiui, OpenGL: +Y up, face toward +Z)
is reached through `KIUI_TO_WORLD`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .errors import JobError
from .fileio import write_json
from .headmodel.frames import YUP_TO_WORLD
from .render.raster import project as render_project

RADIUS_M = 1.5  # camera distance from the orbit centre (SPEC 4.11: cam_radius)
FOVY_DEG = 10.0  # vertical field of view (SPEC 4.12)
ELEVATIONS_DEG = (-10.0, 0.0, 10.0, 20.0, 30.0, 40.0)  # ring e has elevation -10 + 10 e
VIEWS_PER_RING = 16
INPUT_RING = 1  # the ring at elevation 0, the one the released model generates (SPEC 7.7)
# Largest extent of a head asset once normalised into the rig: a real head-and-neck (render-views); at 1.5 m
# with a 10° field of view the frame spans 0.262 m at the orbit centre.
OBJECT_EXTENT_M = 0.24

# kiui/OpenGL world (x, y up, z toward the face's front) -> our world: a +Y-up frame (headmodel/frames.py).
KIUI_TO_WORLD = YUP_TO_WORLD
# OpenCV camera axes (x right, y down, z forward) <-> OpenGL/Blender camera axes (x right, y up, z backward).
CV_TO_GL = np.diag([1.0, -1.0, -1.0])


def eased_azimuths() -> np.ndarray:
    """Ring azimuths in degrees, denser near the face: a_k = 180(1.5x² − 0.5x³), x = k/8, mirrored for k > 8.

    Rounded to 2 decimals exactly as the reference lists them (0, 4.04, 15.47, ...).
    """
    x = np.arange(9) / 8.0
    half = np.round(180.0 * (1.5 * x**2 - 0.5 * x**3), 2)
    return np.concatenate([half, -half[1:8][::-1]])  # [16]


def view_index(ring: int, k: int) -> int:
    return VIEWS_PER_RING * ring + k


def orbit_c2w_opencv(elevation_deg: float, azimuth_deg: float, radius: float = RADIUS_M) -> np.ndarray:
    """Camera-to-world (4, 4), OpenCV axes, looking at the origin from the given elevation/azimuth.

    Azimuth 0 is the front (camera on −Y), positive azimuth swings toward +X; positive elevation is above.
    """
    el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
    eye = radius * np.array([math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)])
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
    return c2w


def intrinsics(size: int, fovy_deg: float = FOVY_DEG) -> np.ndarray:
    """(3, 3) pinhole K for a square image of `size` px; principal point at the image centre."""
    f = 0.5 * size / math.tan(math.radians(fovy_deg) / 2.0)
    c = size / 2.0 - 0.5
    return np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics (..., 3, 3) of an image resized by (sx, sy), pixel centres at integers: c' = s (c + 0.5) − 0.5."""
    K = np.array(K, np.float64)
    K[..., 0, 0] *= sx
    K[..., 1, 1] *= sy
    K[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    K[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    return K


def rig_cameras(size: int = 512, rings=None, yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                radius: float = RADIUS_M, fovy_deg: float = FOVY_DEG) -> list[dict]:
    """The orbit's cameras, ring by ring, each {index, ring, k, elevation, azimuth, width, height, K, w2c}.

    `yaw_deg`/`pitch_deg` rotate the whole orbit (about +Z, then about +X) so that frame 0 can sit at a
    portrait's own viewpoint; the stored elevation/azimuth stay the rig's nominal ones.
    """
    rings = range(len(ELEVATIONS_DEG)) if rings is None else rings
    R = np.eye(4)
    R[:3, :3] = _rot_z(yaw_deg) @ _rot_x(pitch_deg)
    K = intrinsics(size, fovy_deg)
    azs = eased_azimuths()
    cams = []
    for e in rings:
        for k in range(VIEWS_PER_RING):
            c2w = R @ orbit_c2w_opencv(ELEVATIONS_DEG[e], azs[k], radius)
            cams.append({"index": view_index(e, k), "ring": int(e), "k": k,
                         "elevation": float(ELEVATIONS_DEG[e]), "azimuth": float(azs[k]),
                         "width": size, "height": size, "K": K.copy(), "w2c": np.linalg.inv(c2w)})
    return cams


def _rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def save_cameras_json(path, cams: list[dict], **meta) -> None:
    write_json(path, {"convention": "opencv", "world": "blender: +Z up, metres, head faces -Y",
                      "radius": RADIUS_M, "fovy_deg": FOVY_DEG, **meta,
                      "views": [{**c, "K": np.asarray(c["K"]).tolist(), "w2c": np.asarray(c["w2c"]).tolist(),
                                 "file": c.get("file", f"{c['index']:03d}.png")} for c in cams]})


def load_cameras_json(path) -> list[dict]:
    data = json.loads(Path(path).read_text())
    return [{**v, "K": np.array(v["K"]), "w2c": np.array(v["w2c"])} for v in data["views"]]


def view_file(views_dir, cam: dict) -> Path:
    """The image file of one cameras.json entry: `file` (default NNN.png from `index`), which must stay inside
    `views_dir` once resolved (no "..", absolute paths or symlinks that lead out). Raises JobError otherwise."""
    name = cam.get("file", f"{int(cam['index']):03d}.png")
    root = Path(views_dir).resolve()
    if not isinstance(name, str) or not name:
        raise JobError(f"cameras.json in {root} names a view file {name!r}, which is not a file name.",
                       code="views.bad_file")
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise JobError(f"cameras.json names the view {name!r}, which leads to {path}, outside the views folder "
                       f"{root}; views are only read from inside views/.", code="views.outside_folder",
                       hint="Give each view's \"file\" relative to views/ (e.g. \"016.png\").")
    return path


def project(points: np.ndarray, cam: dict) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) → pixel coordinates (N, 2) (OpenCV: pixel centres at integers) and depth z (N,) for a
    cameras.json entry (render/raster.project with its K and w2c)."""
    return render_project(np.asarray(points, np.float64), np.asarray(cam["K"], np.float64),
                          np.asarray(cam["w2c"], np.float64))


def c2w_to_kiui(c2w_cv: np.ndarray) -> np.ndarray:
    """Our camera-to-world (OpenCV axes, our world) → kiui's OpenGL pose in kiui's world (the reference's)."""
    out = np.eye(4)
    out[:3, :3] = KIUI_TO_WORLD.T @ c2w_cv[:3, :3] @ CV_TO_GL
    out[:3, 3] = KIUI_TO_WORLD.T @ c2w_cv[:3, 3]
    return out


def blender_camera(cam: dict) -> dict:
    """Parameters for a Blender camera object: `matrix_world` (4, 4; camera looks along its −Z, +Y up),
    vertical field of view in radians, resolution and principal-point shift (Blender's, in fractions of the
    larger image side)."""
    c2w = np.linalg.inv(cam["w2c"])
    mw = np.eye(4)
    mw[:3, :3] = c2w[:3, :3] @ CV_TO_GL
    mw[:3, 3] = c2w[:3, 3]
    K, w, h = np.asarray(cam["K"]), int(cam["width"]), int(cam["height"])
    side = max(w, h)
    return {"matrix_world": mw, "angle_y": 2.0 * math.atan(0.5 * h / K[1, 1]),
            "angle_x": 2.0 * math.atan(0.5 * w / K[0, 0]), "width": w, "height": h,
            "shift_x": -(K[0, 2] - (w / 2.0 - 0.5)) / side, "shift_y": (K[1, 2] - (h / 2.0 - 0.5)) / side}
