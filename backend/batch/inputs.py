"""What a batch runs: the photos of a folder (recursively, images recognised by their header, not their name)
or the rows of a CSV manifest (`photo,job_name` plus optional `face` and `STAGE.OPTION` columns)."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HeadForgeError

# What Pillow calls the formats the input stage accepts (backend/stages/input.py ACCEPTED_FORMATS).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "MPO")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class BatchItem:
    """One job of a batch: its folder name under OUT, its photo and its own stage options."""

    name: str
    photo: str  # absolute path
    options: dict = field(default_factory=dict)  # {stage: {option: value}} from the manifest row
    row: int | None = None  # manifest line number (1 = the header), None for a folder


@dataclass
class Discovery:
    items: list[BatchItem]
    ignored: list[dict]  # {"path", "why"}: files of the folder that are not images


def discover(source: str | Path) -> Discovery:
    """The batch's jobs from a folder of photos or a CSV manifest. Raises HeadForgeError batch.* codes."""
    src = Path(source).expanduser()
    if src.is_dir():
        return _from_folder(src.resolve())
    if src.is_file() and src.suffix.lower() == ".csv":
        return _from_manifest(src.resolve())
    if src.is_file():
        raise HeadForgeError(f"{src} is a file but not a CSV manifest; give a folder of photos or a .csv with "
                             "columns photo,job_name.", code="batch.bad_input")
    raise HeadForgeError(f"{src} does not exist.", code="batch.bad_input")


def image_format(path: Path) -> str | None:
    """Pillow's name of the format of `path` read from its header ("JPEG", ...), None when it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def job_name(text: str) -> str:
    """A folder name from a photo's relative path or a manifest's job_name: safe characters only."""
    name = _UNSAFE.sub("_", text.replace("\\", "/").replace("/", "__")).strip("._")
    return name or "job"


def _unique(items: list[BatchItem]) -> list[BatchItem]:
    seen: dict[str, int] = {}
    for it in items:
        base = it.name
        n = seen.get(base.lower(), 0)
        seen[base.lower()] = n + 1
        if n:
            it.name = f"{base}-{n + 1}"
            seen[it.name.lower()] = 1
    return items


def _from_folder(root: Path) -> Discovery:
    items, ignored = [], []
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden files and folders (.DS_Store, .git)
        fmt = image_format(p)
        if fmt in IMAGE_FORMATS:
            items.append(BatchItem(job_name(str(rel.with_suffix(""))), str(p)))
        elif fmt is not None and p.stat().st_size:
            ignored.append({"path": str(p), "why": f"a {fmt} image (HeadForge reads JPEG, PNG, WebP, TIFF)"})
        else:
            ignored.append({"path": str(p), "why": "not an image (by its header)"})
    if not items:
        raise HeadForgeError(f"No photos found in {root} (JPEG, PNG, WebP or TIFF, searched recursively).",
                             code="batch.no_photos")
    return Discovery(_unique(items), ignored)


def _from_manifest(path: Path) -> Discovery:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise HeadForgeError(f"{path} cannot be read as UTF-8 text ({e}).", code="batch.bad_manifest") from e
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise HeadForgeError(f"{path} is empty; it needs a header row photo,job_name.", code="batch.bad_manifest")
    header = [h.strip() for h in rows[0]]
    if "photo" not in header:
        raise HeadForgeError(f"{path}: the header {','.join(header)} has no 'photo' column.",
                             code="batch.bad_manifest", hint="columns: photo,job_name[,face][,STAGE.OPTION...]")
    for h in header:
        if h not in ("photo", "job_name", "face") and (h.count(".") != 1 or not all(h.split("."))):
            raise HeadForgeError(f"{path}: column {h!r} is neither photo, job_name, face nor STAGE.OPTION.",
                                 code="batch.bad_manifest")
    items = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header):
            raise HeadForgeError(f"{path} line {line} has {len(row)} cells for {len(header)} columns.",
                                 code="batch.bad_manifest")
        cells = dict(zip(header, (c.strip() for c in row)))
        if not cells.get("photo"):
            raise HeadForgeError(f"{path} line {line} has no photo.", code="batch.bad_manifest")
        photo = Path(cells["photo"]).expanduser()
        photo = photo if photo.is_absolute() else path.parent / photo
        options: dict = {}
        for key, value in cells.items():
            if key in ("photo", "job_name") or value == "":
                continue
            stage, opt = ("face", "face") if key == "face" else key.split(".")
            options.setdefault(stage, {})[opt] = value
        name = job_name(cells.get("job_name") or photo.stem)
        items.append(BatchItem(name, str(photo.resolve()), options, row=line))
    if not items:
        raise HeadForgeError(f"{path} lists no photos.", code="batch.no_photos")
    names = [it.name.lower() for it in items]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise HeadForgeError(f"{path}: job_name {', '.join(dupes)} appears more than once; each row needs its own "
                             "job folder.", code="batch.bad_manifest")
    return Discovery(items, [])
