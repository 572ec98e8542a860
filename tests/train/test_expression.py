"""The expression loss: landmarks from our face stage on a real portrait, and a loss that sees the mouth and eyes."""
from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from headforge.backend.train.data import over_white
from headforge.backend.train.expression import (EXPRESSION_POINTS, LIPS, LandmarkSource, expression_loss,
                                                region_weights)


def test_mediapipe_locates_mouth_and_eyes_on_a_portrait(shared):
    rgba = np.asarray(Image.open(shared / "fixtures/idts/framing/0001.png").convert("RGBA"), np.float32) / 255
    frame = cv2.resize(over_white(rgba), (256, 256), interpolation=cv2.INTER_AREA)
    src = LandmarkSource(shared / "no-dataset", "mediapipe")
    (pts,) = src.points("portrait", [0], frame[None])
    assert src.mediapipe_error is None and pts is not None and pts.shape == (len(EXPRESSION_POINTS), 2)
    lips, eyes_brows = pts[:len(LIPS)].mean(0), pts[len(LIPS):].mean(0)
    print("lips", lips, "eyes+brows", eyes_brows)
    assert 30 < lips[1] - eyes_brows[1] < 90  # the mouth below the eyes, by a face's proportions at 256 px
    assert abs(lips[0] - eyes_brows[0]) < 15 and 80 < lips[0] < 180  # on the face's vertical axis
    # A frame without a face (white) has no landmarks: it does not count.
    (none,) = src.points("portrait", [1], np.full((1, 256, 256, 3), 255, np.uint8))
    assert none is None


def test_loss_sees_the_landmark_regions_only():
    size = 64
    pts = np.array([[20.0, 40.0], [28.0, 40.0], [36.0, 40.0]])  # a "mouth" line
    w = region_weights(pts, size)
    assert float(w[40, 28]) == 1.0 and float(w[5, 5]) < 1e-6
    target = torch.zeros(1, 3, size, size)
    assert float(expression_loss(target, target, w[None])) == 0.0
    inside, outside = target.clone(), target.clone()
    inside[..., 37:44, 18:39] = 0.5  # the mouth changes shape
    outside[..., 5:12, 5:26] = 0.5  # the same change far from any landmark
    l_in = float(expression_loss(inside, target, w[None]))
    l_out = float(expression_loss(outside, target, w[None]))
    print(f"expression loss: change at the mouth {l_in:.4f}, same change elsewhere {l_out:.2e}")
    assert l_in > 0.2 and l_out < 1e-4 * l_in
    pred = inside.clone().requires_grad_(True)
    expression_loss(pred, target, w[None]).sum().backward()
    g = pred.grad.abs().sum(1)[0]
    assert float(g[35:46, 15:42].sum()) > 0.99 * float(g.sum()) > 0
