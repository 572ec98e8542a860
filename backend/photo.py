"""Reading a user's photo: the header checked before anything is decoded (`open_header`: existence, format, pixel
count), then the whole image, EXIF orientation applied, colour-managed to 8-bit sRGB (`load_portrait`).
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .errors import InputImageError
from .fileio import sha256_file

ACCEPTED_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "TIFF": "TIFF", "MPO": "JPEG"}
MIN_SHORT_SIDE = 128
MAX_PIXELS = 100_000_000


@contextlib.contextmanager
def open_header(path: Path):
    """Open `path` with Pillow reading only its header (a 2 GB non-image is refused after a few bytes) and
    check the format and pixel count; yields the lazily decoded image. Raises InputImageError."""
    try:
        if not path.is_file():  # is_file() is False for a symlink loop too: name it
            if path.is_symlink():
                raise InputImageError(f"{path} is a symbolic link to nothing readable (missing target or a loop).",
                                      code="input.not_found")
            raise InputImageError(f"{path} does not exist or is not a file.", code="input.not_found")
        if path.stat().st_size == 0:
            raise InputImageError(f"{path.name} is empty (0 bytes).", code="input.empty")
        f = open(path, "rb")
    except OSError as e:
        raise InputImageError(f"{path} cannot be read ({e.strerror or e}).", code="input.unreadable") from e
    with f:
        try:
            img = Image.open(f)
        except UnidentifiedImageError as e:
            raise InputImageError(f"{path.name} is not an image HeadForge can read; use JPEG, PNG, WebP or TIFF.",
                                  code="input.not_image") from e
        except Image.DecompressionBombError as e:
            raise InputImageError(f"{path.name} is absurdly large; HeadForge accepts up to "
                                  f"{MAX_PIXELS // 1_000_000} megapixels.", code="input.too_large") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise InputImageError(f"{path.name} is corrupt: its header cannot be read ({e}).",
                                  code="input.corrupt") from e
        fmt = img.format
        if fmt not in ACCEPTED_FORMATS:
            raise InputImageError(f"{path.name} is a {fmt} image; HeadForge accepts JPEG, PNG, WebP or TIFF.",
                                  code="input.unsupported_format")
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise InputImageError(f"{path.name} is {w}×{h} ({w * h / 1e6:.0f} megapixels); HeadForge accepts up "
                                  f"to {MAX_PIXELS // 1_000_000} megapixels. Downscale it first.",
                                  code="input.too_large")
        if w == 0 or h == 0:
            raise InputImageError(f"{path.name} has no pixels ({w}×{h}).", code="input.empty")
        yield img


def load_portrait(path: str | Path):
    """Open any accepted photo and return (PIL image in mode RGB or RGBA, info dict). Raises InputImageError."""
    path = Path(path)
    with open_header(path) as img:
        fmt = img.format
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as e:
            raise InputImageError(f"{path.name} is corrupt or truncated ({e}).", code="input.corrupt") from e
    icc = img.info.get("icc_profile")
    exif_orientation = img.getexif().get(0x0112, 1)
    img = ImageOps.exif_transpose(img)
    w, h = img.size
    if min(w, h) < MIN_SHORT_SIDE:
        raise InputImageError(f"{path.name} is {w}×{h}: too small. The short side must be at least "
                              f"{MIN_SHORT_SIDE} px (a face needs detail to reconstruct).", code="input.too_small")
    original_mode = img.mode
    img = to_srgb8(img, icc)
    return img, {"format": ACCEPTED_FORMATS[fmt], "original_mode": original_mode, "width": w, "height": h,
                 "exif_orientation": int(exif_orientation), "had_alpha": img.mode == "RGBA",
                 "icc_profile": bool(icc), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def to_srgb8(img, icc: bytes | None = None):
    """Any Pillow mode → 8-bit RGB (or RGBA when the photo has transparency), colour-managed to sRGB."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif mode == "P" or mode == "PA":
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode == "1":
        img = img.convert("L")
    if icc and img.mode in ("RGB", "RGBA", "CMYK", "L", "LA"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            alpha = img.getchannel("A") if img.mode in ("RGBA", "LA") else None
            base = img.convert({"LA": "L", "RGBA": "RGB"}.get(img.mode, img.mode))
            img = ImageCms.profileToProfile(base, src, dst, outputMode="RGB")
            if alpha is not None:
                img.putalpha(alpha)
        except (ImageCms.PyCMSError, OSError):
            pass  # a broken embedded profile: fall through to the plain conversion below
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        return img.convert("RGBA")
    if img.mode == "CMYK":
        return _cmyk_to_rgb(img)
    return img.convert("RGB")


def _cmyk_to_rgb(img):
    """Naive CMYK → RGB for photos without a profile; Adobe JPEGs store inverted CMYK, which Pillow undoes."""
    c = np.asarray(img).astype(np.float32) / 255.0
    rgb = 255.0 * (1.0 - c[..., :3]) * (1.0 - c[..., 3:4])
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")


def composite_over_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 → (H, W, 3) uint8 over white; the framing the multi-view model expects."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.clip(rgba[..., :3] * a + 255.0 * (1.0 - a) + 0.5, 0, 255).astype(np.uint8)


MAX_PHOTOS = 12  # several photos of one person (front, ¾, profile, ...): more adds time, not likeness
MORE_DIR = "input/more"  # the job's copies of the photos after the first: NN.png (+ NN_alpha.png), NN = 02, 03, ...


def job_photos(inputs: dict) -> list[str]:
    """The photos a job was given, the main one first: inputs["photos"], else the single inputs["photo"] (also
    when a caller that knows one photo replaced "photo" of a job that had several: the list no longer starts
    with it)."""
    photos = inputs.get("photos") or []
    if inputs.get("photo") and (not photos or str(photos[0]) != str(inputs["photo"])):
        photos = [inputs["photo"]]
    return [str(p) for p in photos]


def more_photo_names(n_photos: int) -> list[str]:
    """File stems (02, 03, ...) of the photos after the first in input/more/ and face/more/."""
    return [f"{i:02d}" for i in range(2, n_photos + 1)]
