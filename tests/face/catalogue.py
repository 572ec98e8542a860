"""The bad-photo catalogue: real images (scikit-image's astronaut and non-face images, insightface's group photo
and mask texture) and photos derived from them, each with the outcome the face stage must give.

`CASES` maps a case name to (builder, expected). A builder returns an (H, W, 3) uint8 array, or a path to a file
(EXIF cases). `expected` is {"error": code} or {"chosen": i, "faces": n, "warn": {codes}, "no_warn": {codes}}.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

ALWAYS_QUIET = {"face.blurry", "face.dark", "face.eyes_covered", "face.mouth_covered", "face.sideways",
                "face.overexposed", "face.head_cut"}


@functools.lru_cache(maxsize=None)
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@functools.lru_cache(maxsize=None)
def group_t1() -> np.ndarray:
    from insightface.data import get_image

    return np.ascontiguousarray(get_image("t1", to_rgb=True))


def insightface_image(name: str) -> Path:
    import insightface

    return Path(insightface.__file__).parent / "data" / "images" / name


# Five keypoints of the astronaut's face (SCRFD 2.5G; see shared/models/README.md), used to place occluders.
ASTRO_EYES = ((204.4, 100.8), (247.3, 103.1))
ASTRO_MOUTH = ((201.2, 138.5), (246.4, 140.6))


def _resize(img, scale):
    import cv2

    h, w = img.shape[:2]
    return cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA if scale < 1
                      else cv2.INTER_CUBIC)


def sunglasses() -> np.ndarray:
    """Dark, slightly glossy lenses over both eyes."""
    import cv2

    img = astronaut().copy()
    for x, y in ASTRO_EYES:
        cv2.ellipse(img, (round(x), round(y)), (15, 10), 0, 0, 360, (22, 24, 28), -1, cv2.LINE_AA)
    cv2.line(img, (218, 101), (233, 102), (22, 24, 28), 3, cv2.LINE_AA)
    return img


def mask_texture() -> np.ndarray:
    """insightface's white surgical-mask photo warped over the nose, mouth and chin."""
    import cv2
    from PIL import Image

    img = astronaut().copy()
    tex = np.asarray(Image.open(insightface_image("mask_white.jpg")).convert("RGB"))
    th, tw = tex.shape[:2]
    # mask corners → under the eyes (left/right) and below the chin
    src = np.float32([[0, 0], [tw, 0], [tw, th], [0, th]])
    dst = np.float32([[188, 118], [262, 120], [252, 180], [196, 178]])
    warped = cv2.warpPerspective(tex, cv2.getPerspectiveTransform(src, dst), img.shape[1::-1])
    cover = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), cv2.getPerspectiveTransform(src, dst),
                                img.shape[1::-1]) > 127
    img[cover] = warped[cover]
    return img


def grey_box_mouth() -> np.ndarray:
    img = astronaut().copy()
    img[128:170, 194:254] = (128, 128, 128)
    return img


def small_offcentre() -> np.ndarray:
    """The astronaut at 45 % size in the lower right of a 1024² grey photo: a small, off-centre head."""
    canvas = np.full((1024, 1024, 3), 118, np.uint8)
    small = _resize(astronaut(), 0.45 * 2)  # 460 px, face ≈ 95 px
    canvas[520:520 + small.shape[0], 540:540 + small.shape[1]] = small[: 1024 - 520, : 1024 - 540]
    return canvas


def cartoon() -> np.ndarray:
    """A painted look: bilateral-smoothed, colour-quantised, with dark edges."""
    import cv2

    img = astronaut()
    smooth = img
    for _ in range(4):
        smooth = cv2.bilateralFilter(smooth, 9, 60, 9)
    quant = (smooth // 48) * 48 + 24
    edges = cv2.adaptiveThreshold(cv2.medianBlur(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 5), 255,
                                  cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 4)
    return np.where(edges[..., None] > 0, quant, 20).astype(np.uint8)


def rotated(deg: float) -> np.ndarray:
    import cv2

    m = cv2.getRotationMatrix2D((256, 256), deg, 1.0)
    return cv2.warpAffine(astronaut(), m, (512, 512), borderMode=cv2.BORDER_REFLECT)


def skimage_image(name: str) -> np.ndarray:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def blurred(sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(astronaut(), (0, 0), sigma)


CASES = {
    # builder, expected outcome
    "astronaut": (astronaut, {"chosen": 0, "faces": 1, "warn": {"face.small"}, "no_warn": ALWAYS_QUIET}),
    "astronaut_mirrored": (lambda: np.ascontiguousarray(astronaut()[:, ::-1]),
                           {"chosen": 0, "faces": 1, "no_warn": ALWAYS_QUIET}),
    "astronaut_upscaled_2x": (lambda: _resize(astronaut(), 2.0),
                              {"chosen": 0, "faces": 1, "no_warn": ALWAYS_QUIET | {"face.small"}}),
    "astronaut_rotated_20": (lambda: rotated(20), {"chosen": 0, "faces": 1, "no_warn": ALWAYS_QUIET}),
    "astronaut_turned_90": (lambda: np.ascontiguousarray(np.rot90(astronaut(), -1)),
                            {"chosen": 0, "faces": 1, "warn": {"face.sideways"}}),
    "astronaut_upside_down": (lambda: np.ascontiguousarray(astronaut()[::-1, ::-1]),
                              {"chosen": 0, "faces": 1, "warn": {"face.sideways"}}),
    "small_offcentre_head": (small_offcentre, {"chosen": 0, "faces": 1, "warn": {"face.small"}}),
    "astronaut_240p": (lambda: _resize(astronaut(), 240 / 512), {"chosen": 0, "faces": 1, "warn": {"face.small"}}),
    "tiny_face": (lambda: _resize(astronaut(), 0.2), {"error": "face.too_small"}),  # a 21 px face
    "face_cut_left": (lambda: np.ascontiguousarray(astronaut()[:, 222:]), {"error": "face.cut_by_border"}),
    "face_cut_top": (lambda: np.ascontiguousarray(astronaut()[118:, :]), {"error": "face.cut_by_border"}),
    "hair_cut_top": (lambda: np.ascontiguousarray(astronaut()[45:, :]),
                     {"chosen": 0, "faces": 1, "warn": {"face.head_cut"}}),
    "blurred": (lambda: blurred(3.0), {"chosen": 0, "faces": 1, "warn": {"face.blurry"}}),
    "dark": (lambda: (astronaut().astype(np.float32) * 0.13).astype(np.uint8),
             {"chosen": 0, "faces": 1, "warn": {"face.dark"}}),
    "sunglasses": (sunglasses, {"chosen": 0, "faces": 1, "warn": {"face.eyes_covered"},
                                "no_warn": {"face.mouth_covered"}}),
    "surgical_mask": (mask_texture, {"chosen": 0, "faces": 1, "warn": {"face.mouth_covered"},
                                     "no_warn": {"face.eyes_covered"}}),
    "grey_box_over_mouth": (grey_box_mouth, {"chosen": 0, "faces": 1, "warn": {"face.mouth_covered"}}),
    "painted": (cartoon, {"chosen": 0, "faces": 1}),
    "greyscale": (lambda: skimage_image("astronaut").mean(axis=2, keepdims=True).repeat(3, 2).astype(np.uint8),
                  {"chosen": 0, "faces": 1, "no_warn": {"face.mouth_covered", "face.eyes_covered"}}),
    "cameraman_side_view": (lambda: skimage_image("camera"), {"chosen": 0, "faces": 1, "warn": {"face.small"},
                                                               "no_warn": {"face.sideways", "face.head_cut"}}),
    "group_t1": (group_t1, {"faces": 6, "warn": {"face.multiple"}, "no_warn": ALWAYS_QUIET}),
    "coffee": (lambda: skimage_image("coffee"), {"error": "face.none"}),
    "rocket": (lambda: skimage_image("rocket"), {"error": "face.none"}),
    "coins": (lambda: skimage_image("coins"), {"error": "face.none"}),
    "chelsea_cat": (lambda: skimage_image("chelsea"), {"error": "face.none"}),
}
