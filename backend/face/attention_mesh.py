"""MediaPipe's attention face mesh (face_landmark_with_attention.tflite: the model `mediapipe.solutions`' refined
face mesh runs) without mediapipe: its network through onnxruntime (tflite_onnx.py) in two parts, and its three
MediaPipe operators, which no other runtime has, here in numpy:

- Landmarks2TransformMatrix: a region around a subset of the mesh (lips, each eye), turned by two of its points;
- TransformTensorBilinear: that region of a feature map resampled to 16×16;
- TransformLandmarks: the refined points mapped back through the region's matrix.

Then, as MediaPipe's graph does, the lips' 80 and each eye's 71 refined points replace the mesh's x, y, and the
irises take the mean depth of their eye's contour. Coordinates are the 192×192 input's pixels.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from flatbuffers import flexbuffers

from .tflite_onnx import read_model, session

FILE = "face_landmark/face_landmark_with_attention.tflite"
# The network's tensors where it is cut around MediaPipe's operators (names in the .tflite file).
FEATURES = "p_re_lu_3"  # (1, 48, 48, 32): the feature map the regions are cut from
SUBSET_LANDMARKS = ("multiply_by_constant", "multiply_by_constant_2", "multiply_by_constant_4")  # lips, eyes
CROPS = ("transform_tensor_bilinear_v2", "transform_tensor_bilinear_v2_1", "transform_tensor_bilinear_v2_2")
REFINED = ("reshape_1", "reshape_3", "reshape_4", "reshape_6", "reshape_7")  # lips, eye, iris, eye, iris
REFINED_REGION = (0, 1, 1, 2, 2)  # which region's matrix maps each refined output back


@functools.lru_cache(maxsize=2)
def _model(path: str):
    """The two onnxruntime parts and the custom operators' parameters read from the file."""
    tensors, _, _, ops = read_model(path)
    names = [t[0] for t in tensors]
    regions = [flexbuffers.Loads(o[5]) for o in ops if o[1] == "Landmarks2TransformMatrix"]
    # the constant each region's matrix is multiplied by before it maps the refined points back
    made_by = {names[o[3][0]]: o for o in ops}
    back = []
    for k in range(3):  # MUL(matrix, DEQUANTIZE(float16 constant))
        consts = [tensors[made_by[names[i]][2][0]][3] for i in made_by[f"multiply_by_constant_{2 * k + 1}"][2]
                  if names[i] in made_by and made_by[names[i]][0] == 6]
        back.append(np.asarray(consts[0], np.float32).reshape(4, 4))
    part1 = session(path, ("input_1",), ("output_mesh", "conv_faceflag", *SUBSET_LANDMARKS, FEATURES))
    part2 = session(path, CROPS, REFINED)
    return part1, part2, regions, back


def region_matrix(landmarks: np.ndarray, p: dict) -> np.ndarray:
    """Landmarks2TransformMatrix (v2): (4, 4) from the 16×16 region's pixels to the feature map's."""
    pts = landmarks.reshape(-1, 3)[:, :2].astype(np.float64)
    d = pts[p["right_rotation_idx"]] - pts[p["left_rotation_idx"]]
    r = p["target_rotation_radians"] - np.arctan2(d[1], d[0])
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    sub = pts[np.asarray(p["subset_idxs"]).ravel()] @ rot.T
    lo, hi = sub.min(0), sub.max(0)
    centre = rot.T @ ((lo + hi) / 2)
    w, h = p["output_width"], p["output_height"]
    a = rot.T @ np.diag([p["scale_x"] * (hi[0] - lo[0]) / w, p["scale_y"] * (hi[1] - lo[1]) / h])
    m = np.eye(4)
    m[:2, :2], m[:2, 3] = a, centre + a @ np.array([-w / 2, -h / 2])
    return m.astype(np.float32)


def resample(features: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """TransformTensorBilinear (v2): (size, size, C) of the (H, W, C) map at the region's pixel centres; zero
    where a sample falls outside the map."""
    h, w = features.shape[:2]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    tx = m[0, 0] * xx + m[0, 1] * yy + m[0, 3] - 0.5
    ty = m[1, 0] * xx + m[1, 1] * yy + m[1, 3] - 0.5
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    x0, y0 = np.floor(tx).astype(int), np.floor(ty).astype(int)
    fx, fy = (tx - x0)[..., None], (ty - y0)[..., None]

    def at(yi, xi):
        ok = (yi >= 0) & (xi >= 0) & (yi < h) & (xi < w)
        return features[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)] * ok[..., None]

    top = (1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)
    bottom = (1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)
    return ((fy * bottom + (1 - fy) * top) * inside[..., None]).astype(np.float32)


def run(models_dir: Path, blob: np.ndarray) -> tuple[np.ndarray, float]:
    """(478, 3) refined mesh in the 192² input's pixels and the face-presence logit, for an NCHW 0..1 blob."""
    part1, part2, regions, back = _model(str(models_dir / FILE))
    out = dict(zip([o.name for o in part1.get_outputs()], part1.run(None, {"input_1": blob})))
    mesh = out["output_mesh"].reshape(468, 3).astype(np.float64)
    features = out[FEATURES][0]  # (48, 48, 32) NHWC
    mats = [region_matrix(out[name], p) for name, p in zip(SUBSET_LANDMARKS, regions)]
    crops = {name: resample(features, m, p["output_height"]).transpose(2, 0, 1)[None]
             for name, m, p in zip(CROPS, mats, regions)}
    refined = dict(zip([o.name for o in part2.get_outputs()], part2.run(None, crops)))
    full = np.zeros((478, 3))
    full[:468] = mesh
    mapped = []
    for name, k in zip(REFINED, REFINED_REGION):
        m = mats[k] * back[k]
        pts = refined[name].reshape(-1, 2).astype(np.float64)
        mapped.append(pts @ m[:2, :2].T.astype(np.float64) + m[:2, 3])
    lips, eye_l, iris_l, eye_r, iris_r = mapped
    for idx, pts in ((regions[0]["subset_idxs"], lips), (regions[1]["subset_idxs"], eye_l),
                     (regions[2]["subset_idxs"], eye_r)):
        full[np.asarray(idx).ravel(), :2] = pts
    for first, pts, eye in ((468, iris_l, regions[1]), (473, iris_r, regions[2])):
        full[first:first + 5, :2] = pts
        full[first:first + 5, 2] = mesh[np.asarray(eye["subset_idxs"]).ravel()[:16], 2].mean()
    return full, float(out["conv_faceflag"].ravel()[0])
