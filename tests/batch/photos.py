"""Small portraits for batch tests, made from the test photos (scikit-image's astronaut, insightface's group
photo t1): crops, flips and resizes, plus bad files with known error codes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# Faces of the group photo t1 (x0, y0, x1, y1), as the face stage finds them with SCRFD 2.5G.
T1_FACES = ((59, 263, 169, 396), (269, 147, 371, 265), (465, 265, 573, 416), (746, 339, 846, 481),
            (905, 54, 1013, 204), (1131, 271, 1226, 399))


def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


def group_t1() -> np.ndarray:
    from insightface.data import get_image

    return np.ascontiguousarray(get_image("t1", to_rgb=True))


def t1_face(i: int, out: int = 384) -> np.ndarray:
    """Face i of the group photo, framed with room for the hair and resized to out × out."""
    img = group_t1()
    x0, y0, x1, y1 = T1_FACES[i]
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0), 1.3 * max(x1 - x0, y1 - y0)
    box = [int(max(0, cx - half)), int(max(0, cy - half)), int(min(img.shape[1], cx + half)),
           int(min(img.shape[0], cy + half))]
    return np.asarray(Image.fromarray(img).crop(box).resize((out, out), Image.LANCZOS))


def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((round(w * scale), round(h * scale)), Image.LANCZOS))


GOOD = {  # name: (maker, file name)
    "astronaut": (astronaut, "astronaut.jpg"),
    "astronaut_mirrored": (lambda: np.ascontiguousarray(astronaut()[:, ::-1]), "cast/astronaut_mirrored.png"),
    "astronaut_crop": (lambda: _resize(astronaut()[10:400, 60:420], 1.2), "cast/astronaut_crop.jpg"),
    "t1_face4": (lambda: t1_face(4), "crowd/t1_face4.jpg"),
    "astronaut_small": (lambda: _resize(astronaut(), 0.7), "crowd/astronaut_small.webp"),
    "t1_face1_mirrored": (lambda: np.ascontiguousarray(t1_face(1)[:, ::-1]), "crowd/t1_face1_mirrored.png"),
    "t1_face0": (lambda: t1_face(0), "crowd/t1_face0.jpg"),
    "t1_face2": (lambda: t1_face(2, 320), "crowd/t1_face2.png"),
    "t1_face3_mirrored": (lambda: np.ascontiguousarray(t1_face(3)[:, ::-1]), "crowd/t1_face3_mirrored.jpg"),
    "t1_face5": (lambda: t1_face(5, 448), "crowd/t1_face5.webp"),
    "astronaut_large": (lambda: _resize(astronaut(), 1.4), "cast/astronaut_large.jpg"),
    "astronaut_crop_mirrored": (lambda: np.ascontiguousarray(_resize(astronaut()[20:420, 40:440], 0.9)[:, ::-1]),
                                "cast/astronaut_crop_mirrored.png"),
}
BAD = {  # name: (expected error code, file name)
    "truncated": ("input.corrupt", "bad/truncated.jpg"),
    "no_face": ("face.none", "bad/no_face.png"),
}


def write_photos(folder: Path, good: list[str]) -> dict[str, Path]:
    """Write the chosen good portraits and both bad files under `folder` (and a text file that is not an
    image); returns {job name: path}. Job names follow backend/batch/inputs.py: relative path, '/' → '__'."""
    paths = {}
    for name in good:
        make, rel = GOOD[name]
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(make()).save(p, quality=92)
        paths[name] = p
    bad = folder / BAD["truncated"][1]
    bad.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(astronaut()).save(bad, quality=92)
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 3])  # a valid header, most of the picture missing
    paths["truncated"] = bad
    # a photo without a face: a smooth colour gradient with some texture (large enough to pass the input stage)
    y, x = np.mgrid[0:384, 0:512]
    grad = np.stack([x / 2, y / 1.5, 255 - x / 2], -1) + 20 * np.sin(x / 9.0)[..., None]
    Image.fromarray(np.clip(grad, 0, 255).astype(np.uint8)).save(folder / BAD["no_face"][1])
    paths["no_face"] = folder / BAD["no_face"][1]
    (folder / "notes.txt").write_text("not a photo\n")
    return paths
