"""`headforge evaluate DATASET --split test`: the multi-view stage (ID-TS, backend/idts/orbit.generate_orbit) on each
test sequence's frontal view (view 16: elevation 0, azimuth 0), every generated view compared with the ground-truth
view of the same rig camera (metrics.py), then mean ± std per metric over all views, per elevation ring and per
azimuth, as JSON (results.json, every view's figures too) and a Markdown table like the paper's (table.md).

The model is given what `headforge run` would give it for the frontal view as a photo (framing.py: the pipeline's
input and face stages in OUT/<sequence>/job, face/crop.png); the orbit is generated at the view's known camera
(azimuth 0, the 0° ring), not at the face stage's estimate. Every ground-truth view is put into the same framing
(the face stage's crop affine, over white) and box-filtered to the model's resolution. The input view is included
(ring 1, azimuth 0), as in the released evaluation of a ring. A sequence whose frontal view the face stage refuses
is skipped and listed under "skipped" with the stage's code. Only the views scored are read.
CSIM compares aligned faces (metrics.py); views without a detectable face are counted under "csim_excluded".
With `reconstruct`, Gaussians fitted to the generated views (reconstruct.py, with the framed cameras' intrinsics)
are rendered from all 96 cameras and scored the same way, reported under "reconstruction".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import cameras
from ..cpu_numerics import fixed_threads
from ..dataset import layout
from ..errors import Cancelled, FaceError, JobError
from ..events import CancelToken, ProgressEvent
from ..fileio import write_image, write_json
from ..idts import orbit
from ..idts.readiness import weights_dir
from ..splat.optimize import choose_device
from ..stages.multiview import MultiviewOptions
from ..views import read_views
from . import metrics as M
from .framing import frame_input, frame_view, framed_intrinsics
from .reconstruct import fit_generated, render_splat


@dataclass
class EvalOptions:
    split: str = "test"
    models_dir: str = ""  # converted ID-TS folder ("" = $HEADFORGE_MODELS/idts)
    steps: int = 25
    seed: int = 0
    rings: str = "input"  # input (the frontal ring, 16 views) | all (96 views, other rings seeded from splats)
    other_rings: str = "splat"
    stage2: bool = True
    device: str = "auto"
    precision: str = "auto"
    memory: str = "balanced"
    limit: int = 0  # evaluate at most this many sequences (0: all)
    keep_views: bool = False  # write the generated views under OUT/<sequence>/
    reconstruct: bool = False  # also fit Gaussians to the generated views and score their renders from all 96 cameras
    recon_steps: int = 3000
    recon_points: int = 20_000
    # torch's intra-op threads while evaluating on the CPU: float32 sums split over another number of threads give
    # other low bits, so other generated pixels; a fixed count keeps the figures the same on any machine load
    # (0: torch's default, figures may then differ in the 5th digit between thread counts)
    cpu_threads: int = 1
    models_root: str | None = None  # lpips/, dreamsim/
    # the face stage's detector for the input framing and CSIM's alignment: face.models_root (insightface/,
    # opencv_zoo/; "" = the models folder) and face.detector (auto | scrfd | yunet | mediapipe)
    face_models_root: str = ""
    detector: str = "auto"


def _multiview_opts(o: EvalOptions):
    return MultiviewOptions(models_dir=o.models_dir, seed=o.seed, steps=o.steps, rings=o.rings,
                            other_rings=o.other_rings if o.rings == "all" else "none", stage2=o.stage2,
                            device=o.device, precision=o.precision, memory=o.memory, matte="white")


def evaluate_dataset(dataset: Path, out: Path, opts: EvalOptions, emit=lambda e: None,
                     cancel: CancelToken | None = None, pipeline=None) -> dict:
    on_cpu = opts.device == "cpu" or (opts.device == "auto" and not torch.cuda.is_available())
    with fixed_threads(opts.cpu_threads, on_cpu):
        return _evaluate(dataset, out, opts, emit, cancel, pipeline)


def _evaluate(dataset: Path, out: Path, opts: EvalOptions, emit, cancel, pipeline) -> dict:
    cancel = cancel or CancelToken()
    t0 = time.time()
    if opts.split not in layout.SPLITS or opts.rings not in ("input", "all"):
        raise JobError(f"--split is one of {', '.join(layout.SPLITS)}, --rings input or all.", code="cli.bad_option")
    problems = [p for p in layout.check_dataset(dataset, images=False) if p.severity == "error"]
    if problems:
        raise JobError(f"{dataset} is not a valid dataset: {problems[0]}" +
                       (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""), code="evaluate.bad_dataset",
                       hint="Run `headforge dataset check` on it for the full list.")
    seqs = [s for s in layout.read_manifest(dataset)["sequences"] if s["split"] == opts.split]
    if opts.limit:
        seqs = seqs[: opts.limit]
    if not seqs:
        raise JobError(f"{dataset} has no {opts.split} sequences.", code="evaluate.empty_split")
    mv = _multiview_opts(opts)
    pipe = pipeline or orbit.load_pipeline(mv)
    scorer = M.Metrics(weights_dir(opts.models_dir), Path(opts.models_root) if opts.models_root else None,
                       face_models_root=opts.face_models_root or None, detector=opts.detector)
    face_options = {"detector": opts.detector, **({"models_root": opts.face_models_root}
                                                  if opts.face_models_root else {})}
    rings = orbit.ring_order(cameras.INPUT_RING, "input" if opts.rings == "input" else "all")
    rows, recon_rows, skipped = [], [], []
    for n, s in enumerate(seqs):
        vdir = layout.views_dir(dataset, s["id"])
        scored = [cameras.view_index(e, k) for e in (range(len(cameras.ELEVATIONS_DEG)) if opts.reconstruct else rings)
                  for k in range(cameras.VIEWS_PER_RING)]  # the views read: those compared, no others
        cams, _ = read_views(vdir, code="evaluate", with_images=False)
        files = {c["index"]: cameras.view_file(vdir, c) for c in cams}

        def progress(f, m, n=n):
            if cancel.cancelled:
                raise Cancelled("Evaluation cancelled.")
            g = (n + f) / len(seqs)
            emit(ProgressEvent("progress", "evaluate", g, g, f"{s['id']}: {m}"))

        progress(0.0, "framing the frontal view as the face stage frames a photo")
        try:
            framed = frame_input(files[layout.FRONTAL_VIEW], out / s["id"] / "job", face_options, cancel=cancel)
        except FaceError as e:
            skipped.append({"sequence": s["id"], "code": e.code, "message": e.message})
            emit(ProgressEvent("warning", "evaluate", message=f"{s['id']} skipped: the face stage refused its "
                               f"frontal view ({e.code}: {e.message})"))
            continue
        generated = {}
        share = 0.5 if opts.reconstruct else 1.0
        for item in orbit.generate_orbit(pipe, framed.crop, rings, 0.0, mv,
                                         progress=lambda f, m: progress(share * f, m)):
            if isinstance(item, orbit.Ring):
                generated[item.index] = item.rgba
        size = next(iter(generated.values())).shape[1]
        gts = {idx: frame_view(files[idx], framed.affine, size) for idx in scored}
        inp, inp_excluded = scorer.face_embedding(framed.crop.astype(np.float64) / 255.0)
        for e, rgba in generated.items():
            for k in range(cameras.VIEWS_PER_RING):
                idx = cameras.view_index(e, k)
                gen = rgba[k].astype(np.float64) / 255.0
                values = scorer.pair(_over_white(gen), gts[idx], inp, inp_excluded)
                rows.append({"sequence": s["id"], "view": idx, "ring": e, "elevation": cameras.ELEVATIONS_DEG[e],
                             "k": k, "azimuth": float(cameras.eased_azimuths()[k]), **values})
                if opts.keep_views:
                    write_image(out / s["id"] / f"{idx:03d}.png", Image.fromarray(rgba[k], "RGBA"))
        if opts.reconstruct:
            K = framed_intrinsics(cams[0]["K"], framed.affine, size)
            splat = fit_generated(generated, opts.recon_steps, opts.seed, opts.device, opts.recon_points,
                                  progress=lambda f, m: progress(0.5 + 0.5 * f, m), intrinsics=K)
            all_cams = [{**c, "K": K} for c in cameras.rig_cameras(size)]
            renders = render_splat(splat, all_cams, str(choose_device(opts.device)))
            for c, rgba in zip(all_cams, renders):
                recon_rows.append({"sequence": s["id"], "view": c["index"], "ring": c["ring"],
                                   "elevation": c["elevation"], "k": c["k"], "azimuth": c["azimuth"],
                                   **scorer.pair(_over_white(rgba), gts[c["index"]], inp, inp_excluded)})
                if opts.keep_views:
                    write_image(out / s["id"] / "reconstruction" / f"{c['index']:03d}.png",
                                Image.fromarray(np.clip(rgba * 255 + 0.5, 0, 255).astype(np.uint8), "RGBA"))
        emit(ProgressEvent("progress", "evaluate", (n + 1) / len(seqs), (n + 1) / len(seqs), f"{s['id']} evaluated"))
    if not rows:
        refused = "; ".join(f"{k['sequence']}: {k['code']}" for k in skipped)
        raise JobError(f"No {opts.split} sequence could be evaluated: the face stage refused every frontal view "
                       f"({refused}).", code="evaluate.no_faces",
                       hint="Run `headforge run` on one of them (views/016.png) to see the face stage's message.")
    result = aggregate(rows, scorer)
    if opts.reconstruct:
        result["reconstruction"] = {**aggregate(recon_rows, scorer), "views": recon_rows}
    result.update(dataset=str(dataset), split=opts.split, sequences=sorted({r["sequence"] for r in rows},
                                                                          key=[s["id"] for s in seqs].index),
                  skipped=skipped,
                  options={k: v for k, v in opts.__dict__.items()}, seconds=round(time.time() - t0, 2),
                  views=rows)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", _json_safe(result))
    (out / "table.md").write_text(format_table(result))
    return result


def _over_white(rgba: np.ndarray) -> np.ndarray:
    rgba = np.asarray(rgba, np.float64)
    return rgba[..., :3] * rgba[..., 3:4] + (1.0 - rgba[..., 3:4])


def _summaries(rows: list[dict], names: list[str]) -> dict:
    out = {n: M.summarise([r[n] for r in rows if n in r]) for n in names}
    if "csim" in out:  # views without a detectable face: counted, never silently dropped
        out["csim"]["excluded"] = sum("csim_excluded" in r for r in rows)
    return out


def aggregate(rows: list[dict], scorer) -> dict:
    """Mean ± std of each available metric over all views, per ring (elevation) and per azimuth; CSIM's summaries
    also count the views it excluded, and "csim_excluded" gives the reasons over all views."""
    names = [n for n in M.NAMES if n not in scorer.missing]
    per_ring, per_az = {}, {}
    for e in sorted({r["ring"] for r in rows}):
        per_ring[f"{cameras.ELEVATIONS_DEG[e]:g}"] = _summaries([r for r in rows if r["ring"] == e], names)
    for k in sorted({r["k"] for r in rows}):
        per_az[f"{float(cameras.eased_azimuths()[k]):g}"] = _summaries([r for r in rows if r["k"] == k], names)
    reasons: dict[str, int] = {}
    for r in rows:
        if "csim_excluded" in r:
            reasons[r["csim_excluded"]] = reasons.get(r["csim_excluded"], 0) + 1
    return {"metrics": names, "missing": dict(scorer.missing), "overall": _summaries(rows, names),
            "per_elevation": per_ring, "per_azimuth": per_az,
            "csim_excluded": {"views": sum(reasons.values()), "of": len(rows), "reasons": reasons}}


def _cell(s: dict | None, digits: int) -> str:
    if not s or s["mean"] is None:
        text = "inf" if s and s.get("inf") else "–"
    else:
        text = f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"
    if s and s.get("excluded"):  # CSIM over fewer views than the row has: say how many counted
        text += f" ({s['n']} of {s['n'] + s['excluded']} views)"
    return text


DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4, "csim": 4, "dreamsim": 4}


def format_table(result: dict) -> str:
    arrows = {n: "↑" if M.HIGHER_IS_BETTER[n] else "↓" for n in M.NAMES}
    head = "| | " + " | ".join(f"{n.upper()} {arrows[n]}" for n in M.NAMES) + " |"
    sep = "|---" * (len(M.NAMES) + 1) + "|"

    def row(label, stats):
        return f"| {label} | " + " | ".join("missing" if n in result["missing"] else _cell(stats.get(n), DIGITS[n])
                                            for n in M.NAMES) + " |"

    lines = [f"Split {result['split']}: {len(result['sequences'])} sequence(s), {len(result['views'])} views", ""]
    for sk in result.get("skipped", []):
        lines += [f"Skipped {sk['sequence']}: the face stage refused its frontal view ({sk['code']}: {sk['message']})"]
    ex = result.get("csim_excluded") or {}
    if ex.get("views") and "csim" not in result["missing"]:
        reasons = ", ".join(f"{why}: {n}" for why, n in ex["reasons"].items())
        lines += [f"CSIM excludes {ex['views']} of {ex['of']} views ({reasons})."]
    if len(lines) > 2:
        lines += [""]
    lines += [head, sep, row("all views", result["overall"]), "", "Per elevation ring:", "", head, sep]
    lines += [row(f"{el}°", st) for el, st in result["per_elevation"].items()]
    lines += ["", "Per azimuth:", "", head, sep]
    lines += [row(f"{az}°", st) for az, st in result["per_azimuth"].items()]
    if "reconstruction" in result:
        rec = result["reconstruction"]
        lines += ["", f"Reconstruction (Gaussians fitted to the generated views, rendered from all "
                  f"{len(rec['views'])} cameras):", "", head, sep, row("all views", rec["overall"]), "",
                  "Per elevation ring:", "", head, sep]
        lines += [row(f"{el}°", st) for el, st in rec["per_elevation"].items()]
    if result["missing"]:
        lines += ["", "Missing metrics (weights not installed):"]
        lines += [f"- {n.upper()}: {why}" for n, why in result["missing"].items()]
    return "\n".join(lines) + "\n"


def _json_safe(obj):
    if isinstance(obj, float) and not np.isfinite(obj):
        return "inf" if obj > 0 else "-inf" if obj < 0 else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj
