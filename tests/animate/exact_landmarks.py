"""Landmarks synthesised from the facecap capture through the head model itself (the correspondence points of the
ICT mesh posed with the capture's weights and head rotation, projected by a 640×480 pinhole): the tracker's fit
without MediaPipe. Run as a script it fits them (with the photo correspondence they were made at, and with the
learned video table) and writes the takes' weights to ARGV[1] (an .npz), so a test can compare the results at
two BLAS thread counts."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from headforge.backend.animate.take import euler_to_matrix
from headforge.backend.fitting.correspondence import landmark_points, load_mediapipe_correspondence
from headforge.backend.fitting.photo import default_focal
from headforge.backend.headmodel.arkit import arkit_to_ict_weights


def exact_landmarks(model, gt, size=(640, 480), distance: float = 1.0):
    """(times, [(478, 3) px] per frame, info) of `gt` (a Take) on the model's average identity."""
    from headforge.backend.animate.track import R_FRONT

    tri, bary = load_mediapipe_correspondence(model)
    A = gt.arkit_weights()
    E = arkit_to_ict_weights(A, model.expression_names)
    W, H = size
    f = default_focal(W, H)
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]])
    marks = []
    for i, R_head in enumerate(euler_to_matrix(gt.head)):
        P = landmark_points(model, model.vertices(identity=np.zeros(model.n_identity), expression=E[i]), tri, bary)
        Xc = P @ (R_FRONT @ R_head).T + np.array([0.0, 0.03, distance])
        uv = Xc @ K.T
        marks.append(np.concatenate([uv[:, :2] / uv[:, 2:], np.zeros((len(uv), 1))], axis=1))
    return np.asarray(gt.times), marks, {"width": W, "height": H, "fps": gt.fps, "frames": len(marks)}


def camera_w2c(yaw_deg: float, focal_mm: float) -> np.ndarray:
    """The world → OpenCV camera (4, 4) of render_take.py's camera filming from `yaw_deg`."""
    a = np.radians(yaw_deg)
    cam = np.array([0.0, 0.0, 0.03]) + 0.62 * focal_mm / 50.0 * np.array([np.sin(a), -np.cos(a), 0.0])
    # Blender's camera Rz(a) Rx(90°) with its y and z axes flipped (Blender looks down −Z, OpenCV down +Z)
    c2w = np.array([[np.cos(a), 0.0, -np.sin(a)], [np.sin(a), 0.0, np.cos(a)], [0.0, -1.0, 0.0]])
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = c2w.T, -c2w.T @ cam
    return w2c


def table_landmarks(model, gt, yaw_deg: float, size=(640, 480)):
    """(times, [(478, 3) px] per frame, info, w2c) of `gt` on the average identity, filmed as render_take.py films
    from `yaw_deg`, each point where the learned video table (video_correspondence.py) puts it: the tracker's
    own landmark model, so only its prior and its solver stand between these and the truth."""
    from headforge.backend.animate.track import FaceFitter
    from headforge.backend.animate.video_correspondence import load_video_correspondence, view_features
    from tests.animate.ground_truth import DEFAULT_FOCAL_MM

    table = load_video_correspondence(model)
    W, H = size
    f = default_focal(W, H)
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1.0]])
    fitter = FaceFitter(model, np.zeros(40), K, table.tri, table.bary, np.ones(478), offset=table.offset,
                        delta=table.delta, view=table.view)
    w2c = camera_w2c(yaw_deg, DEFAULT_FOCAL_MM)
    E = arkit_to_ict_weights(gt.arkit_weights(), model.expression_names)
    marks = []
    for i, R_head in enumerate(euler_to_matrix(gt.head)):
        R = w2c[:3, :3] @ R_head
        fitter.base = fitter.rest_base + np.tensordot(view_features(R), fitter.view, 1)
        uv = (fitter._shape(E[i]) @ R.T + w2c[:3, 3]) @ K.T
        marks.append(np.concatenate([uv[:, :2] / uv[:, 2:], np.zeros((len(uv), 1))], axis=1))
    return np.asarray(gt.times), marks, {"width": W, "height": H, "fps": gt.fps, "frames": len(marks)}, w2c


def mirror_expression(gt):
    """`gt` (a Take) with its expression mirrored left ↔ right (…Left ↔ …Right, mouthLeft ↔ mouthRight, jawLeft ↔
    jawRight), the head and eyes as captured: what the capture's left-right asymmetry does to a fit."""
    from dataclasses import replace

    from headforge.backend.headmodel.arkit import ARKIT_52

    swap = {"mouthLeft": "mouthRight", "mouthRight": "mouthLeft", "jawLeft": "jawRight", "jawRight": "jawLeft"}
    for n in ARKIT_52:
        for a, b in (("Left", "Right"), ("Right", "Left")):
            if n.endswith(a) and n not in swap:
                swap[n] = n[: -len(a)] + b
    A = gt.arkit_weights()
    return replace(gt, names=tuple(ARKIT_52), weights=np.stack([A[:, ARKIT_52.index(swap.get(n, n))]
                                                                  for n in ARKIT_52], 1))


if __name__ == "__main__":
    from headforge.backend.animate.track import fit_landmarks
    from headforge.backend.headmodel import load_ict
    from tests.animate.ground_truth import capture_segment

    shared = Path(sys.argv[2])
    model = load_ict(shared / "data/ict_facekit/ict_face_light.npz")
    gt = capture_segment(shared, 100, 24)
    times, marks, info = exact_landmarks(model, gt)
    take = fit_landmarks(times, marks, info, model=model, smoothing=0.5, identity=np.zeros(40), expression_prior=1e-6,
                         correspondence="photo")
    video = fit_landmarks(times, marks, info, model=model, smoothing=0.5)  # the learned table's path too
    assert video.info["correspondence"] == "video"
    np.savez(sys.argv[1], weights=take.weights, head=take.head, video_weights=video.weights, video_head=video.head)
