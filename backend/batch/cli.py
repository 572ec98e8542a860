"""`headforge batch INPUT -o OUT [--mode] [--set] [--engine local|ray] [--workers N] [--address ADDR]
[--retries N]`: one ordinary job folder per photo under OUT, OUT/batch.json, OUT/report.html and report.csv.
An overall bar with rate and ETA for people; JSON lines of ProgressEvents with --json. Ctrl-C stops cleanly:
running jobs are cancelled at their next step and resume on the next run of the same command."""
from __future__ import annotations

import signal

from ..errors import EXIT_CANCELLED, EXIT_ERROR
from ..events import CancelToken
from .runner import run_batch


def add_parser(subparsers) -> None:
    b = subparsers.add_parser("batch", help="run many portraits: a folder of photos or a CSV manifest")
    b.add_argument("input", help="a folder of photos (searched recursively; images recognised by their header) or "
                   "a CSV manifest with columns photo,job_name[,face][,STAGE.OPTION...]")
    b.add_argument("-o", "--output", required=True, help="batch folder: one job folder per photo, batch.json, "
                   "report.html, report.csv")
    b.add_argument("--mode", default="auto", choices=["auto", "full", "instant"],
                   help="pipeline of every job (auto: full where it can run here, else instant)")
    b.add_argument("--set", action="append", default=[], metavar="STAGE.OPTION=VALUE",
                   help="stage option for every job (a manifest's own columns override it)")
    b.add_argument("--engine", default="local", choices=["local", "ray"],
                   help="local: a process pool on this machine; ray: Ray actors (pip install 'headforge[ray]')")
    b.add_argument("--workers", type=int, metavar="N", help="parallel jobs (default: one per GPU in full mode, "
                   "else the CPU cores bounded by memory; with Ray, the cluster's GPUs or CPUs)")
    b.add_argument("--address", metavar="ADDR", help="Ray cluster to join (e.g. ray://head:10001 or auto); "
                   "default: start a local Ray for this batch")
    b.add_argument("--retries", type=int, default=1, metavar="N",
                   help="attempts again after a failure that is not the photo's fault (default 1)")
    b.add_argument("--no-report", action="store_true", help="skip report.html / report.csv")


class BatchBar:
    """The batch's events for people: one bar (jobs done of total, jobs/min, ETA) and a line per failure."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self._p = self._task = None

    def __enter__(self):
        if not self.as_json:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(TextColumn("batch"), BarColumn(), MofNCompleteColumn(),
                               TextColumn("{task.fields[rate]}"), TextColumn("ETA {task.fields[eta]}"),
                               TimeElapsedColumn(), TextColumn("{task.fields[msg]}"))
            self._p.start()
        return self

    def __exit__(self, *exc):
        if self._p:
            self._p.stop()
            self._p = None

    def __call__(self, e) -> None:
        from rich.markup import escape

        if self.as_json:
            print(e.to_json(), flush=True)
            return
        p, d = self._p, e.data
        if e.kind == "batch_start":
            self._task = p.add_task("batch", total=d["total"], completed=d["skipped"], rate="", eta="?",
                                    msg=e.message)
            p.console.print(e.message + (f" on {d['workers']} {d['engine']} workers" if d["workers"] else ""),
                            markup=False, highlight=False)
        elif e.kind == "batch_job" and self._task is not None:
            rate = f"{d['rate_per_min']:.1f} jobs/min" if d.get("rate_per_min") else ""
            eta = _clock(d["eta_s"]) if d.get("eta_s") is not None else "?"
            p.update(self._task, completed=d["finished"], rate=rate, eta=eta, msg=e.message[:50])
            if d["status"] in ("failed", "retry", "requeued"):
                p.console.print(f"[red]{d['status']}[/] {escape(e.message)}", highlight=False)
        elif e.kind == "batch_job_start" and self._task is not None:
            p.update(self._task, msg=e.message[:50])
        elif e.kind in ("info", "batch_done"):
            p.console.print(e.message, markup=False, highlight=False)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def cmd_batch(args, report, options: dict) -> int:
    """`headforge batch`; `options`: the --set options as backend/cli.py parsed them."""
    report.close()  # the batch draws its own bar
    cancel = CancelToken()
    handlers = {sig: signal.signal(sig, lambda *a: cancel.cancel()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with BatchBar(args.json) as bar:
            summary = run_batch(args.input, args.output, mode=args.mode, options=options,
                                engine=args.engine, workers=args.workers, address=args.address,
                                retries=args.retries, on_event=bar, cancel=cancel, report=not args.no_report)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if not args.json and summary.get("report"):
        print(f"Report: {summary['report']}")
    if summary["cancelled"]:
        return EXIT_CANCELLED
    return EXIT_ERROR if summary["failed"] else 0
