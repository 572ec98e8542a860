"""Mattes: MediaPipe's selfie segmenter against the reference portraits' true alpha (hair included), and the
BiRefNet path's pre/post-processing through a real ONNX graph."""
import numpy as np
import pytest
from PIL import Image


def _composite(shared, i, background):
    import cv2

    rgba = np.asarray(Image.open(shared / f"fixtures/idts/framing/000{i}.png"))
    a = rgba[..., 3:4] / 255.0
    bg = cv2.resize(background, (512, 512))
    return (rgba[..., :3] * a + bg * (1 - a)).astype(np.uint8), rgba[..., 3] > 127


@pytest.mark.parametrize("i,background", [(1, "brick"), (2, "coffee"), (3, "grass")])
def test_mediapipe_matte_matches_true_alpha(shared, models_root, i, background):
    from skimage import data

    from headforge.backend.face.detect import detect_faces
    from headforge.backend.face.landmarks import mesh_478
    from headforge.backend.face.matte import mediapipe_matte

    bg = getattr(data, background)()
    bg = np.stack([bg] * 3, -1) if bg.ndim == 2 else bg
    rgb, truth = _composite(shared, i, bg)
    face = detect_faces(rgb, "yunet", models_root=models_root)[0]
    m = mediapipe_matte(rgb, face.bbox) > 0.5
    iou = (m & truth).sum() / (m | truth).sum()
    hair = truth.copy()
    hair[int(mesh_478(rgb, face.bbox)[10, 1]):] = False  # above the top of the forehead: hair
    hair_kept = (m & hair).sum() / hair.sum()
    print(f"fixture {i} on {background}: IoU {iou:.3f}, hair kept {hair_kept:.3f}")
    assert iou > 0.94 and hair_kept > 0.9


def test_birefnet_onnx_path(tmp_path, monkeypatch):
    """A small real ONNX graph with BiRefNet's interface (1×3×1024² in, logits maps out, finest first) goes
    through the same code as the real weights: ImageNet normalisation in, sigmoid out, back to photo size."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from headforge.backend.face import matte

    class Tiny(torch.nn.Module):  # logits = 8·(normalised red − normalised blue): red where the photo is red
        def forward(self, x):
            fine = 8.0 * (x[:, :1] - x[:, 2:3])
            return fine, torch.nn.functional.avg_pool2d(fine, 4)

    folder = tmp_path / "birefnet-portrait"
    folder.mkdir()
    torch.onnx.export(Tiny(), torch.zeros(1, 3, 1024, 1024), folder / "model.onnx", input_names=["input_image"],
                      output_names=["fine", "coarse"], opset_version=17, dynamo=False)
    monkeypatch.setenv("HEADFORGE_MODELS", str(tmp_path))
    path = matte.find_birefnet()
    assert path == folder / "model.onnx"
    photo = np.zeros((300, 200, 3), np.uint8)
    photo[:, :100] = (220, 30, 30)  # left half red, right half blue
    photo[:, 100:] = (30, 30, 220)
    m = matte.birefnet_matte(photo, path)
    assert m.shape == (300, 200) and m.dtype == np.float32
    assert m[:, :90].min() > 0.95 and m[:, 110:].max() < 0.05
