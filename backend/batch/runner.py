"""Drive a batch: find its jobs, skip the finished ones, run the rest on an engine, retry what may succeed on
another attempt, put a lost worker's job back in the queue, stop cleanly on cancel; OUT/batch.json after every
change.

Events (ProgressEvent, stage "batch"): "batch_start" {total, queued, skipped, engine, workers}, "batch_job_start"
{name, pid, attempt}, "batch_job" {name, status, code, seconds, finished, total, rate_per_min, eta_s} after each
result (status "done", "failed", "retry", "requeued" or "cancelled"), "batch_done" {the summary}.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import HeadForgeError
from ..events import CancelToken, ProgressEvent
from . import engines
from .inputs import discover
from .state import DONE, FAILED, PENDING, RUNNING, BatchState, now, retryable, signature

MAX_LOST = 3  # a job whose worker dies this often in one run is failed: the photo may be what kills it
POLL_S = 0.2


def job_options(common: dict, own: dict) -> dict:
    """The batch's --set options with a manifest row's own on top."""
    out = {stage: dict(opts) for stage, opts in common.items()}
    for stage, opts in own.items():
        out.setdefault(stage, {}).update(opts)
    return out


def run_batch(source, out, *, mode: str | None = "auto", options: dict | None = None, engine: str = "local",
              workers: int | None = None, address: str | None = None, retries: int = 1, on_event=None,
              cancel: CancelToken | None = None, report: bool = True) -> dict:
    """Run (or resume) the batch of `source` (folder or CSV) into `out`; returns the summary
    {total, done, failed, pending, skipped, ran, cancelled, seconds, engine, workers}."""
    from ..job import choose_mode, merge_options, pipeline

    emit = on_event or (lambda e: None)
    cancel = cancel or CancelToken()
    if engine not in ("local", "ray"):
        raise HeadForgeError(f"Unknown engine {engine!r}; choose local or ray.", code="batch.bad_engine")
    if retries < 0:
        raise HeadForgeError("--retries must be 0 or more.", code="batch.bad_option")
    if workers is not None and workers < 1:
        raise HeadForgeError("--workers must be 1 or more.", code="batch.bad_option")
    t0 = time.perf_counter()
    found = discover(source)
    state = BatchState.open(out)
    options = options or {}
    pipeline("full")  # registers every stage, whose options are checked next
    merge_options({}, options)  # the batch's own --set: a bad one stops everything before anything is made
    state.out.mkdir(parents=True, exist_ok=True)
    if mode in (None, "auto"):
        mode, why = choose_mode(options)
        emit(ProgressEvent("info", "batch", message=why, data={"mode": mode}))
    pipeline(mode)  # checks the mode
    state.record.update(input=str(Path(source).expanduser().resolve()), mode=mode, options=options,
                        ignored=found.ignored)
    queue, skipped = [], 0
    for item in found.items:
        opts = job_options(options, item.options)
        sig = signature(item.photo, mode, opts)
        job = state.jobs.setdefault(item.name, {"status": PENDING, "attempts": 0})
        if job.get("signature") != sig:  # a new job, or its photo, mode or options changed
            job["status"] = PENDING
        job.update(photo=item.photo, options=opts, signature=sig, row=item.row)
        try:
            merge_options({}, opts)
        except HeadForgeError as e:  # a manifest row's own bad option: that job only
            job.update(status=FAILED, error=e.to_dict(), finished=now())
            skipped += 1
            continue
        if state.job_finished(item.name) and job.get("signature") == sig:
            skipped += 1
            continue
        if job["status"] == FAILED and not retryable((job.get("error") or {}).get("code", "")):
            skipped += 1  # the photo's fault, and the photo and options are unchanged
            continue
        job["status"] = PENDING
        queue.append(item.name)
    listed = {it.name for it in found.items}
    state.record["order"] = [it.name for it in found.items]
    total = len(listed)
    runner = None
    summary = {"total": total, "skipped": skipped, "ran": 0, "engine": engine, "workers": 0, "cancelled": False}
    run_rec = {"started": now(), "engine": engine, "queued": len(queue)}
    state.record["runs"].append(run_rec)
    state.save()
    try:
        if queue:
            if engine == "local":
                log_dir = state.out / "logs"
                log_dir.mkdir(exist_ok=True)
                runner = engines.LocalEngine(engines.local_workers(mode, len(queue), workers), mode, log_dir)
            else:
                runner = engines.RayEngine(workers, mode, address, jobs=len(queue))
            summary["workers"] = runner.n
        emit(ProgressEvent("batch_start", "batch", 0.0, _fraction(state, listed),
                           f"{total} jobs: {len(queue)} to run, {skipped} already finished or refused",
                           data={"total": total, "queued": len(queue), "skipped": skipped, "engine": engine,
                                 "workers": summary["workers"], "out": str(state.out)}))
        if runner is not None:
            summary["ran"] = _drive(state, runner, queue, mode, retries, emit, cancel, listed, t0)
    finally:
        if runner is not None:
            runner.close()
    counts = {s: sum(state.jobs[n]["status"] == s for n in listed) for s in (DONE, FAILED, PENDING)}
    summary.update(counts, cancelled=cancel.cancelled, seconds=round(time.perf_counter() - t0, 3))
    run_rec.update(finished=now(), **{k: summary[k] for k in ("ran", "workers", "cancelled", "seconds")})
    state.save()
    if report:
        from .report import write_report

        summary["report"] = str(write_report(state.out))
    emit(ProgressEvent("batch_done", "batch", 1.0, _fraction(state, listed),
                       _summary_line(summary), data=summary))
    return summary


def _summary_line(s: dict) -> str:
    head = "Stopped" if s["cancelled"] else "Batch finished"
    return (f"{head}: {s['done']} of {s['total']} jobs finished, {s['failed']} failed, {s['pending']} left "
            f"({s['ran']} run now in {s['seconds']:.0f} s" + (f", {s['workers']} workers" if s["workers"] else "")
            + ")" + ("; run the same command to resume" if s["pending"] else ""))


def _fraction(state: BatchState, listed: set) -> float:
    return sum(state.jobs[n]["status"] in (DONE, FAILED) for n in listed) / max(1, len(listed))


class _Run:
    """The bookkeeping of one run of the driver loop."""

    def __init__(self, state, queue, retries, emit, listed):
        self.state, self.queue, self.retries, self.emit, self.listed = state, queue, retries, emit, listed
        self.attempts = {n: 0 for n in queue}
        self.lost = {n: 0 for n in queue}
        self.submitted: dict[str, float] = {}
        self.ran = 0
        self.t0 = time.perf_counter()


def _drive(state, runner, queue, mode, retries, emit, cancel, listed, t0) -> int:
    run = _Run(state, queue, retries, emit, listed)
    stopping = False
    while (queue and not stopping) or runner.busy():
        if cancel.cancelled and not stopping:
            stopping = True
            queue.clear()
            for r in runner.cancel():
                _handle(run, r)
        while queue and runner.free() and not stopping:
            name = queue.pop(0)
            job = state.jobs[name]
            task = {"name": name, "job_dir": str(state.out / name), "inputs": {"photo": job["photo"]},
                    "options": job["options"], "mode": mode}
            pid = runner.submit(task)
            run.submitted[name] = time.perf_counter()
            job.update(status=RUNNING, started=now(), worker_pid=pid)
            job["attempts"] = job.get("attempts", 0) + 1
            state.save()
            emit(ProgressEvent("batch_job_start", "batch", 0.0, _fraction(state, listed), f"{name}: started",
                               data={"name": name, "pid": pid, "attempt": run.attempts[name] + 1}))
        for r in runner.poll(POLL_S):
            _handle(run, r)
    return run.ran


def _handle(run: _Run, r: dict) -> None:
    state, name = run.state, r["name"]
    job = state.jobs[name]
    wall = time.perf_counter() - run.submitted.pop(name, time.perf_counter())
    err = r.get("error") or {}
    code = err.get("code", "")
    job["last_run"] = {"wall_s": round(wall, 3), "job_s": r.get("seconds"), "cpu_s": r.get("cpu_s"),
                       "warm": r.get("warm"),
                       "pid": r.get("pid"), "stage_seconds": r.get("stage_seconds", {})}
    status = r["status"]
    if status == "done":
        job.update(status=DONE, error=None, finished=now(), seconds=r["seconds"], stages=r["stages"],
                   warnings=r["warnings"])
    elif status == "cancelled":
        job["status"] = PENDING
    elif status == "lost":  # the worker died: the job goes back to the queue, first in line
        run.lost[name] += 1
        job["error"] = err
        if run.lost[name] < MAX_LOST:
            job["status"] = PENDING
            run.queue.insert(0, name)
            status = "requeued"
        else:
            job.update(status=FAILED, finished=now())
            status = "failed"
    else:
        run.attempts[name] += 1
        job.update(error=err, warnings=r.get("warnings", []), seconds=r.get("seconds"))
        if retryable(code) and run.attempts[name] <= run.retries:
            job["status"] = PENDING
            run.queue.append(name)
            status = "retry"
        else:
            job.update(status=FAILED, finished=now())
    state.save()
    if status in ("done", "failed"):
        run.ran += 1
    finished = sum(state.jobs[n]["status"] in (DONE, FAILED) for n in run.listed)
    remaining = len(run.listed) - finished
    rate = 60.0 * run.ran / max(time.perf_counter() - run.t0, 1e-6) if run.ran else None
    msg = f"{name}: {status}" + (f" [{code}] {err.get('message', '')}" if code and status != "done" else "")
    run.emit(ProgressEvent("batch_job", "batch", 1.0, finished / max(1, len(run.listed)), msg[:300], data={
        "name": name, "status": status, "code": code or None, "seconds": r.get("seconds"), "wall_s": round(wall, 3),
        "finished": finished, "total": len(run.listed), "rate_per_min": round(rate, 2) if rate else None,
        "eta_s": round(remaining * 60.0 / rate, 1) if rate else None, "warm": r.get("warm")}))
