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
