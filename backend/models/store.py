"""Where model files live, the hashes pinned on first verified download, and present/missing/corrupt checks.

Root: `set_root()` (the Blender preferences' models folder) > $HEADFORGE_MODELS > ~/.cache/headforge/models.
Each asset has its folder under the root (registry.ModelAsset.folder). `pins.json` in the root records, per
installed file, the sha256 measured when it was first verified (for files without an upstream hash) and the
(size, mtime) at the last full check, so `doctor` need not re-hash gigabytes.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

from ..errors import Cancelled, ModelMissingError
from ..fileio import write_json

PINS_FILE = "pins.json"
_override: Path | None = None
_lock = threading.Lock()


def set_root(path: str | os.PathLike | None) -> None:
    """Use this folder as the models root in this process (None: back to $HEADFORGE_MODELS / the default)."""
    global _override
    _override = Path(path).expanduser() if path else None


def models_root(root: str | os.PathLike | None = None) -> Path:
    if root:
        return Path(root).expanduser()
    if _override is not None:
        return _override
    env = os.environ.get("HEADFORGE_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "headforge" / "models"


def model_path(*parts: str, root: str | os.PathLike | None = None) -> Path:
    """Where a model file or folder lives: `parts` under the models root. Every model lookup in the backend
    goes through here (or `asset_dir`), so the add-on's models folder and $HEADFORGE_MODELS apply to all."""
    return models_root(root).joinpath(*parts)


def asset_dir(asset, root=None) -> Path:
    return model_path(asset.folder, root=root)


def _key(asset, name: str) -> str:
    return f"{asset.id}/{name}"


def load_pins(root=None) -> dict:
    path = models_root(root) / PINS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError):
        return {}  # an unreadable pin file only costs a re-hash; the next verified download rewrites it


def update_pin(asset, name: str, *, sha256: str, size: int, path: Path, root=None, source: str = "") -> None:
    """Record a verified file: its sha256 (pinned the first time) and the (size, mtime) it was checked at."""
    with _lock:
        pins = load_pins(root)
        entry = pins.get(_key(asset, name), {})
        if "sha256" not in entry:
            entry.update(sha256=sha256, size=size, pinned_at=time.strftime("%Y-%m-%dT%H:%M:%S"), source=source)
        st = path.stat()
        entry["checked"] = [st.st_size, st.st_mtime_ns]
        pins[_key(asset, name)] = entry
        write_json(models_root(root) / PINS_FILE, pins)


def forget(asset, root=None) -> None:
    """Drop an asset's pins (after the user deletes its files on purpose)."""
    with _lock:
        pins = {k: v for k, v in load_pins(root).items() if not k.startswith(asset.id + "/")}
        write_json(models_root(root) / PINS_FILE, pins)


def expected(asset, name: str, root=None) -> dict:
    """What an installed file must match: {'sha256', 'md5', 'size', 'origin'} ('upstream', 'pinned' or None)."""
    for f in asset.files:
        if name == f.name and not f.unpack:
            if f.sha256 or f.md5:
                return {"sha256": f.sha256, "md5": f.md5, "size": f.size, "origin": "upstream"}
            break
        if name in f.unpack and name in f.member_sha256:
            return {"sha256": f.member_sha256[name], "md5": None, "size": None, "origin": "upstream"}
    pin = load_pins(root).get(_key(asset, name))
    if pin and pin.get("sha256"):
        return {"sha256": pin["sha256"], "md5": None, "size": pin.get("size"), "origin": "pinned"}
    size = next((f.size for f in asset.files if f.name == name and not f.unpack), None)
    return {"sha256": None, "md5": None, "size": size, "origin": None}


def hash_file(path: Path, *, md5: bool = False, cancel=None, on_bytes=None,
              chunk: int = 1 << 20) -> tuple[str, str | None]:
    """sha256 (and md5 when asked) of a file, read in 1 MiB chunks; `cancel` is checked between chunks."""
    h, m = hashlib.sha256(), (hashlib.md5() if md5 else None)
    done = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            if m:
                m.update(block)
            done += len(block)
            if on_bytes:
                on_bytes(done)
            if cancel is not None and cancel.cancelled:
                raise Cancelled("Verification cancelled.")
    return h.hexdigest(), (m.hexdigest() if m else None)


def check_file(asset, name: str, root=None, *, deep: bool = True, cancel=None) -> dict:
    """One installed file: {'name', 'path', 'status', 'detail'}; status is present, missing, corrupt or unverified.

    deep=False trusts a file whose (size, mtime) match its last full check, and reports 'unverified' for
    others instead of hashing them (doctor's quick mode).
    """
    path = asset_dir(asset, root) / name
    out = {"name": name, "path": str(path)}
    if not path.is_file():
        part = path.with_name(path.name + ".part")
        detail = f"partly downloaded ({part.stat().st_size} bytes so far)" if part.is_file() else "not downloaded"
        return {**out, "status": "missing", "detail": detail}
    exp = expected(asset, name, root)
    st = path.stat()
    if exp["size"] is not None and st.st_size != exp["size"]:
        return {**out, "status": "corrupt", "detail": f"{st.st_size} bytes, expected {exp['size']}"}
    pin = load_pins(root).get(_key(asset, name), {})
    if pin.get("checked") == [st.st_size, st.st_mtime_ns] and exp["origin"]:
        return {**out, "status": "present", "detail": f"verified ({exp['origin']} sha256)"}
    if not deep:
        return {**out, "status": "unverified", "detail": "changed since its last check"}
    sha, md5 = hash_file(path, md5=bool(exp["md5"]), cancel=cancel)
    if exp["sha256"] and sha != exp["sha256"]:
        return {**out, "status": "corrupt",
                "detail": f"sha256 {sha[:12]}… differs from the {exp['origin']} {exp['sha256'][:12]}…"}
    if exp["md5"] and md5 != exp["md5"]:
        return {**out, "status": "corrupt", "detail": f"md5 {md5} differs from the upstream {exp['md5']}"}
    if not exp["origin"]:
        return {**out, "status": "unverified", "detail": f"no hash known or pinned (sha256 {sha[:12]}…); "
                                                          "download it again to pin one"}
    update_pin(asset, name, sha256=sha, size=st.st_size, path=path, root=root)
    return {**out, "status": "present", "detail": f"verified ({exp['origin']} hash)"}


def check_asset(asset, root=None, *, deep: bool = True, cancel=None) -> dict:
    """{'id', 'status', 'folder', 'files': [...]}: present | missing | partial | corrupt | unverified."""
    files = [check_file(asset, n, root, deep=deep, cancel=cancel) for f in asset.files for n in f.installed_names]
    states = {f["status"] for f in files}
    if "corrupt" in states:
        status = "corrupt"
    elif states == {"missing"}:
        status = "missing"
    elif "missing" in states:
        status = "partial"
    elif "unverified" in states:
        status = "unverified"
    else:
        status = "present"
    return {"id": asset.id, "status": status, "folder": str(asset_dir(asset, root)), "files": files}


def open_model(path, loader, asset_ids=()):
    """`loader(path)`, or ModelMissingError `model.corrupt` naming the file and the commands that check and
    replace it when it cannot be loaded (truncated, damaged, replaced: the libraries' own messages name neither).
    `asset_ids`: the registry assets the file may belong to, for the hint."""
    ids = " ".join(asset_ids) or "ID"
    hint = (f"Check it with `headforge models verify {ids}` and download it again with "
            f"`headforge models download {ids}`.")
    try:
        model = loader(str(path))
    except Exception as e:  # noqa: BLE001  (onnxruntime, OpenCV, insightface: each raises its own types)
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ModelMissingError(f"The model file {path} could not be loaded ({why}).", code="model.corrupt",
                                hint=hint) from e
    if model is None:  # insightface's model zoo answers None for a file it cannot place
        raise ModelMissingError(f"The model file {path} is not a model this library knows.", code="model.corrupt",
                                hint=hint)
    return model
