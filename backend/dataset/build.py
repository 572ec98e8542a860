"""`headforge dataset build SOURCE -o DATASET`: the 96-view dataset (layout.py) of a folder of textured head meshes
and of built-in ICT-FaceKit heads (ict_heads.py).

Each sequence is rendered (a built-in head first written as a textured .glb by the same worker) from the rig's 96
cameras by Blender (addon/render_views.render_sequence, Cycles, RGBA),
in `workers` child processes (`python -m headforge.addon.render_views --batch`: bpy never enters this process);
meta.json (identity embedding of the frontal view, expression, source and licence) and landmarks.json (landmarks.py:
the expression points of the views where a face is found, for the expression loss) are written as each sequence
finishes, the manifest with its identity splits at the end. Resumable: a finished sequence (cameras.json and meta.json
there, built with the same settings) is skipped, a half-rendered one continues from its last written view; a
sequence built with other settings (size, samples, a changed asset) starts over.
"""
from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import cameras
from ..errors import Cancelled, HeadForgeError, InputImageError, JobError
from ..events import CancelToken, ProgressEvent
from ..fileio import sha256_file, write_json
from ..headmodel import load_ict
from ..headmodel.frames import WORLD_TO_GLTF
from ..headmodel.ict import default_ict_path
from . import layout
from .ict_heads import head_fingerprint, head_vertices, sample_heads
from .identity import frontal_embedding, model_kps5
from .landmarks import FILE as LANDMARKS_FILE
from .landmarks import write_landmarks

MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".fbx")
BUILD_RECORD = ".build.json"  # per sequence: the settings its files were made with
_LICENCE_FILE = re.compile(r"licen[cs]e", re.I)
_LICENSED_UNDER = re.compile(r"licen[cs]ed under (?:an? |the )?(.+?licen[cs]e)", re.I)


@dataclass
class BuildOptions:
    size: int = 512
    ict: int = 0  # built-in ICT-FaceKit heads
    expressions_per_identity: int = 1
    workers: int = 1
    seed: int = 0
    samples: int = 32  # Cycles samples per pixel
    device: str = "auto"  # auto | cpu | gpu
    texture_size: int = 1024  # ICT heads' texture tile
    detector: str = "auto"  # face detector for the identity embedding
    identity: str = "auto"  # auto | arcface | dlib
    models_root: str | None = None


@dataclass
class Sequence:
    id: str
    kind: str  # ict | mesh
    identity: str
    source: str
    licence: str
    asset: Path | None = None  # mesh file rendered (ICT: written by the builder)
    meta: dict = field(default_factory=dict)  # kind-specific meta.json fields
    ict_head: object | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "head"


def find_licence(asset: Path) -> tuple[str, str | None]:
    """(licence, file it was read from) for a mesh: a sidecar NAME.json's "licence", else a *licen[cs]e* text file
    beside it (the "licensed under ... License" phrase, else its first line), else "unknown"."""
    side = asset.with_suffix(".json")
    if side.is_file():
        try:
            lic = json.loads(side.read_text()).get("licence")
        except ValueError:
            lic = None
        if lic:
            return str(lic), str(side.absolute())
    for f in sorted(asset.parent.iterdir()):
        if f.is_file() and _LICENCE_FILE.search(f.name) and f.suffix.lower() in (".txt", ".md", ""):
            text = " ".join(f.read_text(errors="replace").split())
            m = _LICENSED_UNDER.search(text)
            return (m.group(1) if m else text[:200]), str(f.absolute())
    return "unknown", None


def mesh_sequences(source: Path) -> list[Sequence]:
    """One sequence per mesh file under `source` (recursively). A sidecar NAME.json may give "identity" (several
    files of one person share it, and so their split), "source" and "licence"."""
    if not source.is_dir():
        raise InputImageError(f"{source} is not a folder of head meshes.", code="dataset.bad_source")
    out = []
    for f in sorted(p for p in source.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file()):
        rel = f.relative_to(source).with_suffix("")
        side = {}
        if f.with_suffix(".json").is_file():
            try:
                side = json.loads(f.with_suffix(".json").read_text())
            except ValueError as e:
                raise InputImageError(f"{f.with_suffix('.json')} is not valid JSON ({e}).",
                                      code="dataset.bad_sidecar") from e
        licence, lic_file = find_licence(f)
        out.append(Sequence(id=f"mesh-{_slug(str(rel))}", kind="mesh",
                            identity=str(side.get("identity") or f"mesh:{_slug(str(rel))}"),
                            source=str(side.get("source") or f.resolve()), licence=licence, asset=f.resolve(),
                            meta={"licence_file": lic_file, "asset": str(f.resolve()),
                                  "skin_tone": side.get("skin_tone")}))
    return out


def ict_sequences(opts: BuildOptions) -> list[Sequence]:
    if opts.ict <= 0:
        return []
    load_ict()  # here, before any worker starts: a coded "ICT-FaceKit not installed" with how to get it
    path = default_ict_path()
    return [Sequence(id=h.id, kind="ict", identity=h.identity_id,
                     source=f"ICT-FaceKit Light (https://github.com/ICT-VGL/ICT-FaceKit), {path}", licence="MIT",
                     meta={**h.meta()}, ict_head=h)
            for h in sample_heads(opts.ict, opts.seed, opts.expressions_per_identity)]


def _record(seq: Sequence, opts: BuildOptions) -> dict:
    rec = {"size": opts.size, "samples": opts.samples, "kind": seq.kind}
    if seq.kind == "ict":
        rec.update(head=head_fingerprint(seq.ict_head), texture_size=opts.texture_size)
    else:
        rec["asset_sha256"] = sha256_file(seq.asset)
    return rec


def _prepare(root: Path, seq: Sequence, opts: BuildOptions) -> bool:
    """Make the sequence's folder ready to render; True when it is already finished."""
    d = layout.sequence_dir(root, seq.id)
    rec_path = d / BUILD_RECORD
    rec = _record(seq, opts)
    if rec_path.is_file():
        try:
            old = json.loads(rec_path.read_text())
        except ValueError:
            old = None
        if old != rec:  # other settings: start this sequence over
            shutil.rmtree(d)
    d.mkdir(parents=True, exist_ok=True)
    write_json(rec_path, rec)
    if seq.kind == "ict":
        seq.asset = d / "head.glb"  # written by the Blender worker that renders it (ict_heads.write_sampled_head)
    return (layout.views_dir(root, seq.id) / "cameras.json").is_file() and (d / "meta.json").is_file()


def _ict_model(cache: dict):
    if "ict" not in cache:
        cache["ict"] = load_ict()
    return cache["ict"]


def write_meta(root: Path, seq: Sequence, opts: BuildOptions, model_cache: dict) -> dict:
    from PIL import Image

    vdir = layout.views_dir(root, seq.id)
    rgba = np.asarray(Image.open(vdir / f"{layout.FRONTAL_VIEW:03d}.png").convert("RGBA"))
    kps5 = None
    if seq.kind == "ict":  # the model's own landmarks, carried by the render's normalisation into the view
        model = _ict_model(model_cache)
        info = json.loads((vdir / "cameras.json").read_text())
        M = np.asarray(info["normalisation"]["file_to_world"])
        lm = head_vertices(model, seq.ict_head)[model.landmarks_68] @ WORLD_TO_GLTF.T
        cam = next(c for c in cameras.load_cameras_json(vdir / "cameras.json") if c["index"] == layout.FRONTAL_VIEW)
        kps5 = model_kps5(lm @ M[:3, :3].T + M[:3, 3], cam)
    ident = frontal_embedding(rgba, kps5=kps5, detector=opts.detector, models_root=opts.models_root,
                              method=opts.identity)
    expression = dict(seq.ict_head.expression) if seq.kind == "ict" else {}
    marks = write_landmarks(root, seq.id)  # before meta.json, which marks the sequence finished
    meta = {**ident, "identity_view": layout.FRONTAL_VIEW, "expression": expression, "identity": seq.identity,
            "kind": seq.kind, "source": seq.source, "licence": seq.licence, "skin_tone": None,
            "landmarks": {"file": LANDMARKS_FILE, "views": len(marks["views"]), "searched": marks["searched"]},
            **seq.meta}
    if seq.kind == "ict":
        meta["mesh"] = "head.glb"
    write_json(layout.sequence_dir(root, seq.id) / "meta.json", meta)
    return meta


def build_dataset(source: Path | None, out: Path, opts: BuildOptions, emit=lambda e: None,
                  cancel: CancelToken | None = None) -> dict:
    """Build (or resume) the dataset; returns a summary {sequences, rendered, skipped, failed, seconds, ...}."""
    t0 = time.time()
    cancel = cancel or CancelToken()
    if opts.size < 16 or opts.workers < 1 or opts.samples < 1 or opts.ict < 0:
        raise JobError("--size must be at least 16, --workers and --samples at least 1, --ict not negative.",
                       code="cli.bad_option")
    if importlib.util.find_spec("bpy") is None:
        raise HeadForgeError("dataset build renders with Blender as a Python module: pip install bpy==5.0.1.",
                             code="dependency.missing")
    seqs = (mesh_sequences(Path(source)) if source is not None else []) + ict_sequences(opts)
    if not seqs:
        raise InputImageError("Nothing to build: SOURCE holds no .glb/.gltf/.obj/.fbx and --ict is 0.",
                              code="dataset.empty")
    ids = [s.id for s in seqs]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise InputImageError(f"Two source files give the same sequence id: {', '.join(dup)}; rename one.",
                              code="dataset.duplicate_id")
    out.mkdir(parents=True, exist_ok=True)
    for s in seqs:
        if s.licence == "unknown":
            emit(ProgressEvent("warning", "dataset", message=f"{s.id}: no licence found for {s.asset} (give a "
                               "sidecar NAME.json with \"licence\", or a licence text file beside it)"))
    todo, finished, cache = [], [], {}
    for i, s in enumerate(seqs):
        if cancel.cancelled:
            raise Cancelled("Dataset build cancelled; run it again to continue where it stopped.")
        emit(ProgressEvent("progress", "dataset", 0.0, 0.0, f"preparing {s.id} ({i + 1}/{len(seqs)})"))
        (finished if _prepare(out, s, opts) else todo).append(s)
    failed: dict[str, str] = {}
    if todo:
        failed = _render_all(out, todo, opts, emit, cancel, cache)
    done = [s for s in seqs if s.id not in failed]
    ident_split = layout.assign_splits([s.identity for s in done], opts.seed)
    write_json(out / "manifest.json", {
        "format": layout.FORMAT, "version": layout.VERSION, "size": opts.size,
        "sequences": [{"id": s.id, "split": ident_split[s.identity], "identity": s.identity, "source": s.source,
                       "licence": s.licence, "kind": s.kind} for s in done],
        "build": {"seed": opts.seed, "samples": opts.samples, "ict": opts.ict,
                  "expressions_per_identity": opts.expressions_per_identity, "failed": failed}})
    seconds = round(time.time() - t0, 2)
    return {"sequences": len(done), "rendered": len(todo) - len(failed), "skipped": len(finished),
            "failed": failed, "seconds": seconds,
            "splits": {sp: sum(ident_split[s.identity] == sp for s in done) for sp in layout.SPLITS}}


def _render_all(out: Path, todo: list[Sequence], opts: BuildOptions, emit, cancel, cache: dict) -> dict[str, str]:
    """Render the sequences in `opts.workers` Blender processes; meta.json as each one finishes. Returns
    {sequence id: error message} of those that failed."""
    pkg = __package__.rsplit(".", 2)[0]
    work = out / ".build"
    work.mkdir(exist_ok=True)
    n_workers = min(opts.workers, len(todo))
    threads = max(1, (os.cpu_count() or 1) // n_workers) if n_workers > 1 else 0  # Cycles' CPU threads each
    events: queue.Queue = queue.Queue()
    procs = []
    for k in range(n_workers):
        chunk = todo[k::n_workers]
        job = work / f"worker_{k}.json"
        write_json(job, {"size": opts.size, "samples": opts.samples, "device": opts.device, "threads": threads,
                         "sequences": [{"id": s.id, "asset": str(s.asset), "out": str(layout.views_dir(out, s.id)),
                                        **({"ict": _ict_spec(s, opts)} if s.kind == "ict" else {})} for s in chunk]})
        with open(work / f"worker_{k}.log", "w") as log:  # Blender's own errors: the failure message's tail
            proc = subprocess.Popen([sys.executable, "-m", f"{pkg}.addon.render_views", "--batch", str(job)],
                                    stdout=subprocess.PIPE, stderr=log, text=True)
        threading.Thread(target=_pump, args=(proc, events), daemon=True).start()
        procs.append(proc)
    by_id = {s.id: s for s in todo}
    views_done: dict[str, int] = {}
    failed: dict[str, str] = {}
    finished: set[str] = set()
    total = len(todo) * layout.N_VIEWS
    live = n_workers
    try:
        while live:
            if cancel.cancelled:
                raise Cancelled("Dataset build cancelled; run it again to continue where it stopped.")
            try:
                e = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if e is None:
                live -= 1
                continue
            sid = e.data.get("sequence")
            if e.kind == "progress" and sid in by_id:
                views_done[sid] = int(e.data.get("view", 0))
                f = sum(views_done.values()) / total
                emit(ProgressEvent("progress", "dataset", f, f, f"{e.message} ({len(finished)}/{len(todo)} sequences)"))
            elif e.kind == "error" and sid in by_id:
                failed[sid] = e.message
                emit(ProgressEvent("warning", "dataset", message=f"{sid} failed: {e.message}", data=e.data))
            elif e.kind == "info" and e.data.get("done") and sid in by_id:
                try:
                    write_meta(out, by_id[sid], opts, cache)
                except HeadForgeError as err:
                    failed[sid] = err.message
                    emit(ProgressEvent("warning", "dataset", message=f"{sid}: meta.json failed: {err.message}"))
                    continue
                finished.add(sid)
                f = sum(views_done.values()) / total
                emit(ProgressEvent("progress", "dataset", f, f, f"{sid} finished ({len(finished)}/{len(todo)})",
                                   str(layout.views_dir(out, sid) / f"{layout.FRONTAL_VIEW:03d}.png")))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    for k in range(n_workers):  # a worker that died takes its unfinished sequences with it
        for s in todo[k::n_workers]:
            if s.id not in finished and s.id not in failed:
                tail = (work / f"worker_{k}.log").read_text(errors="replace").strip().splitlines()[-1:]
                failed[s.id] = ("the Blender worker stopped before this sequence was finished"
                                + (f": {tail[0]}" if tail else "") + f" (log: {work / f'worker_{k}.log'})")
    return failed


def _ict_spec(s: Sequence, opts: BuildOptions) -> dict:
    return {"seed": opts.seed, "index": s.ict_head.index, "expressions_per_identity": opts.expressions_per_identity,
            "texture_size": opts.texture_size}


def _pump(proc: subprocess.Popen, events: queue.Queue) -> None:
    """Worker stdout → events (Blender's own chatter skipped); None when the worker ends."""
    for line in proc.stdout:
        if line.startswith("{"):
            try:
                events.put(ProgressEvent.from_json(line))
            except (ValueError, TypeError):
                pass
    proc.wait()
    events.put(None)
