"""The job framework: resume, re-run on changed inputs or options, cancel, progress, typed errors."""
import json
from dataclasses import dataclass, field

import pytest

from headforge.backend import job as J
from headforge.backend.errors import Cancelled, JobError, StageError
from headforge.backend.events import CancelToken
from headforge.backend.fileio import atomic_path, write_json


@dataclass
class ScaleOptions:
    factor: int = 2


calls: list[str] = []


def make_source(ctx):
    calls.append("source")
    value = ctx.job.load()["inputs"]["value"]
    write_json(ctx.path("a/source.json"), {"value": value})
    return {"value": value}


def make_scaled(ctx):
    calls.append("scaled")
    value = json.loads(ctx.path("a/source.json").read_text())["value"]
    for step in range(4):
        ctx.progress(step / 4, f"step {step}", preview=ctx.path("a/source.json"))
        write_json(ctx.path(f"b/part{step}.json"), {"v": value * ctx.options.factor + step})
    return {"sum": sum(value * ctx.options.factor + s for s in range(4))}


@pytest.fixture
def toy(monkeypatch):
    calls.clear()
    stages = dict(J.STAGES)
    stages["t_source"] = J.Stage("t_source", make_source, (), ("a/source.json",))
    stages["t_scaled"] = J.Stage("t_scaled", make_scaled, ("a/source.json",), ("b",), ScaleOptions)
    monkeypatch.setattr(J, "STAGES", stages)
    monkeypatch.setitem(J.PIPELINES, "toy", ("t_source", "t_scaled"))
    return stages


def test_runner_runs_the_stages_it_is_given(tmp_path, monkeypatch):
    """The runner takes its stages explicitly; the default list (the pipeline's own, in order) is untouched."""
    calls.clear()
    monkeypatch.setitem(J.PIPELINES, "toy", ("t_source", "t_scaled"))
    mine = {"t_source": J.Stage("t_source", make_source, (), ("a/source.json",)),
            "t_scaled": J.Stage("t_scaled", make_scaled, ("a/source.json",), ("b",), ScaleOptions)}
    rec = J.run_job(tmp_path, inputs={"value": 3}, mode="toy", options={"t_scaled": {"factor": 3}}, stages=mine)
    assert calls == ["source", "scaled"] and rec["stages"]["t_scaled"]["metrics"] == {"sum": 42}
    assert list(J.STAGES) == ["input", "face", "multiview", "splat", "mesh", "rig"]
    with pytest.raises(JobError, match="unknown stage 't_scaled'"):  # the default list knows no such stage
        J.run_job(tmp_path, mode="toy", options={"t_scaled": {"factor": 4}})


def test_runs_records_and_resumes(toy, tmp_path):
    events = []
    rec = J.run_job(tmp_path, inputs={"value": 3}, mode="toy", on_event=events.append)
    assert calls == ["source", "scaled"]
    assert rec["stages"]["t_scaled"]["metrics"] == {"sum": 30}
    assert rec["stages"]["t_scaled"]["options"] == {"factor": 2}
    assert all(rec["stages"][s]["status"] == "done" for s in ("t_source", "t_scaled"))
    progress = [e for e in events if e.kind == "progress"]
    assert [e.fraction for e in progress] == [0.0, 0.25, 0.5, 0.75]
    assert [round(e.overall, 3) for e in progress] == [0.5, 0.625, 0.75, 0.875]
    assert progress[0].preview.endswith("a/source.json") and events[-1].kind == "job_done"
    # Same inputs and options: nothing runs again.
    events.clear()
    J.run_job(tmp_path, mode="toy", on_event=events.append)
    assert calls == ["source", "scaled"]
    assert [e.kind for e in events] == ["stage_skipped", "stage_skipped", "job_done"]


def test_changed_option_reruns_only_that_stage(toy, tmp_path):
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    rec = J.run_job(tmp_path, mode="toy", options={"t_scaled": {"factor": 5}})
    assert calls == ["source", "scaled", "scaled"]
    assert rec["stages"]["t_scaled"]["metrics"] == {"sum": 66}


def test_damaged_output_is_remade_and_its_consumer_kept(toy, tmp_path):
    """An output overwritten after its stage ran (garbage, a hand edit) no longer matches its recorded hash: the
    stage that wrote it runs again; what it makes is identical, so its consumer (inputs hashed) is kept."""
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    (tmp_path / "a/source.json").write_bytes(b"\x00garbage")
    rec = J.run_job(tmp_path, mode="toy")
    assert calls == ["source", "scaled", "source"]
    assert json.loads((tmp_path / "a/source.json").read_text()) == {"value": 3}
    # A damaged file inside an output folder counts too.
    (tmp_path / "b/part2.json").write_text("{}")
    rec = J.run_job(tmp_path, mode="toy")
    assert calls[-1] == "scaled" and json.loads((tmp_path / "b/part2.json").read_text()) == {"v": 8}
    assert rec["stages"]["t_scaled"]["outputs"]["b"] == J.sha256_tree(tmp_path / "b")


def test_optional_output_is_checked_and_a_stale_one_removed(toy, tmp_path, monkeypatch):
    def maybe_extra(ctx):
        calls.append("extra")
        write_json(ctx.path("c/main.json"), {})
        if ctx.job.load()["inputs"].get("extra"):
            write_json(ctx.path("c/extra.json"), {"x": 1})

    monkeypatch.setitem(J.STAGES, "t_extra", J.Stage("t_extra", maybe_extra, (), ("c/main.json",),
                                                     optional_outputs=("c/extra.json",)))
    monkeypatch.setitem(J.PIPELINES, "extra", ("t_extra",))
    J.run_job(tmp_path, inputs={"extra": True}, mode="extra")
    (tmp_path / "c/extra.json").write_text("garbage")
    J.run_job(tmp_path, mode="extra")
    assert calls == ["extra", "extra"] and json.loads((tmp_path / "c/extra.json").read_text()) == {"x": 1}
    J.run_job(tmp_path, inputs={"extra": False}, mode="extra", force=("t_extra",))
    assert not (tmp_path / "c/extra.json").exists()  # not written by the last run: not left as if it were
    J.run_job(tmp_path, mode="extra")
    assert calls == ["extra"] * 3


def test_missing_output_reruns_stage(toy, tmp_path):
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    (tmp_path / "a/source.json").unlink()
    J.run_job(tmp_path, mode="toy")
    # The source is made again; its content is identical, so its consumer is kept (inputs are hashed).
    assert calls == ["source", "scaled", "source"]


def test_until_and_unknown_stage(toy, tmp_path):
    J.run_job(tmp_path, inputs={"value": 1}, mode="toy", until="t_source")
    assert calls == ["source"]
    with pytest.raises(JobError) as e:
        J.run_job(tmp_path, mode="toy", until="nope")
    assert e.value.code == "job.bad_stage"
    with pytest.raises(JobError) as e:
        J.run_job(tmp_path, mode="toy", options={"t_scaled": {"factr": 3}})
    assert e.value.code == "job.bad_option" and "factor" in e.value.message


def test_cancel_leaves_consistent_folder_and_resumes(toy, tmp_path):
    token = CancelToken()

    def on_event(e):
        if e.kind == "progress" and e.fraction >= 0.5:
            token.cancel()

    with pytest.raises(Cancelled):
        J.run_job(tmp_path, inputs={"value": 3}, mode="toy", on_event=on_event, cancel=token)
    rec = json.loads((tmp_path / "job.json").read_text())
    assert rec["stages"]["t_source"]["status"] == "done"
    assert rec["stages"]["t_scaled"]["status"] == "cancelled"
    assert rec["stages"]["t_scaled"]["error"]["code"] == "cancelled"
    assert not list(tmp_path.rglob(".*tmp*"))  # no half-written files left behind
    rec = J.run_job(tmp_path, mode="toy")
    assert calls == ["source", "scaled", "scaled"] and rec["stages"]["t_scaled"]["status"] == "done"


def test_crash_is_typed_and_recorded(toy, tmp_path, monkeypatch):
    def boom(ctx):
        raise ZeroDivisionError("bad maths")

    monkeypatch.setitem(J.STAGES, "t_scaled", J.Stage("t_scaled", boom, ("a/source.json",), ("b",)))
    with pytest.raises(StageError) as e:
        J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    assert e.value.code == "stage.crashed" and "bad maths" in e.value.message
    rec = json.loads((tmp_path / "job.json").read_text())
    assert rec["stages"]["t_scaled"]["status"] == "failed"
    assert "ZeroDivisionError" in rec["stages"]["t_scaled"]["error"]["traceback"]


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    write_json(target, {"old": True})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"new": tr')
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


@pytest.mark.parametrize("content", [b"{not json", b"[]", b"null", b'"text"', b"{}"[:1],
                                     '{"format": 1, "inputs": {"photo": "caf\u00e9"}}'.encode("latin-1"),
                                     b'{"format": 1, "stages": []}'])
def test_corrupt_job_record_is_a_clear_error(tmp_path, content):
    (tmp_path / "job.json").write_bytes(content)
    with pytest.raises(JobError) as e:
        J.Job(tmp_path).load()
    assert e.value.code == "job.corrupt_record" and "job.json" in e.value.message


@pytest.mark.parametrize("where", ["", "/"])
def test_refuses_empty_and_root_job_folders(where):
    with pytest.raises(JobError) as e:
        J.run_job(where, inputs={"value": 1}, mode="instant")
    assert e.value.code == "job.bad_folder"


def test_refuses_a_file_as_job_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(JobError) as e:
        J.run_job(tmp_path / "notes.txt", inputs={"value": 1}, mode="instant")
    assert e.value.code == "job.not_a_folder" and (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_keeps_the_recorded_mode(toy, tmp_path):
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    events = []
    rec = J.run_job(tmp_path, on_event=events.append)  # no mode: the job's own
    assert rec["mode"] == "toy" and [e.kind for e in events] == ["stage_skipped", "stage_skipped", "job_done"]


@pytest.mark.parametrize("ready", [False, True])
def test_auto_mode_says_what_it_chose_and_why(tmp_path, monkeypatch, ready):
    from PIL import Image
    from skimage import data

    from headforge.backend.idts import readiness

    asked = []

    def fake_readiness(models_dir="", device="auto"):
        asked.append((models_dir, device))
        return (True, "CUDA GPU and the ID-TS weights") if ready else (False, "no CUDA GPU here")

    monkeypatch.setattr(readiness, "full_mode_readiness", fake_readiness)
    Image.fromarray(data.astronaut()).save(tmp_path / "a.png")
    events = []
    rec = J.run_job(tmp_path / "job", inputs={"photo": str(tmp_path / "a.png")}, until="input",
                    options={"multiview": {"device": "cuda:1"}}, on_event=events.append)
    info = [e for e in events if e.kind == "info"]
    assert asked == [("", "cuda:1")] and len(info) == 1
    if ready:
        assert rec["mode"] == "full" and "full" in info[0].message
    else:
        assert rec["mode"] == "instant" and "no CUDA GPU here" in info[0].message
        assert "hqhead-stage1" in info[0].message  # what to install for full mode
    # Resumed: the mode chosen is kept, not chosen again.
    J.run_job(tmp_path / "job", until="input")
    assert len(asked) == 1 and J.Job(tmp_path / "job").load()["mode"] == rec["mode"]


@dataclass
class RangedOptions:
    factor: int = field(default=2, metadata={"range": (1, 10)})
    label: str = field(default="a", metadata={"choices": ("a", "b")})
    weight: float = 1.0


@pytest.mark.parametrize("bad,code_word", [({"factor": 1000}, "between"), ({"factor": "x"}, "integer"),
                                           ({"factor": 2.5}, "integer"), ({"factor": True}, "integer"),
                                           ({"label": "c"}, "one of"), ({"label": 3}, "text"),
                                           ({"weight": "nan"}, "number"), ({"weight": float("inf")}, "finite"),
                                           ({"nope": 1}, "Unknown")])
def test_refused_option_is_never_saved(toy, tmp_path, monkeypatch, bad, code_word):
    monkeypatch.setitem(toy, "t_scaled", J.Stage("t_scaled", make_scaled, ("a/source.json",), ("b",), RangedOptions))
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    before = (tmp_path / "job.json").read_bytes()
    with pytest.raises(JobError) as e:
        J.run_job(tmp_path, mode="toy", options={"t_scaled": bad})
    assert e.value.code == "job.bad_option" and code_word in e.value.message
    assert (tmp_path / "job.json").read_bytes() == before  # nothing saved: the next run is unaffected
    J.run_job(tmp_path, mode="toy")
    assert calls == ["source", "scaled"]


def test_options_from_the_command_line_take_their_types_and_unset_drops_one(toy, tmp_path, monkeypatch):
    monkeypatch.setitem(toy, "t_scaled", J.Stage("t_scaled", make_scaled, ("a/source.json",), ("b",), RangedOptions))
    rec = J.run_job(tmp_path, inputs={"value": 3}, mode="toy",
                    options={"t_scaled": {"factor": "5", "label": "b", "weight": "2"}})
    assert rec["options"]["t_scaled"] == {"factor": 5, "label": "b", "weight": 2.0}
    assert rec["stages"]["t_scaled"]["metrics"] == {"sum": 66}
    rec = J.run_job(tmp_path, mode="toy", unset=("t_scaled.factor",))
    assert rec["options"]["t_scaled"] == {"label": "b", "weight": 2.0}
    assert rec["stages"]["t_scaled"]["metrics"] == {"sum": 30} and calls == ["source", "scaled", "scaled"]


def test_a_poisoned_saved_option_is_named_and_unset_repairs_it(toy, tmp_path):
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    J.Job(tmp_path).update(lambda r: r["options"].__setitem__("t_scaled", {"foo": 1, "factor": 3}))
    with pytest.raises(JobError) as e:
        J.run_job(tmp_path, mode="toy")
    assert e.value.code == "job.bad_option" and "--unset t_scaled.foo" in str(e.value)
    rec = J.run_job(tmp_path, mode="toy", unset=("t_scaled.foo",))
    assert rec["options"]["t_scaled"] == {"factor": 3} and rec["stages"]["t_scaled"]["metrics"] == {"sum": 42}


def test_real_rig_options_have_ranges(tmp_path):
    for bad in ({"texture_size": 10**9}, {"texture_size": "1e9"}, {"foo": 1}, {"identity_modes": 0},
                {"head_model": "flam"}):
        with pytest.raises(JobError) as e:
            J.check_options(J.STAGES["rig"], bad)
        assert e.value.code == "job.bad_option"
    assert J.check_options(J.STAGES["rig"], {"texture_size": "1024"}) == {"texture_size": 1024}


@pytest.mark.parametrize("err,code,words", [(28, "storage.full", "disk is full"),
                                            (13, "storage.denied", "cannot be written")])
def test_full_disk_or_unwritable_job_is_a_coded_error_and_loses_nothing(toy, tmp_path, monkeypatch, err, code,
                                                                         words):
    import errno
    import os

    from headforge.backend import fileio
    from headforge.backend.errors import StorageError

    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    before = (tmp_path / "job.json").read_bytes()

    def failing(fd):
        raise OSError(err, os.strerror(err))

    assert errno.ENOSPC == 28 and errno.EACCES == 13
    monkeypatch.setattr(fileio.os, "fsync", failing)
    with pytest.raises(StorageError) as e:
        J.run_job(tmp_path, mode="toy", options={"t_scaled": {"factor": 5}})
    assert e.value.code == code and words in e.value.message
    assert (tmp_path / "job.json").read_bytes() == before
    assert not list(tmp_path.rglob(".*tmp*"))


def test_stale_temporary_files_are_removed(toy, tmp_path):
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    stale = [tmp_path / "a/.source.tmp-999999.json", tmp_path / ".job.tmp-123.json", tmp_path / "b/.part0.tmp-7"]
    for p in stale:
        p.write_bytes(b"x" * 1000)
    (tmp_path / "b/.keep.json").write_text("{}")  # a hidden file that is no temporary: left alone
    J.run_job(tmp_path, mode="toy")
    assert not any(p.exists() for p in stale) and (tmp_path / "b/.keep.json").exists()


LOCK_HOLDER = """
import sys, time
from headforge.backend import job as J

def slow(ctx):
    print("running", flush=True)
    time.sleep(120)

J.pipeline("full")
J.STAGES["t_slow"] = J.Stage("t_slow", slow, (), ("slow.json",))
J.PIPELINES["slow"] = ("t_slow",)
J.run_job(sys.argv[1], inputs={"value": 1}, mode="slow")
"""


def test_one_run_at_a_time_and_a_killed_runs_lock_is_taken_over(toy, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "running"
        with pytest.raises(JobError) as e:
            J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
        assert e.value.code == "job.locked" and f"process {holder.pid}" in e.value.message
        assert calls == [] and json.loads((tmp_path / "job.json").read_text())["mode"] == "slow"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    rec = J.run_job(tmp_path, inputs={"value": 3}, mode="toy")  # the killed run's lock is stale: taken over
    assert calls == ["source", "scaled"] and rec["stages"]["t_scaled"]["status"] == "done"
    assert json.loads((tmp_path / J.LOCK_NAME).read_text())["pid"] == os.getpid()


def test_recording_versions_imports_nothing_heavy(tmp_path):
    """Each finished stage records dependency versions; reading them must not import torch (seconds of start-up
    in instant mode, which otherwise never needs it)."""
    import subprocess
    import sys
    from importlib import metadata

    code = ("import sys, json; from headforge.backend.job import _versions; v = _versions(); "
            "print(json.dumps([v, sorted(m for m in ('torch', 'diffusers', 'gsplat') if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    versions, imported = json.loads(out)
    assert imported == []
    assert versions["torch"] == metadata.version("torch") and versions["numpy"] == metadata.version("numpy")


def test_rig_fingerprint_covers_the_users_head_model_file(tmp_path):
    """Replacing the FLAME file at the same path re-runs the rig (its contents are hashed, not just its path)."""
    st, job = J.STAGES["rig"], J.Job(tmp_path / "job")
    flame = tmp_path / "flame.pkl"
    flame.write_bytes(b"version one")
    opts = {"head_model": "flame", "head_model_path": str(flame)}
    first = J._fingerprint(st, job, opts)
    assert J._fingerprint(st, job, opts) == first
    flame.write_bytes(b"version two")
    assert J._fingerprint(st, job, opts) != first
    assert J._fingerprint(st, job, {"head_model": "ict", "head_model_path": ""}) != first


def test_a_record_without_output_hashes_gains_them_on_resume(toy, tmp_path):
    """Jobs recorded before output hashes existed: resumed as they are, then protected like new ones."""
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    J.Job(tmp_path).update(lambda r: [s.pop("outputs") for s in r["stages"].values()])
    J.run_job(tmp_path, mode="toy")
    assert calls == ["source", "scaled"]
    (tmp_path / "a/source.json").write_text('{"value": 99}')
    J.run_job(tmp_path, mode="toy")
    assert calls == ["source", "scaled", "source"]
