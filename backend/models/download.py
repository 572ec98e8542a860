"""Fetch registry assets: resume, verify, place atomically; or import them from a local folder.

Hugging Face files are resolved with huggingface_hub (`HF_ENDPOINT`, `HF_HUB_OFFLINE`, `HF_TOKEN` honoured;
the hub's LFS sha256 becomes the expected hash); every byte then comes over plain HTTP (urllib) into
`<file>.part`, resumed with a Range request after a dropped connection or a cancel. A file is renamed into
place only after its size and hash check out; a wrong hash removes the download.
"""
from __future__ import annotations

import errno
import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from ..errors import Cancelled, ModelMissingError
from ..events import CancelToken, ProgressEvent
from . import registry, store

CHUNK = 1 << 16
USER_AGENT = "headforge-models/0.1 (+https://github.com/headforge)"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DownloadError(ModelMissingError):
    """A download failed; `code` says why (model.offline, model.not_found, model.hash_mismatch, ...)."""

    code = "model.download_failed"


def hub_offline() -> bool:
    """HF_HUB_OFFLINE as set now (huggingface_hub reads it once at import; a later change must count too)."""
    env = os.environ.get("HF_HUB_OFFLINE")
    if env is not None:
        return env.strip().upper() in {"1", "ON", "YES", "TRUE"}
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    env = os.environ.get("HF_ENDPOINT")
    if env:
        return env.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT


def _offline_error(what: str, reason: str, asset) -> DownloadError:
    return DownloadError(f"Cannot download {asset.id}: {what} ({reason}).", code="model.offline",
                         hint=f"Connect to the network (or set HTTPS_PROXY), or put the files in a folder and run "
                              f"`headforge models download {asset.id} --from FOLDER`.")


class _Progress:
    """Turns byte counts into throttled ProgressEvents for one asset."""

    def __init__(self, asset, on_event, total: int | None):
        self.asset, self.on_event, self.total = asset, on_event, total
        self.done_before = 0  # bytes of files already finished
        self._last = 0.0

    def emit(self, kind: str, fraction: float, message: str, **data) -> None:
        if self.on_event:
            f = max(0.0, min(1.0, fraction))
            self.on_event(ProgressEvent(kind, self.asset.id, fraction=f, overall=f, message=message,
                                        data={"asset": self.asset.id, **data}))

    def bytes(self, name: str, got: int, file_total: int | None, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        if self.total:
            fraction = (self.done_before + got) / self.total
        else:
            fraction = got / file_total if file_total else 0.0
        size = f"{got / 1e6:.1f}/{file_total / 1e6:.1f} MB" if file_total else f"{got / 1e6:.1f} MB"
        self.emit("progress", fraction, f"{name} {size}", file=name, bytes=got, total=file_total)


def download(model_id: str, *, root=None, from_folder=None, accept_terms: bool = False,
             on_event: Callable[[ProgressEvent], None] | None = None, cancel: CancelToken | None = None,
             online: bool = True, offline_reason: str = "", retries: int = 4, timeout: float = 30.0,
             open_part: Callable = open) -> dict:
    """Install one asset; returns its check (store.check_asset). Already verified files are kept.

    from_folder: local-folder mode, copy the files from there (searched by name) instead of fetching.
    online=False (e.g. Blender's online access is off): only local-folder mode works; `offline_reason` says why.
    open_part: how the `.part` file is opened (tests inject a writer that fails like a full disk).
    """
    asset = registry.get(model_id)
    cancel = cancel or CancelToken()
    if asset.user_supplied and not from_folder:
        raise DownloadError(f"{asset.title} is never downloaded by HeadForge: {asset.licence}",
                            code="model.user_supplied",
                            hint=f"Get it from {asset.homepage}, then run `headforge models download {asset.id} "
                                 f"--from FOLDER` with the folder that holds {asset.files[0].name}.")
    if asset.accept_terms and not accept_terms and not from_folder:
        raise DownloadError(f"{asset.title} needs your consent first. Licence: {asset.licence} "
                            f"({asset.licence_url})", code="model.terms_not_accepted",
                            hint=f"If you accept these terms: `headforge models download {asset.id} --accept-terms`.")
    folder = store.asset_dir(asset, root)
    progress = _Progress(asset, on_event, asset.size)
    progress.emit("stage_start", 0.0, f"{asset.title}")
    for mf in asset.files:
        states = [store.check_file(asset, n, root, cancel=cancel) for n in mf.installed_names]
        if all(s["status"] == "present" for s in states):
            progress.done_before += mf.size or 0
            continue
        if from_folder:
            _import_file(asset, mf, Path(from_folder), folder, root, progress, cancel, open_part)
        else:
            if not online:
                raise DownloadError(f"Cannot download {asset.id}: {offline_reason or 'online access is off'}.",
                                    code="model.online_access_off",
                                    hint="Allow online access (Blender: Preferences → System → Network), or "
                                         "point local-folder mode at a folder that holds the files.")
            _fetch_file(asset, mf, folder, root, progress, cancel, retries, timeout, open_part)
        progress.done_before += mf.size or 0
    result = store.check_asset(asset, root, cancel=cancel)
    progress.emit("stage_done", 1.0, f"{asset.id}: {result['status']}")
    return result


# --- plain HTTP with resume ---------------------------------------------------------------------------------------

def _resolve(asset, mf) -> tuple[str, dict, str | None, int | None]:
    """(url, headers, expected sha256 or None, size or None) for one registry file."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if not mf.hf:
        return mf.url, headers, mf.sha256, mf.size
    if hub_offline():
        raise _offline_error("Hugging Face offline mode is on", "HF_HUB_OFFLINE is set", asset)
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled,
                                        RepositoryNotFoundError)
    from huggingface_hub.utils import build_hf_headers

    endpoint = hub_endpoint()
    url = hf_hub_url(mf.hf[0], mf.hf[1], revision=mf.revision, endpoint=endpoint)
    try:
        meta = get_hf_file_metadata(url, endpoint=endpoint, timeout=20)
    except GatedRepoError as e:
        raise DownloadError(f"{mf.hf[0]} is gated: accept its terms on {endpoint}/{mf.hf[0]} and log in "
                            f"(HF_TOKEN) first.", code="model.forbidden") from e
    except (EntryNotFoundError, RepositoryNotFoundError) as e:
        raise DownloadError(f"{mf.source} was not found on {endpoint}.", code="model.not_found") from e
    except OfflineModeIsEnabled as e:
        raise _offline_error("Hugging Face offline mode is on", "HF_HUB_OFFLINE", asset) from e
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status == 404:
            raise DownloadError(f"{mf.source} was not found on {endpoint} (HTTP 404).", code="model.not_found") from e
        if status in (401, 403):
            raise DownloadError(f"{endpoint} refused access to {mf.source} (HTTP {status}): a gated or private "
                                f"repository.", code="model.forbidden",
                                hint="Accept its terms on the model page and set HF_TOKEN.") from e
        raise DownloadError(f"{endpoint} refused {mf.source}: {e}", code="model.download_failed") from e
    except Exception as e:  # noqa: BLE001  (httpx connection errors: DNS, refused, timeout)
        raise _offline_error(f"cannot reach {endpoint}", f"{type(e).__name__}: {e}", asset) from e
    sha = meta.etag if meta.etag and _SHA256_RE.match(meta.etag) else None  # LFS etag = sha256 of the content
    if mf.sha256 and sha and sha != mf.sha256:
        raise DownloadError(f"{mf.source} on the hub (sha256 {sha[:12]}…) is not the file the registry pins "
                            f"({mf.sha256[:12]}…).", code="model.hash_mismatch")
    same_host = urllib.parse.urlsplit(meta.location).netloc == urllib.parse.urlsplit(endpoint).netloc
    if same_host:  # the token goes to the hub only, never to a CDN's pre-signed URL
        headers.update({k: v for k, v in build_hf_headers().items() if k.lower() == "authorization"})
    return meta.location, headers, mf.sha256 or sha, mf.size or meta.size


def _looks_like_html(first: bytes) -> bool:
    head = first.lstrip()[:64].lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def _fetch_file(asset, mf, folder: Path, root, progress: _Progress, cancel, retries, timeout, open_part) -> None:
    url, headers, sha256, size = _resolve(asset, mf)
    dest = folder / mf.name
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if size is not None:
        free = shutil.disk_usage(dest.parent).free
        if free < size - have:
            raise DownloadError(f"Not enough disk space for {mf.name}: {(size - have) / 1e9:.2f} GB needed, "
                                f"{free / 1e9:.2f} GB free in {dest.parent}.", code="model.disk_full",
                                hint="Free some space or choose another models folder (HEADFORGE_MODELS).")
    attempt = 0
    while True:
        if cancel.cancelled:
            raise Cancelled("Download cancelled; run it again to resume.")
        try:
            total = _stream(url, headers, part, size, progress, mf.name, cancel, timeout, open_part)
        except _Dropped as e:
            attempt += 1
            if attempt > retries:
                got = part.stat().st_size if part.exists() else 0
                raise DownloadError(f"{mf.name} stayed incomplete after {retries} retries ({got} bytes; {e}).",
                                    code="model.incomplete",
                                    hint="Run the download again to resume from the partial file.") from None
            time.sleep(min(0.2 * 2 ** attempt, 5.0))
            continue
        except urllib.error.URLError as e:
            attempt += 1
            if attempt > retries or not part.exists():
                host = urllib.parse.urlsplit(url).netloc
                raise _offline_error(f"cannot reach {host}", str(e.reason), asset) from None
            time.sleep(min(0.2 * 2 ** attempt, 5.0))
            continue
        break
    got = part.stat().st_size
    if total is not None and got != total:
        part.unlink()
        raise DownloadError(f"{mf.name}: received {got} bytes, the server announced {total}.", code="model.incomplete")
    _verify_and_place(asset, mf, part, dest, root, sha256, size, source=url, cancel=cancel)


class _Dropped(Exception):
    """The connection ended before the whole file arrived: resume with a Range request."""


def _stream(url, headers, part: Path, size, progress, name, cancel, timeout, open_part) -> int | None:
    """Append the rest of the file to `part`; returns the file's total size when the server said it."""
    have = part.stat().st_size if part.exists() else 0
    req_headers = dict(headers)
    if have:
        req_headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=req_headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have and size is not None and have >= size:
            return size  # the part is already complete
        if e.code == 416:
            part.unlink(missing_ok=True)  # our part is longer than the file: start over
            raise _Dropped("range not satisfiable; restarting") from None
        if e.code == 404:
            raise DownloadError(f"{name} was not found at {url} (HTTP 404).", code="model.not_found",
                                hint="The file moved upstream; update HeadForge, or use --from FOLDER.") from None
        if e.code in (401, 403):
            raise DownloadError(f"{url} refused access (HTTP {e.code}).", code="model.forbidden",
                                hint="Gated models need their terms accepted on the website and a token "
                                     "(HF_TOKEN).") from None
        if e.code >= 500 or e.code == 429:
            raise _Dropped(f"HTTP {e.code}") from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}.", code="model.download_failed") from None
    except (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException) as e:
        raise _Dropped(f"{type(e).__name__}: {e}") from None
    with resp:
        status = resp.status
        ctype = (resp.headers.get("Content-Type") or "").lower()
        if "text/html" in ctype and not name.endswith((".html", ".htm")):
            if not have:  # bytes from an earlier good response stay for the next resume
                part.unlink(missing_ok=True)
            raise DownloadError(f"The server sent a web page instead of {name} ({url}); a proxy, captive portal "
                                f"or login page answered.", code="model.bad_response",
                                hint="Open the address in a browser to see the page, or use --from FOLDER.")
        length = resp.headers.get("Content-Length")
        if status == 206:
            m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                part.unlink(missing_ok=True)
                raise _Dropped("server resumed at the wrong offset; restarting")
            total = int(m.group(3)) if m.group(3) != "*" else size
            mode = "ab"
        else:  # 200: the whole file from the start (the server ignored Range, or a fresh download)
            have, mode = 0, "wb"
            total = int(length) if length is not None else size
        if size is not None and total is not None and total != size:
            raise DownloadError(f"{name}: the server offers {total} bytes, the registry expects {size}.",
                                code="model.hash_mismatch", hint="The upstream file changed; update HeadForge.")
        got = have
        try:
            with open_part(part, mode) as fh:
                first = True
                while True:
                    if cancel.cancelled:
                        raise Cancelled(f"Download cancelled at {got} bytes; run it again to resume.")
                    try:
                        block = resp.read(CHUNK)
                    except (TimeoutError, socket.timeout, ConnectionError, http.client.HTTPException) as e:
                        raise _Dropped(f"{type(e).__name__} after {got} bytes") from None
                    if not block:
                        break
                    if first and got == 0 and _looks_like_html(block) and not name.endswith((".html", ".htm")):
                        raise _HtmlBody()
                    first = False
                    fh.write(block)
                    got += len(block)
                    progress.bytes(name, got, total)
        except _HtmlBody:
            part.unlink(missing_ok=True)
            raise DownloadError(f"The server sent a web page instead of {name} ({url}); a proxy, captive portal "
                                f"or login page answered.", code="model.bad_response",
                                hint="Open the address in a browser to see the page, or use --from FOLDER.") from None
        except OSError as e:
            if e.errno in DISK_FULL:
                raise DownloadError(f"The disk is full while writing {part} ({got} bytes kept for resuming).",
                                    code="model.disk_full",
                                    hint="Free some space and run the download again; it resumes.") from None
            raise
        progress.bytes(name, got, total, force=True)
        if total is not None and got < total:
            raise _Dropped(f"connection closed at {got} of {total} bytes")
        return total


class _HtmlBody(Exception):
    pass


# --- verification and placement -----------------------------------------------------------------------------------

def _verify_and_place(asset, mf, part: Path, dest: Path, root, sha256, size, *, source: str, cancel) -> None:
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise DownloadError(f"{mf.name}: {got} bytes, expected {size}; the download was removed.",
                            code="model.hash_mismatch")
    expect = store.expected(asset, mf.name, root) if not mf.unpack else {"sha256": None, "md5": None}
    sha256 = sha256 or expect["sha256"]
    sha, md5 = store.hash_file(part, md5=bool(mf.md5), cancel=cancel)
    bad = (sha256 and sha != sha256 and f"sha256 {sha[:16]}… instead of {sha256[:16]}…") or \
          (mf.md5 and md5 != mf.md5 and f"md5 {md5} instead of {mf.md5}")
    if bad:
        part.unlink()
        raise DownloadError(f"{mf.name} failed its hash check ({bad}); the download was removed.",
                            code="model.hash_mismatch",
                            hint="A proxy or mirror may have altered it; try again or use --from FOLDER.")
    if mf.unpack:
        try:
            _unpack(asset, mf, part, dest.parent, root, source, cancel)
        finally:
            part.unlink(missing_ok=True)  # the archive is never kept: installed members or nothing
        return
    os.replace(part, dest)
    store.update_pin(asset, mf.name, sha256=sha, size=got, path=dest, root=root, source=source)


def _unpack(asset, mf, archive: Path, folder: Path, root, source: str, cancel) -> None:
    """Extract the wanted members (matched by basename, any depth) atomically, checking known member hashes."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise DownloadError(f"{mf.name} is not a zip archive; it was removed.", code="model.bad_response") from None
    with zf:
        by_base = {}
        for info in zf.infolist():
            if not info.is_dir():
                by_base.setdefault(Path(info.filename).name, info)
        missing = [m for m in mf.unpack if m not in by_base]
        if missing:
            raise DownloadError(f"{mf.name} lacks {', '.join(missing)}.", code="model.bad_response")
        placed = []
        for member in mf.unpack:
            tmp = folder / f".{member}.unpack"
            with zf.open(by_base[member]) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            sha, _ = store.hash_file(tmp, cancel=cancel)
            want = mf.member_sha256.get(member) or store.expected(asset, member, root)["sha256"]
            if want and sha != want:
                tmp.unlink()
                for p in placed:
                    p.unlink(missing_ok=True)
                raise DownloadError(f"{member} in {mf.name} failed its hash check; nothing was installed.",
                                    code="model.hash_mismatch")
            dest = folder / member
            os.replace(tmp, dest)
            placed.append(dest)
            store.update_pin(asset, member, sha256=sha, size=dest.stat().st_size, path=dest, root=root,
                             source=f"{source}#{member}")


# --- local-folder mode --------------------------------------------------------------------------------------------

def _find(folder: Path, name: str) -> Path | None:
    direct = folder / name
    if direct.is_file():
        return direct
    base = Path(name).name
    return next((p for p in sorted(folder.rglob(base)) if p.is_file()), None)


def _import_file(asset, mf, src_folder: Path, folder: Path, root, progress, cancel, open_part) -> None:
    if not src_folder.is_dir():
        raise DownloadError(f"{src_folder} is not a folder.", code="model.not_found")
    folder.mkdir(parents=True, exist_ok=True)
    if mf.unpack:
        members = {m: _find(src_folder, m) for m in mf.unpack}
        if all(members.values()):  # already extracted: copy the members one by one
            for m, p in members.items():
                sub = type(mf)(name=m, sha256=mf.member_sha256.get(m))
                _copy_verified(asset, sub, p, folder / m, root, progress, cancel, open_part)
            return
        archive = _find(src_folder, mf.name)
        if archive is None:
            raise DownloadError(f"{src_folder} holds neither {mf.name} nor "
                                f"{', '.join(m for m, p in members.items() if p is None)}.", code="model.not_found")
        part = folder / (mf.name + ".part")
        _copy(archive, part, progress, mf.name, cancel, open_part)
        _verify_and_place(asset, mf, part, folder / mf.name, root, mf.sha256, mf.size, source=str(archive),
                          cancel=cancel)
        return
    src = _find(src_folder, mf.name)
    if src is None:
        raise DownloadError(f"{mf.name} is not in {src_folder} (searched its sub-folders too).",
                            code="model.not_found")
    _copy_verified(asset, mf, src, folder / mf.name, root, progress, cancel, open_part)


def _copy(src: Path, part: Path, progress, name, cancel, open_part) -> None:
    total, got = src.stat().st_size, 0
    part.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(src, "rb") as fin, open_part(part, "wb") as fout:
            while block := fin.read(1 << 20):
                if cancel.cancelled:
                    raise Cancelled("Copy cancelled.")
                fout.write(block)
                got += len(block)
                progress.bytes(name, got, total)
    except OSError as e:
        part.unlink(missing_ok=True)
        if e.errno in DISK_FULL:
            raise DownloadError(f"The disk is full while copying {name} into {part.parent}.",
                                code="model.disk_full", hint="Free some space and try again.") from None
        raise
    except Cancelled:
        part.unlink(missing_ok=True)
        raise


def _copy_verified(asset, mf, src: Path, dest: Path, root, progress, cancel, open_part) -> None:
    part = dest.with_name(dest.name + ".part")
    _copy(src, part, progress, mf.name, cancel, open_part)
    _verify_and_place(asset, mf, part, dest, root, mf.sha256, mf.size, source=str(src), cancel=cancel)


def verify(model_id: str | None = None, root=None, *, deep: bool = True, cancel=None) -> list[dict]:
    """Check one asset or all: present, missing, partial, corrupt or unverified per asset and per file."""
    assets = [registry.get(model_id)] if model_id else list(registry.ASSETS.values())
    return [store.check_asset(a, root, deep=deep, cancel=cancel) for a in assets]
