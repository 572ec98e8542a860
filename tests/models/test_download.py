"""Downloads against a real HTTP server on 127.0.0.1: resume, faults, hashes, atomic placement, local folders."""
import errno
import hashlib
import io
import json
import threading
import zipfile

import pytest

from headforge.backend.errors import Cancelled
from headforge.backend.events import CancelToken
from headforge.backend.models import download as dl
from headforge.backend.models import registry, store
from headforge.backend.models.registry import ModelAsset, ModelFile

from .conftest import HTML


def blob(n: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-looking bytes: n of them."""
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def root(tmp_path):
    return tmp_path / "models"


def add_asset(monkeypatch, asset: ModelAsset) -> ModelAsset:
    monkeypatch.setitem(registry.ASSETS, asset.id, asset)
    return asset


def simple(monkeypatch, url: str, name="weights.bin", sha256=None, size=None, md5=None, asset_id="test-weights",
           **kw) -> ModelAsset:
    return add_asset(monkeypatch, ModelAsset(
        id=asset_id, title="test weights", purpose="tests", folder=f"test/{asset_id}",
        files=(ModelFile(name=name, url=url, sha256=sha256, size=size, md5=md5),), licence="MIT",
        licence_url="", commercial="yes", accept_terms=False, **kw))


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_places_and_reports_progress(server, root, monkeypatch):
    data = blob(300_000)
    server.serve("/w.bin", data)
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data), size=len(data))
    events = []
    result = dl.download(asset.id, root=root, on_event=events.append)
    dest = root / asset.folder / "weights.bin"
    assert result["status"] == "present" and dest.read_bytes() == data
    assert leftovers(dest.parent) == ["weights.bin"]  # no .part, no temp files
    fractions = [e.fraction for e in events if e.kind == "progress"]
    assert fractions and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert events[0].kind == "stage_start" and events[-1].kind == "stage_done"
    pins = json.loads((root / "pins.json").read_text())
    assert pins[f"{asset.id}/weights.bin"]["sha256"] == sha(data)
    # a second call finds the verified file and fetches nothing
    n = len(server.httpd.routes["/w.bin"].requests)
    dl.download(asset.id, root=root)
    assert len(server.httpd.routes["/w.bin"].requests) == n


def test_resume_after_dropped_connection(server, root, monkeypatch):
    data = blob(200_000, 1)
    route = server.serve("/w.bin", data, mode="drop_first", cut=70_000)
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data))
    dl.download(asset.id, root=root)
    assert (root / asset.folder / "weights.bin").read_bytes() == data
    gets = [r for r in route.requests if r["method"] == "GET"]
    assert len(gets) == 2 and gets[0]["range"] is None and gets[1]["range"] == "bytes=70000-"


def test_server_that_ignores_range_restarts_cleanly(server, root, monkeypatch):
    data = blob(120_000, 2)
    server.serve("/w.bin", data, mode="no_range")
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data))
    part = root / asset.folder / "weights.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:50_000])
    dl.download(asset.id, root=root)
    assert (root / asset.folder / "weights.bin").read_bytes() == data


def test_partially_downloaded_file_is_resumed(server, root, monkeypatch):
    data = blob(150_000, 3)
    route = server.serve("/w.bin", data)
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data), size=len(data))
    part = root / asset.folder / "weights.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(data[:100_000])
    assert store.check_asset(asset, root)["files"][0]["detail"] == "partly downloaded (100000 bytes so far)"
    dl.download(asset.id, root=root)
    assert (root / asset.folder / "weights.bin").read_bytes() == data
    assert [r["range"] for r in route.requests] == ["bytes=100000-"]


def test_404_is_a_clear_error_and_leaves_nothing(server, root, monkeypatch):
    asset = simple(monkeypatch, server.url + "/missing.bin")
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.not_found" and "404" in e.value.message
    assert leftovers(root / asset.folder) == []


def test_truncated_file_refused_and_removed(server, root, monkeypatch):
    data = blob(100_000, 4)
    server.serve("/w.bin", data[:60_000])  # the server's copy itself is cut short
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data))
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.hash_mismatch"
    assert leftovers(root / asset.folder) == []


def test_connection_that_always_drops_gives_up_but_keeps_the_part(server, root, monkeypatch):
    data = blob(100_000, 5)
    server.serve("/w.bin", data, mode="always_drop", cut=10_000)
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data))
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root, retries=2)
    assert e.value.code == "model.incomplete"
    part = root / asset.folder / "weights.bin.part"
    assert part.stat().st_size == 30_000 and part.read_bytes() == data[:30_000]  # 3 attempts × 10 kB, all kept
    assert not (root / asset.folder / "weights.bin").exists()


def test_wrong_hash_refused_and_removed(server, root, monkeypatch):
    data = blob(80_000, 6)
    server.serve("/w.bin", data)
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(b"something else"))
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.hash_mismatch" and "removed" in e.value.message
    assert leftovers(root / asset.folder) == []


def test_upstream_md5_is_checked(server, root, monkeypatch):
    data = blob(50_000, 7)
    server.serve("/w.bin", data)
    bad = simple(monkeypatch, server.url + "/w.bin", md5="0" * 32, asset_id="md5-bad")
    with pytest.raises(dl.DownloadError):
        dl.download(bad.id, root=root)
    good = simple(monkeypatch, server.url + "/w.bin", md5=hashlib.md5(data).hexdigest(), asset_id="md5-good")
    assert dl.download(good.id, root=root)["status"] == "present"


def test_slow_server_cancel_then_resume(server, root, monkeypatch):
    data = blob(400_000, 8)
    route = server.serve("/w.bin", data, mode="slow", delay=0.01)  # ~100 kB/s
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data))
    cancel = CancelToken()

    def on_event(e):
        if e.kind == "progress" and e.data.get("bytes", 0) >= 20_000:
            cancel.cancel()

    with pytest.raises(Cancelled):
        dl.download(asset.id, root=root, on_event=on_event, cancel=cancel)
    part = root / asset.folder / "weights.bin.part"
    kept = part.stat().st_size
    assert 20_000 <= kept < len(data) and part.read_bytes() == data[:kept]
    assert not (root / asset.folder / "weights.bin").exists()
    route.mode = "ok"
    dl.download(asset.id, root=root)
    assert (root / asset.folder / "weights.bin").read_bytes() == data
    assert route.requests[-1]["range"] == f"bytes={kept}-"


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_proxy_html_page_instead_of_the_file(server, root, monkeypatch, content_type):
    server.serve("/w.bin", b"", mode="html", content_type=content_type)
    asset = simple(monkeypatch, server.url + "/w.bin")  # no hash known: the sniffing alone must catch it
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.bad_response" and "web page" in e.value.message
    assert leftovers(root / asset.folder) == []
    assert not (root / "pins.json").exists() or asset.id not in (root / "pins.json").read_text()
    assert len(HTML) > 0


class FullDisk:
    """A writer that fails like a full disk once `limit` bytes are in the file."""

    def __init__(self, limit: int):
        self.limit = limit

    def __call__(self, path, mode):
        fh = open(path, mode)
        limit = self.limit

        class Writer(io.RawIOBase):
            def write(self, b):
                if fh.tell() + len(b) > limit:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return fh.write(b)

            def close(self):
                fh.close()
                super().close()

        return Writer()


def test_full_disk_stops_cleanly_and_resumes(server, root, monkeypatch):
    data = blob(300_000, 9)
    server.serve("/w.bin", data)
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data))
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root, open_part=FullDisk(100_000))
    assert e.value.code == "model.disk_full"
    part = root / asset.folder / "weights.bin.part"
    assert 0 < part.stat().st_size <= 100_000 and data.startswith(part.read_bytes())
    assert not (root / asset.folder / "weights.bin").exists()
    dl.download(asset.id, root=root)  # space freed: resumes from the part
    assert (root / asset.folder / "weights.bin").read_bytes() == data


def test_known_size_larger_than_free_space_refused_before_fetching(server, root, monkeypatch):
    server.serve("/w.bin", b"x")
    asset = simple(monkeypatch, server.url + "/w.bin", size=1 << 60)
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.disk_full"
    assert server.httpd.routes["/w.bin"].requests == []


def test_pin_on_first_download_then_replaced_file_is_corrupt(server, root, monkeypatch):
    data = blob(60_000, 10)
    server.serve("/w.bin", data)
    asset = simple(monkeypatch, server.url + "/w.bin")  # no upstream hash
    assert asset.hash_state == "pin on first verified download"
    dl.download(asset.id, root=root)
    dest = root / asset.folder / "weights.bin"
    assert store.expected(asset, "weights.bin", root) == {"sha256": sha(data), "md5": None, "size": len(data),
                                                           "origin": "pinned"}
    dest.write_bytes(blob(60_000, 11))  # replaced by something else of the same size
    check = dl.verify(asset.id, root)[0]
    assert check["status"] == "corrupt" and "pinned" in check["files"][0]["detail"]
    # a mirror now serving different bytes is refused against the pin; the corrupt file is not "repaired" with it
    server.serve("/w.bin", blob(60_000, 12))
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.hash_mismatch"
    server.serve("/w.bin", data)
    assert dl.download(asset.id, root=root)["status"] == "present" and dest.read_bytes() == data


def test_truncated_installed_file_is_corrupt_and_redownloaded(server, root, monkeypatch):
    data = blob(90_000, 13)
    server.serve("/w.bin", data)
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data), size=len(data))
    dl.download(asset.id, root=root)
    dest = root / asset.folder / "weights.bin"
    dest.write_bytes(data[:40_000])
    quick = store.check_asset(asset, root, deep=False)
    assert quick["status"] == "corrupt" and "expected 90000" in quick["files"][0]["detail"]
    dl.download(asset.id, root=root)
    assert dest.read_bytes() == data


def test_local_folder_mode(tmp_path, root, monkeypatch):
    data = blob(70_000, 14)
    src = tmp_path / "usb" / "nested"
    src.mkdir(parents=True)
    (src / "weights.bin").write_bytes(data)
    asset = simple(monkeypatch, "http://127.0.0.1:9/never", sha256=sha(data))
    result = dl.download(asset.id, root=root, from_folder=tmp_path / "usb", online=False)
    assert result["status"] == "present" and (root / asset.folder / "weights.bin").read_bytes() == data
    (src / "weights.bin").write_bytes(blob(70_000, 15))  # the wrong file in the folder is refused
    (root / asset.folder / "weights.bin").unlink()
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root, from_folder=tmp_path / "usb")
    assert e.value.code == "model.hash_mismatch"
    assert leftovers(root / asset.folder) == []
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root, from_folder=tmp_path / "empty-does-not-exist")
    assert e.value.code == "model.not_found"


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def test_zip_pack_unpacked_with_member_hashes(server, root, monkeypatch):
    det, rec = blob(20_000, 16), blob(30_000, 17)
    server.serve("/pack.zip", _zip({"pack/det.onnx": det, "pack/rec.onnx": rec, "pack/readme.txt": b"hi"}))
    asset = add_asset(monkeypatch, ModelAsset(
        id="test-pack", title="pack", purpose="tests", folder="insightface/models/test_pack",
        files=(ModelFile(name="pack.zip", url=server.url + "/pack.zip", unpack=("det.onnx", "rec.onnx"),
                         member_sha256={"det.onnx": sha(det)}),),
        licence="non-commercial", licence_url="", commercial="no", accept_terms=True))
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.terms_not_accepted" and "non-commercial" in e.value.message
    result = dl.download(asset.id, root=root, accept_terms=True)
    folder = root / asset.folder
    assert result["status"] == "present" and leftovers(folder) == ["det.onnx", "rec.onnx"]
    assert (folder / "det.onnx").read_bytes() == det and (folder / "rec.onnx").read_bytes() == rec
    assert registry.local_path(asset.id, root) == folder
    # a pack whose member does not match its published hash installs nothing
    (folder / "det.onnx").unlink()
    (folder / "rec.onnx").unlink()
    server.serve("/pack.zip", _zip({"det.onnx": blob(20_000, 18), "rec.onnx": rec}))
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root, accept_terms=True)
    assert e.value.code == "model.hash_mismatch" and leftovers(folder) == []


def test_offline_messages(root, monkeypatch):
    asset = simple(monkeypatch, "http://127.0.0.1:9/closed.bin")  # port 9: nothing listens
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.offline" and "--from FOLDER" in str(e.value)
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root, online=False, offline_reason="Blender's online access is off")
    assert e.value.code == "model.online_access_off" and "Blender" in e.value.message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(dl.DownloadError) as e:
        dl.download("aesthetic-predictor", root=root)
    assert e.value.code == "model.offline" and "HF_HUB_OFFLINE" in str(e.value)


def test_flame_is_never_fetched(root):
    with pytest.raises(dl.DownloadError) as e:
        dl.download("flame", root=root, accept_terms=True)
    assert e.value.code == "model.user_supplied" and "--from FOLDER" in str(e.value)


@pytest.fixture
def hub(server, monkeypatch):
    """The local server standing in for the Hugging Face hub (HF_ENDPOINT), offline mode lifted for the test."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    return server


def hf_asset(monkeypatch, sha256=None):
    return add_asset(monkeypatch, ModelAsset(
        id="test-hf", title="hub file", purpose="tests", folder="hub",
        files=(ModelFile(name="recon.safetensors", hf=("Org/Repo", "recon.safetensors"), sha256=sha256),),
        licence="MIT", licence_url="", commercial="yes", accept_terms=False))


def test_hugging_face_file_through_hf_endpoint(hub, root, monkeypatch):
    data = blob(120_000, 19)
    route = hub.serve("/Org/Repo/resolve/main/recon.safetensors", data, mode="hf")
    asset = hf_asset(monkeypatch)
    assert dl.download(asset.id, root=root)["status"] == "present"
    assert (root / "hub/recon.safetensors").read_bytes() == data
    assert [r["method"] for r in route.requests] == ["HEAD", "GET"]
    # the hub's LFS sha256 (X-Linked-Etag) was the expected hash, so the pin records it
    assert store.expected(asset, "recon.safetensors", root)["sha256"] == sha(data)


def test_hugging_face_etag_mismatch_refused(hub, root, monkeypatch):
    data = blob(50_000, 20)
    hub.serve("/Org/Repo/resolve/main/recon.safetensors", data, mode="hf", etag=sha(b"other"))
    asset = hf_asset(monkeypatch)
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.hash_mismatch"
    assert leftovers(root / "hub") == []


def test_hugging_face_missing_file(hub, root, monkeypatch):
    asset = hf_asset(monkeypatch)
    with pytest.raises(dl.DownloadError) as e:
        dl.download(asset.id, root=root)
    assert e.value.code == "model.not_found"


def test_cancel_from_another_thread_while_blocked_on_a_slow_server(server, root, monkeypatch):
    data = blob(200_000, 21)
    server.serve("/w.bin", data, mode="slow", delay=0.02)
    asset = simple(monkeypatch, server.url + "/w.bin", sha256=sha(data))
    cancel = CancelToken()
    threading.Timer(0.3, cancel.cancel).start()
    with pytest.raises(Cancelled):
        dl.download(asset.id, root=root, cancel=cancel)
    assert not (root / asset.folder / "weights.bin").exists()
