"""The job framework: resume, re-run on changed inputs or options, cancel, progress, typed errors."""
import json
from dataclasses import dataclass

import pytest

import headforge.backend.stages  # noqa: F401  (registers the real stages before any test swaps the registry)
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


def test_changed_input_file_reruns_downstream(toy, tmp_path):
    J.run_job(tmp_path, inputs={"value": 3}, mode="toy")
    write_json(tmp_path / "a/source.json", {"value": 10})  # edited by hand: the consumer must notice
    rec = J.run_job(tmp_path, mode="toy")
    assert calls == ["source", "scaled", "scaled"]
    assert rec["stages"]["t_scaled"]["metrics"] == {"sum": 86}


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


def test_corrupt_job_record_is_a_clear_error(tmp_path):
    (tmp_path / "job.json").write_text("{not json")
    with pytest.raises(JobError) as e:
        J.Job(tmp_path).load()
    assert e.value.code == "job.corrupt_record"


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
