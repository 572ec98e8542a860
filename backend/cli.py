"""`headforge` command line: run jobs, check the machine, render training/benchmark views.

`--json` turns every command's output into JSON lines of progress events on stdout (the subprocess transport
the Blender add-on's external-Python mode reads); errors then arrive as an event with kind "error".
The libraries' own log output (MediaPipe, TensorFlow Lite, absl) goes to JOB/libraries.log unless `--verbose`.
Module-level imports stay minimal: a Ctrl-C during start-up must land inside `main`'s handler.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from .errors import EXIT_BLOCKING, EXIT_CANCELLED, EXIT_ERROR, HeadForgeError
from .events import ProgressEvent

LIBRARY_LOG = "libraries.log"
# What MediaPipe / TensorFlow Lite / absl / glog read to keep quiet (they also write to fd 2 directly).
QUIET_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3", "ABSL_MIN_LOG_LEVEL": "2"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="headforge", description="One portrait photo → animatable 3D head.")
    p.add_argument("--json", action="store_true", help="emit progress events as JSON lines on stdout")
    p.add_argument("--verbose", action="store_true",
                   help="show the libraries' own log output and tracebacks (else kept in JOB/libraries.log)")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run (or resume) the pipeline on a photo (or several photos of one person)")
    r.add_argument("photo", nargs="*", help="portrait (JPEG/PNG/WebP/TIFF); several photos of one person (front, ¾, "
                   "profile; the first is the main one) are fused in instant mode; omitted on resume of a job")
    r.add_argument("-o", "--output", required=True, help="job folder")
    r.add_argument("--until", help="stop after this stage")
    r.add_argument("--mode", choices=["auto", "full", "instant", "views"],
                   help="auto (a new job's default): full where a CUDA GPU and the multi-view weights are present, "
                   "else instant; full: from the photo; instant: CPU head-model fit; views: from existing views/ "
                   "(render-views). A resumed job keeps its recorded mode unless this is given")
    r.add_argument("--set", action="append", default=[], metavar="STAGE.OPTION=VALUE",
                   help="stage option, e.g. --set face.detector=yunet (checked before it is saved in the job)")
    r.add_argument("--unset", action="append", default=[], metavar="STAGE.OPTION",
                   help="drop an option saved in the job (back to the default)")
    r.add_argument("--force", action="append", default=[], metavar="STAGE", help="re-run this stage")
    r.add_argument("--face", type=int, metavar="N", help="use face N of a photo with several (as numbered in "
                   "face/analysis.json and face/faces.png; default: the largest)")

    d = sub.add_parser("demo", help="run the job on the built-in astronaut portrait")
    d.add_argument("-o", "--output", default="demo-job", help="job folder")
    d.add_argument("--mode", default="auto", choices=["auto", "full", "instant"])

    sub.add_parser("doctor", help="check Python, torch, CUDA, gsplat, bpy, model and job folders")
    from .models import cli as models_cli  # here, not at import: see the module's docstring

    models_cli.add_parser(sub)
    from .batch import cli as batch_cli

    batch_cli.add_parser(sub)
    from .animate import cli as animate_cli

    animate_cli.add_parser(sub)
    from .dataset import cli as dataset_cli

    dataset_cli.add_parser(sub)
    from .evaluate import cli as evaluate_cli

    evaluate_cli.add_parser(sub)
    from .train import cli as train_cli

    train_cli.add_parser(sub)
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
    """--set STAGE.OPTION=VALUE → {stage: {option: "VALUE"}}; the job reads each value as its option's type."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        stage, dot, opt = key.partition(".")
        if not sep or not dot or not stage or not opt:
            raise HeadForgeError(f"--set {item!r}: expected STAGE.OPTION=VALUE.", code="cli.bad_option")
        out.setdefault(stage, {})[opt] = raw
    return out


class Reporter:
    """Prints events: JSON lines, or a rich progress bar for people."""

    def __init__(self, as_json: bool, verbose: bool = False):
        self.as_json, self.verbose = as_json, verbose
        self._progress = self._task = None
        self.err = sys.stderr  # the terminal's stderr, kept when the libraries' fd 2 goes to a log

    def print(self, text: str) -> None:
        """A line for people (nothing in JSON mode): above the live bars when they run."""
        if self.as_json:
            return
        if self._progress:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)

    def __enter__(self):
        if not self.as_json:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description:<10}"), BarColumn(),
                                      TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                                      TextColumn("{task.fields[msg]}"), transient=False,
                                      redirect_stderr=self.verbose)  # else Python's stderr joins the log
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
        if e.kind == "info":
            pr.console.print(e.message, markup=False, highlight=False)
        if e.kind == "job_done":
            pr.console.print(f"[green]done[/] {e.message}")

    def error(self, err: HeadForgeError) -> None:
        if self.as_json:
            print(ProgressEvent("error", "", message=err.message, data=err.to_dict()).to_json(), flush=True)
        else:
            print(f"error [{err.code}]: {err}", file=self.err, flush=True)


def cmd_run(args, report: Reporter) -> int:
    from .job import Job, run_job
    from .stages import STAGES

    job = Job(args.output)  # "", "/", a file: refused before anything is made
    job.load()
    given = [args.photo] if isinstance(args.photo, str) else list(args.photo or [])
    photos = [os.path.abspath(os.path.expanduser(p)) for p in given]
    inputs = {"photo": photos[0], "photos": photos} if photos else None  # job.json records every photo
    if inputs is None and args.mode != "views" and not job.record_path.exists():
        raise HeadForgeError("Give a photo: `headforge run PHOTO -o JOBDIR`.", code="cli.no_photo")
    options = parse_sets(args.set)
    if getattr(args, "face", None) is not None:
        options.setdefault("face", {})["face"] = args.face
    from .events import CancelToken

    cancel = CancelToken()
    handlers = {sig: signal.signal(sig, lambda *a: cancel.cancel()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _library_log(job.root, args.verbose, report):
            run_job(job.root, inputs=inputs, options=options, unset=tuple(args.unset), mode=args.mode,
                    until=args.until, force=tuple(args.force), on_event=report, cancel=cancel, stages=STAGES)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return 0


class _library_log:
    """Native libraries (MediaPipe's graph threads, TensorFlow Lite) write to fd 2 at any time: while a job runs,
    fd 2 goes to a temporary file, appended to JOB/libraries.log at the end, and the reporter keeps the
    terminal's stderr. `--verbose`: unchanged."""

    def __init__(self, root: Path, verbose: bool, report: Reporter):
        self.root, self.verbose, self.report = root, verbose, report
        self._saved: int | None = None
        self._log = None

    def __enter__(self):
        if self.verbose:
            return self
        import tempfile

        self._log = tempfile.TemporaryFile()
        sys.stderr.flush()
        self._saved = os.dup(2)
        self.report.err = open(os.dup(self._saved), "w", buffering=1, closefd=True)
        os.dup2(self._log.fileno(), 2)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._saved = None
        with self._log as log:
            log.seek(0)
            text = log.read()
            if text and self.root.is_dir():
                try:
                    with open(self.root / LIBRARY_LOG, "ab") as f:
                        f.write(text)
                except OSError:
                    pass  # the log is a courtesy: a full disk must not hide the run's own result


def cmd_demo(args, report: Reporter) -> int:
    from .demo import demo_photo
    from .job import choose_mode, pipeline

    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    mode = args.mode
    if mode == "auto":
        mode, why = choose_mode()
        report.print(why)
    photo = demo_photo(out)
    report.print(f"Demo: {photo.name} (public domain, NASA, from scikit-image), mode {mode!r}: "
                 f"stages {' → '.join(pipeline(mode))}")
    args.photo, args.until, args.mode, args.set, args.unset, args.force = str(photo), None, mode, [], [], []
    code = cmd_run(args, report)
    report.close()
    report.print(f"Result: {out} (job.json lists every stage, its outputs, timings and notes)")
    return code


def cmd_stages(args, report: Reporter) -> int:
    import dataclasses

    from .job import pipeline
    from .stages import PIPELINES, STAGES

    if args.json:
        listing = {mode: [{"stage": n, "options": STAGES[n].default_options()} for n in pipeline(mode)]
                   for mode in PIPELINES}
        print(json.dumps(listing))
        return 0
    lines = [f"{mode:<8} {' → '.join(pipeline(mode))}" for mode in PIPELINES]
    lines += ["", "Options (--set STAGE.OPTION=VALUE; default, then the allowed values):"]
    for name in dict.fromkeys(n for mode in PIPELINES for n in pipeline(mode)):
        st = STAGES[name]
        fields = dataclasses.fields(st.options) if st.options else ()
        lines.append(f"{name}:" + ("" if fields else " no options"))
        for f in fields:
            meta = f.metadata
            allowed = (f"  {meta['range'][0]}..{meta['range'][1]}" if "range" in meta else
                       f"  one of {', '.join(map(str, meta['choices']))}" if "choices" in meta else "")
            lines.append(f"  {name}.{f.name} = {json.dumps(st.default_options()[f.name])}{allowed}")
    print("\n".join(lines))
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
    import subprocess

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


def cmd_models(args, report: Reporter) -> int:
    from .models import cli as models_cli

    return models_cli.cmd_models(args, report)


def cmd_batch(args, report: Reporter) -> int:
    from .batch import cli as batch_cli

    return batch_cli.cmd_batch(args, report, parse_sets(args.set))


def cmd_animate(args, report: Reporter) -> int:
    from .animate import cli as animate_cli

    return animate_cli.cmd_animate(args, report)


def cmd_dataset(args, report: Reporter) -> int:
    from .dataset import cli as dataset_cli

    return dataset_cli.cmd_dataset(args, report)


def cmd_evaluate(args, report: Reporter) -> int:
    from .evaluate import cli as evaluate_cli

    return evaluate_cli.cmd_evaluate(args, report)


def cmd_train(args, report: Reporter) -> int:
    from .train import cli as train_cli

    return train_cli.cmd_train(args, report)


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "doctor": cmd_doctor, "stages": cmd_stages,
            "render-views": cmd_render_views, "models": cmd_models,
            "batch": cmd_batch, "animate": cmd_animate,
            "dataset": cmd_dataset, "train": cmd_train, "evaluate": cmd_evaluate}


def _interrupted(err: BaseException) -> bool:
    """Whether a KeyboardInterrupt lies in the chain of causes of `err` (an extension module whose import was
    interrupted reports it as its own error: pybind11's `ImportError: initialization failed`)."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if not args.verbose:
            for key, value in QUIET_ENV.items():
                os.environ.setdefault(key, value)
        report = Reporter(args.json, args.verbose)
        try:
            with report:
                return COMMANDS[args.command](args, report)
        except HeadForgeError as err:
            report.close()
            report.error(err)
            return EXIT_CANCELLED if err.code == "cancelled" else EXIT_ERROR
        except KeyboardInterrupt:
            raise
        except BrokenPipeError:  # the reader (`| head`) went away: nothing more to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_ERROR
        except Exception as e:  # noqa: BLE001  (a bug: one coded line; the traceback with --verbose)
            report.close()
            if _interrupted(e):  # Ctrl-C inside an extension's import, which wraps it (pybind11: ImportError)
                raise KeyboardInterrupt from e
            if args.verbose:
                import traceback

                traceback.print_exc()
            report.error(HeadForgeError(f"HeadForge crashed: {type(e).__name__}: {e}", code="internal.crash",
                            hint="run again with --verbose for the traceback, and please report it"))
            return EXIT_ERROR
    except KeyboardInterrupt:  # Ctrl-C before the run's own handler is in place (imports, start-up)
        print("error [cancelled]: interrupted before the job started; nothing was changed.", file=sys.stderr)
        return EXIT_CANCELLED


if __name__ == "__main__":
    sys.exit(main())
