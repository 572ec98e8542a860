"""`headforge` command line: run jobs, check the machine, render training/benchmark views.

`--json` turns every command's output into JSON lines of progress events on stdout (the subprocess transport
the Blender add-on's external-Python mode reads); errors then arrive as an event with kind "error".
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

from .errors import HeadForgeError
from .events import CancelToken, ProgressEvent
from .models import cli as models_cli

EXIT_ERROR, EXIT_CANCELLED, EXIT_BLOCKING = 1, 130, 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="headforge", description="One portrait photo → animatable 3D head.")
    p.add_argument("--json", action="store_true", help="emit progress events as JSON lines on stdout")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run (or resume) the pipeline on a photo")
    r.add_argument("photo", nargs="?", help="portrait (JPEG/PNG/WebP/TIFF); omitted on resume of an existing job")
    r.add_argument("-o", "--output", required=True, help="job folder")
    r.add_argument("--until", help="stop after this stage")
    r.add_argument("--mode", default="full", choices=["full", "instant", "views"],
                   help="full: from the photo; instant: CPU head-model fit; views: from existing views/ (render-views)")
    r.add_argument("--set", action="append", default=[], metavar="STAGE.OPTION=VALUE",
                   help="stage option, e.g. --set face.detector=yunet (JSON values accepted)")
    r.add_argument("--force", action="append", default=[], metavar="STAGE", help="re-run this stage")
    r.add_argument("--face", type=int, metavar="N", help="use face N of a photo with several (as numbered in "
                   "face/analysis.json and face/faces.png; default: the largest)")

    d = sub.add_parser("demo", help="run the job on the built-in astronaut portrait")
    d.add_argument("-o", "--output", default="demo-job", help="job folder")
    d.add_argument("--mode", default="auto", choices=["auto", "full", "instant"])

    sub.add_parser("doctor", help="check Python, torch, CUDA, gsplat, bpy, model and job folders")
    models_cli.add_parser(sub)
    sub.add_parser("stages", help="list the stages of each mode and their options")

    v = sub.add_parser("render-views", help="render a head asset from the 96-view rig with Blender (Cycles)")
    v.add_argument("asset", help=".glb/.gltf/.obj/.blend")
    v.add_argument("-o", "--output", required=True, help="output folder (views/ layout)")
    v.add_argument("--size", type=int, default=256)
    v.add_argument("--rings", default="all", help="'all' or comma-separated ring numbers 0..5")
    v.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    v.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    return p


def parse_sets(items: list[str]) -> dict:
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        stage, dot, opt = key.partition(".")
        if not sep or not dot:
            raise HeadForgeError(f"--set {item!r}: expected STAGE.OPTION=VALUE.", code="cli.bad_option")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(stage, {})[opt] = value
    return out


class Reporter:
    """Prints events: JSON lines, or a rich progress bar for people."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        self._progress = self._task = None

    def __enter__(self):
        if not self.as_json:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description:<10}"), BarColumn(),
                                      TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                      TextColumn("{task.fields[msg]}"), transient=False)
            self._progress.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Stop the live bars so that what is printed next comes after them."""
        if self._progress:
            self._progress.stop()
            self._progress = None

    def __call__(self, e: ProgressEvent) -> None:
        if self.as_json:
            print(e.to_json(), flush=True)
            return
        pr = self._progress
        if e.kind in ("stage_start", "stage_skipped"):
            self._task = pr.add_task(e.stage, total=1.0, msg=e.message)
        if self._task is not None and e.kind in ("progress", "stage_done", "stage_skipped"):
            pr.update(self._task, completed=e.fraction, msg=e.message[:70])
        if e.kind == "warning":
            pr.console.print(f"[yellow]warning[/] {e.stage}: {e.message}")
        if e.kind == "job_done":
            pr.console.print(f"[green]done[/] {e.message}")

    def error(self, err: HeadForgeError) -> None:
        if self.as_json:
            print(ProgressEvent("error", "", message=err.message, data=err.to_dict()).to_json(), flush=True)
        else:
            print(f"error [{err.code}]: {err}", file=sys.stderr)


def cmd_run(args, report: Reporter) -> int:
    from .job import run_job

    inputs = {"photo": str(Path(args.photo).resolve())} if args.photo else None
    if inputs is None and args.mode != "views" and not (Path(args.output) / "job.json").exists():
        raise HeadForgeError("Give a photo: `headforge run PHOTO -o JOBDIR`.", code="cli.no_photo")
    cancel = CancelToken()
    signal.signal(signal.SIGINT, lambda *a: cancel.cancel())
    signal.signal(signal.SIGTERM, lambda *a: cancel.cancel())
    options = parse_sets(args.set)
    if getattr(args, "face", None) is not None:
        options.setdefault("face", {})["face"] = args.face
    run_job(args.output, inputs=inputs, options=options, mode=args.mode, until=args.until,
            force=tuple(args.force), on_event=report, cancel=cancel)
    return 0


def cmd_demo(args, report: Reporter) -> int:
    from .demo import choose_mode, demo_photo
    from .job import pipeline

    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    mode = choose_mode() if args.mode == "auto" else args.mode
    photo = demo_photo(out)
    if not args.json:
        print(f"Demo: {photo.name} (public domain, NASA, from scikit-image), mode {mode!r}: "
              f"stages {' → '.join(pipeline(mode))}")
    args.photo, args.until, args.mode, args.set, args.force = str(photo), None, mode, [], []
    code = cmd_run(args, report)
    report.close()
    if not args.json:
        print(f"Result: {out} (job.json lists every stage, its outputs, timings and notes)")
    return code


def cmd_stages(args, report: Reporter) -> int:
    from .job import PIPELINES, STAGES, pipeline

    listing = {mode: [{"stage": n, "options": STAGES[n].default_options()} for n in pipeline(mode)]
               for mode in PIPELINES}
    print(json.dumps(listing, indent=None if args.json else 1))
    return 0


def cmd_doctor(args, report: Reporter) -> int:
    from .doctor import diagnose, format_report

    checks = diagnose()
    if args.json:
        for c in checks:
            print(json.dumps(c), flush=True)
    else:
        print(format_report(checks))
    return EXIT_BLOCKING if any(c["status"] == "error" and c.get("blocking") for c in checks) else 0


def cmd_render_views(args, report: Reporter) -> int:
    """Runs Blender's renderer in a child process: bpy never enters the backend's own process."""
    import importlib.util

    if importlib.util.find_spec("bpy") is None:
        raise HeadForgeError("render-views needs Blender as a Python module: pip install bpy==5.0.1 "
                             "(or run inside Blender).", code="dependency.missing")
    cmd = [sys.executable, "-m", f"{__package__.rsplit('.', 1)[0]}.addon.render_views", args.asset,
           "-o", args.output, "--size", str(args.size), "--rings", args.rings, "--samples", str(args.samples),
           "--device", args.device, "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            try:
                event = ProgressEvent.from_json(line)
            except (json.JSONDecodeError, TypeError):
                continue  # Blender's own chatter
            if event.kind == "error":
                proc.wait()
                raise HeadForgeError(event.message, code=event.data.get("code", "render.failed"))
            report(event)
    except KeyboardInterrupt:
        proc.terminate()
        raise
    return proc.wait()


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "doctor": cmd_doctor, "stages": cmd_stages, "render-views": cmd_render_views,
            "models": models_cli.cmd_models}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with Reporter(args.json) as report:
        try:
            return COMMANDS[args.command](args, report)
        except HeadForgeError as err:
            report.error(err)
            return EXIT_CANCELLED if err.code == "cancelled" else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
