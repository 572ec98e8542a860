"""`headforge dataset build SOURCE -o DATASET [--size] [--ict N] [--workers N] [--seed]` and
`headforge dataset check DATASET`: see build.py and layout.py. Ctrl-C stops the build cleanly (the next run
continues it); `check` exits 1 when it finds an error (each printed with its code and file)."""
from __future__ import annotations

import signal
from pathlib import Path

from ..errors import EXIT_ERROR
from ..events import CancelToken, ProgressEvent


def add_parser(subparsers) -> None:
    d = subparsers.add_parser("dataset", help="research: build or check a 96-view head dataset")
    sub = d.add_subparsers(dest="dataset_command", required=True)
    b = sub.add_parser("build", help="render the 96-view orbit of head meshes and built-in ICT-FaceKit heads")
    b.add_argument("source", nargs="?", help="folder of textured head meshes (.glb/.gltf/.obj/.fbx, searched "
                   "recursively; a sidecar NAME.json may give identity, source, licence)")
    b.add_argument("-o", "--output", required=True, help="dataset folder (manifest.json, <id>/views, <id>/meta.json)")
    b.add_argument("--size", type=int, default=512, help="view size in pixels (default 512)")
    b.add_argument("--ict", type=int, default=0, metavar="N", help="add N ICT-FaceKit heads (sampled identity, "
                   "ARKit expression, skin tone, hair, eyes)")
    b.add_argument("--expressions-per-identity", type=int, default=1, metavar="K",
                   help="ICT heads per sampled identity (different expressions; default 1)")
    b.add_argument("--workers", type=int, default=1, metavar="N", help="Blender processes rendering in parallel")
    b.add_argument("--seed", type=int, default=0, help="seed of the ICT heads and of the identity splits")
    b.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel (default 32)")
    b.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    b.add_argument("--texture-size", type=int, default=1024, help="ICT heads' texture tile size")
    b.add_argument("--identity", default="auto", choices=["auto", "arcface", "dlib"],
                   help="identity embedding of the frontal view (auto: ArcFace when installed, else dlib)")
    b.add_argument("--models-root", help="folder with the face detectors / insightface packs")
    c = sub.add_parser("check", help="validate a dataset folder against the layout")
    c.add_argument("dataset")
    c.add_argument("--no-images", action="store_true", help="check files are there without decoding them")


def cmd_dataset(args, report) -> int:
    from . import layout

    if args.dataset_command == "check":
        report(ProgressEvent("stage_start", "check", message=f"checking {args.dataset}"))
        problems = layout.check_dataset(Path(args.dataset), images=not args.no_images,
                                        progress=lambda f, m: report(ProgressEvent("progress", "check", f, f, m)))
        errors = [p for p in problems if p.severity == "error"]
        report(ProgressEvent("stage_done", "check", 1.0, 1.0, f"{len(errors)} error(s), "
                             f"{len(problems) - len(errors)} warning(s)",
                             data={"problems": [p.to_dict() for p in problems]}))
        report.close()
        for p in problems:
            report.print(str(p))
        report.print(f"{args.dataset}: " + ("valid" if not errors else f"{len(errors)} error(s)"))
        return EXIT_ERROR if errors else 0
    from .build import BuildOptions, build_dataset

    opts = BuildOptions(size=args.size, ict=args.ict, expressions_per_identity=args.expressions_per_identity,
                        workers=args.workers, seed=args.seed, samples=args.samples, device=args.device,
                        texture_size=args.texture_size, identity=args.identity, models_root=args.models_root)
    cancel = CancelToken()
    handlers = {sig: signal.signal(sig, lambda *a: cancel.cancel()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        report(ProgressEvent("stage_start", "dataset", message="building"))
        summary = build_dataset(Path(args.source) if args.source else None, Path(args.output), opts, report, cancel)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    report(ProgressEvent("stage_done", "dataset", 1.0, 1.0, "built", data=summary))
    report(ProgressEvent("job_done", "dataset", 1.0, 1.0,
                         f"{summary['sequences']} sequences ({summary['rendered']} rendered, {summary['skipped']} "
                         f"kept, {len(summary['failed'])} failed) in {summary['seconds']} s → {args.output}",
                         data=summary))
    return EXIT_ERROR if summary["failed"] else 0
