"""Run with a venv's Python: repack the installed distributions that REQUIREMENTS need (their dependency closure,
markers evaluated for this Python) into wheels in OUT, so an offline `pip install --no-index --find-links OUT`
installs exactly those versions; also any distribution whose files overwrote theirs (with_overwriters, listed as
"overwriters": install them too). Each wheel holds the files as the venv has them, as RECORD lists them (files
outside site-packages, such as console scripts, are left out: pip writes its own) and a fresh RECORD.

    python wheels_from_venv.py OUT REQUIREMENT...     → prints one JSON line {"wheels": [...], "bytes": N}
    python wheels_from_venv.py OUT --sdist NAME... REQUIREMENT...  → NAMEs as source distributions (setup.py and
                                                           the installed files): the packages the installer takes
                                                           only from source (data, nothing to compile)
    python wheels_from_venv.py --link DIR REQUIREMENT...  → symlinks the closure's top-level files/folders into DIR
                                                           (a bare Python's site-packages: what Blender bundles)
"""
import base64
import hashlib
import json
import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SKIP = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


def wanted(req: Requirement, extras=("",)) -> bool:
    return req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras)


def closure(requirements: list[str]) -> list:
    dists = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    todo = [(Requirement(r), ("",)) for r in requirements]
    seen, out = set(), []
    while todo:
        req, extras = todo.pop()
        if not wanted(req, extras):
            continue
        name = canonicalize_name(req.name)
        if name in seen and not req.extras:
            continue
        if name not in dists:
            raise SystemExit(f"{req.name} is not installed in {sys.prefix}")
        dist = dists[name]
        if name not in seen:
            seen.add(name)
            out.append(dist)
        todo += [(Requirement(r), ("",) + tuple(req.extras)) for r in dist.requires or []]
    return out


def with_overwriters(dists: list) -> list:
    """Add the distributions whose files overwrote files of `dists` (packages sharing a folder, e.g. cv2/ of
    opencv-python and opencv-python-headless): the bytes on disk are theirs and need their vendored libraries."""
    everyone = list(metadata.distributions())
    out, todo = list(dists), list(dists)
    names = {canonicalize_name(d.metadata["Name"]) for d in out}
    while todo:
        dist = todo.pop()
        for f in dist.files or []:
            if f.hash is None or f.parts[0] == "..":
                continue
            src = Path(dist.locate_file(f))
            if not src.is_file() or src.stat().st_size == f.size and _digest(src.read_bytes()) == f.hash.value:
                continue
            data = _digest(src.read_bytes())
            owner = next((d for d in everyone if canonicalize_name(d.metadata["Name"]) not in names and any(
                g.as_posix() == f.as_posix() and g.hash is not None and g.hash.value == data for g in d.files or [])),
                None)
            if owner is not None:
                names.add(canonicalize_name(owner.metadata["Name"]))
                out.append(owner)
                todo.append(owner)
    return out


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def repack(dist, out: Path) -> Path:
    info = next(f for f in dist.files if f.parts[0].endswith(".dist-info"))
    info_dir = info.parts[0]
    stem = info_dir[: -len(".dist-info")]  # name_version as installed
    wheel_meta = Path(dist.locate_file(f"{info_dir}/WHEEL")).read_text()
    tags = [t.split("-") for t in re.findall(r"^Tag: (\S+)", wheel_meta, re.M)]  # e.g. py2-none-any, py3-none-any
    tag = "-".join(".".join(dict.fromkeys(part)) for part in zip(*tags))  # the compressed tag set: py2.py3-none-any
    path = out / f"{stem}-{tag}.whl"
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for f in dist.files:
            if f.parts[0] == ".." or "__pycache__" in f.parts or (f.parts[0] == info_dir and f.name in SKIP):
                continue
            src = Path(dist.locate_file(f))
            if not src.is_file():
                continue
            data = src.read_bytes()
            z.writestr(f.as_posix(), data)
            record.append(f"{f.as_posix()},sha256={_digest(data)},{len(data)}")
        record.append(f"{info_dir}/RECORD,,")
        z.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")
    return path


def repack_sdist(dist, out: Path) -> Path:
    """A setuptools source distribution of an installed pure-data/Python package (what its upstream sdist holds)."""
    import io
    import tarfile

    files = [f for f in dist.files if f.parts[0] != ".." and not f.parts[0].endswith(".dist-info")
             and "__pycache__" not in f.parts]
    packages = sorted({f.parent.as_posix().replace("/", ".") for f in files if f.name == "__init__.py"})
    data = {}
    for f in files:
        if f.suffix != ".py":
            pkg = next(p for p in sorted(packages, key=len, reverse=True)
                       if f.as_posix().startswith(p.replace(".", "/") + "/"))
            data.setdefault(pkg, []).append(f.as_posix()[len(pkg) + 1:])
    name, version = dist.metadata["Name"], dist.version
    stem = f"{canonicalize_name(name).replace('-', '_')}-{version}"
    setup = (f"from setuptools import setup\nsetup(name={name!r}, version={version!r}, packages={packages!r}, "
             f"package_data={data!r}, zip_safe=False)\n")
    members = {f"{stem}/setup.py": setup.encode(), f"{stem}/PKG-INFO": dist.read_text("METADATA").encode()}
    members.update({f"{stem}/{f.as_posix()}": Path(dist.locate_file(f)).read_bytes() for f in files})
    path = out / f"{stem}.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for member, blob in members.items():
            ti = tarfile.TarInfo(member)
            ti.size = len(blob)
            tar.addfile(ti, io.BytesIO(blob))
    return path


def link(dists, dest: Path) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    tops = sorted({f.parts[0] for d in dists for f in d.files if f.parts[0] not in ("..", "__pycache__")})
    for top in tops:
        src = Path(next(d for d in dists if any(f.parts[0] == top for f in d.files)).locate_file(top))
        if src.exists() and not (dest / top).exists():
            (dest / top).symlink_to(src)
    return tops


def main() -> None:
    if sys.argv[1] == "--link":
        print(json.dumps({"linked": link(closure(sys.argv[3:]), Path(sys.argv[2]))}))
        return
    out, args, sdists = Path(sys.argv[1]), sys.argv[2:], set()
    while args[:1] == ["--sdist"]:
        sdists.add(canonicalize_name(args[1]))
        args = args[2:]
    out.mkdir(parents=True, exist_ok=True)
    needed = closure(args)
    extra = [f"{d.metadata['Name']}=={d.version}" for d in with_overwriters(needed)[len(needed):]]
    dists = with_overwriters(closure(args + extra))  # with what the overwriters themselves need
    wheels = [repack_sdist(d, out) if canonicalize_name(d.metadata["Name"]) in sdists else repack(d, out)
              for d in dists]
    print(json.dumps({"wheels": [w.name for w in wheels], "bytes": sum(w.stat().st_size for w in wheels),
                      "overwriters": extra}))


if __name__ == "__main__":
    main()
