"""The `input` stage on real photo variants (the astronaut portrait) and on every kind of bad file."""
import io

import numpy as np
import pytest
from PIL import Image

from headforge.backend.errors import InputImageError
from headforge.backend.fileio import sha256_file
from headforge.backend.job import run_job
from headforge.backend.photo import load_portrait


@pytest.fixture(scope="module")
def astro():
    from skimage import data

    return data.astronaut()  # (512, 512, 3) uint8


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


@pytest.mark.parametrize("fmt,suffix,min_psnr", [("JPEG", "jpg", 30), ("PNG", "png", 99), ("WEBP", "webp", 30),
                                                  ("TIFF", "tif", 99)])
def test_formats_round_trip(tmp_path, astro, fmt, suffix, min_psnr):
    p = tmp_path / f"a.{suffix}"
    Image.fromarray(astro).save(p, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    img, info = load_portrait(p)
    assert img.mode == "RGB" and img.size == (512, 512)
    assert _psnr(np.asarray(img), astro) >= min_psnr
    assert info["sha256"] == sha256_file(p)


def test_exif_orientation_applied(tmp_path, astro):
    p = tmp_path / "rotated.jpg"
    stored = np.rot90(astro, k=1)  # what a camera held sideways stores; orientation 6 rotates it back
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(p, quality=95, exif=exif)
    img, info = load_portrait(p)
    assert info["exif_orientation"] == 6
    assert _psnr(np.asarray(img), astro) > 30


def test_cmyk_greyscale_palette_16bit_alpha(tmp_path, astro):
    src = Image.fromarray(astro)
    cases = {
        "cmyk.jpg": src.convert("CMYK"),
        "grey.png": src.convert("L"),
        "palette.png": src.quantize(256),
    }
    for name, im in cases.items():
        im.save(tmp_path / name)
        img, info = load_portrait(tmp_path / name)
        assert img.mode == "RGB", name
        ref = np.asarray(src.convert("L").convert("RGB")) if name == "grey.png" else astro
        assert _psnr(np.asarray(img), ref) > (20 if name != "grey.png" else 40), name
    # 16-bit greyscale: values scaled, not clipped.
    g16 = (np.asarray(src.convert("L")).astype(np.uint16) * 257)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    img, info = load_portrait(tmp_path / "g16.png")
    assert info["original_mode"].startswith("I") and img.mode == "RGB"
    assert np.abs(np.asarray(img)[..., 0].astype(int) - np.asarray(src.convert("L"))).max() <= 1
    # Alpha: kept as RGBA here; the stage composites over white and saves the matte.
    rgba = np.dstack([astro, np.full(astro.shape[:2], 255, np.uint8)])
    rgba[:, :100, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    img, info = load_portrait(tmp_path / "alpha.png")
    assert img.mode == "RGBA" and info["had_alpha"]


def test_stage_writes_srgb_portrait_and_alpha(tmp_path, astro):
    rgba = np.dstack([astro, np.full(astro.shape[:2], 255, np.uint8)])
    rgba[:, :100, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    rec = run_job(tmp_path / "job", inputs={"photo": str(tmp_path / "alpha.png")}, until="input")
    out = np.asarray(Image.open(tmp_path / "job/input/portrait.png"))
    assert out.shape == (512, 512, 3) and (out[:, :100] == 255).all()
    assert _psnr(out[:, 100:], astro[:, 100:]) > 99
    assert (np.asarray(Image.open(tmp_path / "job/input/alpha.png"))[:, :100] == 0).all()
    assert rec["stages"]["input"]["metrics"]["sha256"] == sha256_file(tmp_path / "alpha.png")
    # A different photo under the same job: the stage re-runs because the photo's hash changed.
    Image.fromarray(astro[:, ::-1]).save(tmp_path / "alpha.png")
    rec = run_job(tmp_path / "job", until="input")
    assert rec["stages"]["input"]["metrics"]["had_alpha"] is False
    assert not (tmp_path / "job/input/alpha.png").exists()


def _bad_files(tmp_path, astro):
    jpeg = io.BytesIO()
    Image.fromarray(astro).save(jpeg, format="JPEG")
    files = {
        "empty.jpg": b"",
        "notes.jpg": b"this is a text file, not a photo\n" * 20,
        "truncated.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 3],
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    Image.fromarray(astro[:100, :300]).save(tmp_path / "tiny.png")
    Image.fromarray(astro).save(tmp_path / "photo.gif")
    Image.new("1", (12000, 9000)).save(tmp_path / "huge.png")  # 108 megapixels, a few kB on disk
    return {"empty.jpg": "input.empty", "notes.jpg": "input.not_image", "truncated.jpg": "input.corrupt",
            "tiny.png": "input.too_small", "photo.gif": "input.unsupported_format", "huge.png": "input.too_large",
            "missing.jpg": "input.not_found"}


def test_bad_files_have_specific_errors(tmp_path, astro):
    for name, code in _bad_files(tmp_path, astro).items():
        with pytest.raises(InputImageError) as e:
            load_portrait(tmp_path / name)
        assert e.value.code == code, (name, e.value.code, e.value.message)
        assert name.split(".")[0] in e.value.message or "megapixels" in e.value.message or name in e.value.message


def test_bad_photo_is_refused_before_the_job_records_it(tmp_path, astro):
    """A bad photo given to an existing job is refused by its header before anything is saved: the job keeps
    its photo, its portrait and its record (nothing lost)."""
    Image.fromarray(astro).save(tmp_path / "good.png")
    run_job(tmp_path / "job", inputs={"photo": str(tmp_path / "good.png")}, until="input")
    before = (tmp_path / "job/input/portrait.png").read_bytes()
    record = (tmp_path / "job/job.json").read_bytes()
    (tmp_path / "bad.jpg").write_bytes(b"")
    with pytest.raises(InputImageError) as e:
        run_job(tmp_path / "job", inputs={"photo": str(tmp_path / "bad.jpg")}, until="input")
    assert e.value.code == "input.empty"
    assert (tmp_path / "job/job.json").read_bytes() == record
    assert (tmp_path / "job/input/portrait.png").read_bytes() == before


def test_moved_photo_keeps_the_job_resumable(tmp_path, astro):
    """Once the input stage has run, the job's own input/portrait.png is the source: moving or deleting the
    original keeps the stage done (and the job resumable); a different photo at that path re-runs it."""
    photo = tmp_path / "photo.png"
    Image.fromarray(astro).save(photo)
    run_job(tmp_path / "job", inputs={"photo": str(photo)}, until="input", mode="instant")
    photo.rename(tmp_path / "moved.png")
    events = []
    rec = run_job(tmp_path / "job", until="input", on_event=events.append)
    assert [e.kind for e in events] == ["stage_skipped", "job_done"] and str(photo) in events[0].message
    assert rec["stages"]["input"]["status"] == "done"
    Image.fromarray(astro[:, ::-1]).save(photo)  # a new photo at the old path: read again
    rec = run_job(tmp_path / "job", until="input")
    assert rec["stages"]["input"]["metrics"]["sha256"] == sha256_file(photo)


def test_huge_non_image_is_refused_by_its_header(tmp_path):
    """A 2 GB file that is no image is refused after reading its header, not after reading it whole."""
    import tracemalloc

    big = tmp_path / "video.jpg"
    with open(big, "wb") as f:
        f.write(b"this is no image\n" * 4)
        f.truncate(2 << 30)  # sparse: 2 GB long, a few bytes on disk
    tracemalloc.start()
    try:
        with pytest.raises(InputImageError) as e:
            load_portrait(big)
        with pytest.raises(InputImageError):
            run_job(tmp_path / "job", inputs={"photo": str(big)}, until="input", mode="instant")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert e.value.code == "input.not_image"
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB allocated to refuse it"


def test_symlink_loop_is_named(tmp_path):
    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    with pytest.raises(InputImageError) as e:
        load_portrait(loop)
    assert e.value.code == "input.not_found" and "symbolic link" in e.value.message
