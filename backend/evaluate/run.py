"""`headforge evaluate DATASET --split test`: the multi-view stage (ID-TS, backend/idts/orbit.generate_orbit) on each
test sequence's frontal view (view 16: elevation 0, azimuth 0), every generated view compared with the ground-truth
view of the same rig camera (metrics.py), then mean ± std per metric over all views, per elevation ring and per
azimuth, as JSON (results.json, every view's figures too) and a Markdown table like the paper's (table.md).

The generated views are at the model's resolution; the ground truth is shrunk to it (box filter). Both are
composited over white. The input view is included (ring 1, azimuth 0), as in the released evaluation of a ring.
With `reconstruct`, Gaussians fitted to the generated views (reconstruct.py) are rendered from all 96 cameras and
scored the same way, reported under "reconstruction".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import cameras
from ..cpu_numerics import fixed_threads
from ..dataset import layout
from ..errors import Cancelled, JobError
from ..events import CancelToken, ProgressEvent
from ..fileio import write_image, write_json
from ..idts.readiness import weights_dir
from ..splat.optimize import choose_device
from ..views import read_views
from . import metrics as M
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


def _multiview_opts(o: EvalOptions):
    from ..stages.multiview import MultiviewOptions

    return MultiviewOptions(models_dir=o.models_dir, seed=o.seed, steps=o.steps, rings=o.rings,
                            other_rings=o.other_rings if o.rings == "all" else "none", stage2=o.stage2,
                            device=o.device, precision=o.precision, memory=o.memory, matte="white")


def evaluate_dataset(dataset: Path, out: Path, opts: EvalOptions, emit=lambda e: None,
                     cancel: CancelToken | None = None, pipeline=None) -> dict:
    on_cpu = opts.device == "cpu" or (opts.device == "auto" and not torch.cuda.is_available())
    with fixed_threads(opts.cpu_threads, on_cpu):
        return _evaluate(dataset, out, opts, emit, cancel, pipeline)


def _evaluate(dataset: Path, out: Path, opts: EvalOptions, emit, cancel, pipeline) -> dict:
    from PIL import Image

    from ..idts import orbit

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
    scorer = M.Metrics(weights_dir(opts.models_dir), Path(opts.models_root) if opts.models_root else None)
    rings = orbit.ring_order(cameras.INPUT_RING, "input" if opts.rings == "input" else "all")
    rows, recon_rows = [], []
    for n, s in enumerate(seqs):
        vdir = layout.views_dir(dataset, s["id"])
        cams, views = read_views(vdir, code="evaluate")
        by_index = {c["index"]: v for c, v in zip(cams, views)}
        frontal = by_index[layout.FRONTAL_VIEW].rgba
        crop = np.clip(_over_white(frontal) * 255 + 0.5, 0, 255).astype(np.uint8)

        def progress(f, m, n=n):
            if cancel.cancelled:
                raise Cancelled("Evaluation cancelled.")
            g = (n + f) / len(seqs)
            emit(ProgressEvent("progress", "evaluate", g, g, f"{s['id']}: {m}"))

        generated = {}
        share = 0.5 if opts.reconstruct else 1.0
        for item in orbit.generate_orbit(pipe, crop, rings, 0.0, mv, progress=lambda f, m: progress(share * f, m)):
            if isinstance(item, orbit.Ring):
                generated[item.index] = item.rgba
        size = next(iter(generated.values())).shape[1]
        inp = scorer.embed(_over_white(_shrink(frontal, size)))
        for e, rgba in generated.items():
            for k in range(cameras.VIEWS_PER_RING):
                idx = cameras.view_index(e, k)
                gen = rgba[k].astype(np.float64) / 255.0
                gt = _over_white(_shrink(by_index[idx].rgba, size))
                values = scorer.pair(_over_white(gen), gt, inp)
                rows.append({"sequence": s["id"], "view": idx, "ring": e, "elevation": cameras.ELEVATIONS_DEG[e],
                             "k": k, "azimuth": float(cameras.eased_azimuths()[k]), **values})
                if opts.keep_views:
                    write_image(out / s["id"] / f"{idx:03d}.png", Image.fromarray(rgba[k], "RGBA"))
        if opts.reconstruct:
            splat = fit_generated(generated, opts.recon_steps, opts.seed, opts.device, opts.recon_points,
                                  progress=lambda f, m: progress(0.5 + 0.5 * f, m))
            renders = render_splat(splat, cameras.rig_cameras(size), str(choose_device(opts.device)))
            for c, rgba in zip(cameras.rig_cameras(size), renders):
                gt = _over_white(_shrink(by_index[c["index"]].rgba, size))
                recon_rows.append({"sequence": s["id"], "view": c["index"], "ring": c["ring"],
                                   "elevation": c["elevation"], "k": c["k"], "azimuth": c["azimuth"],
                                   **scorer.pair(_over_white(rgba), gt, inp)})
                if opts.keep_views:
                    write_image(out / s["id"] / "reconstruction" / f"{c['index']:03d}.png",
                                Image.fromarray(np.clip(rgba * 255 + 0.5, 0, 255).astype(np.uint8), "RGBA"))
        emit(ProgressEvent("progress", "evaluate", (n + 1) / len(seqs), (n + 1) / len(seqs), f"{s['id']} evaluated"))
    result = aggregate(rows, scorer)
    if opts.reconstruct:
        result["reconstruction"] = {**aggregate(recon_rows, scorer), "views": recon_rows}
    result.update(dataset=str(dataset), split=opts.split, sequences=[s["id"] for s in seqs],
                  options={k: v for k, v in opts.__dict__.items()}, seconds=round(time.time() - t0, 2),
                  views=rows)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", _json_safe(result))
    (out / "table.md").write_text(format_table(result))
    return result


def _over_white(rgba: np.ndarray) -> np.ndarray:
    rgba = np.asarray(rgba, np.float64)
    return rgba[..., :3] * rgba[..., 3:4] + (1.0 - rgba[..., 3:4])


def _shrink(rgba: np.ndarray, size: int) -> np.ndarray:
    """A float RGBA view (H, W, 4) box-filtered to (size, size) (premultiplied, so edges do not darken)."""
    h = rgba.shape[0]
    if h == size:
        return rgba
    if h % size:
        raise JobError(f"ground-truth views of {h} px cannot be compared with {size} px generated views "
                       f"({h} is not a multiple of {size}).", code="evaluate.size_mismatch")
    f = h // size
    pre = np.concatenate([rgba[..., :3] * rgba[..., 3:4], rgba[..., 3:4]], -1)
    pre = pre.reshape(size, f, size, f, 4).mean((1, 3))
    a = pre[..., 3:4]
    return np.concatenate([np.where(a > 0, pre[..., :3] / np.maximum(a, 1e-12), 0), a], -1)


def aggregate(rows: list[dict], scorer) -> dict:
    """Mean ± std of each available metric over all views, per ring (elevation) and per azimuth."""
    names = [n for n in M.NAMES if n not in scorer.missing]
    overall = {n: M.summarise([r[n] for r in rows if n in r]) for n in names}
    per_ring, per_az = {}, {}
    for e in sorted({r["ring"] for r in rows}):
        sel = [r for r in rows if r["ring"] == e]
        per_ring[f"{cameras.ELEVATIONS_DEG[e]:g}"] = {n: M.summarise([r[n] for r in sel if n in r]) for n in names}
    for k in sorted({r["k"] for r in rows}):
        sel = [r for r in rows if r["k"] == k]
        per_az[f"{float(cameras.eased_azimuths()[k]):g}"] = {n: M.summarise([r[n] for r in sel if n in r])
                                                           for n in names}
    return {"metrics": names, "missing": dict(scorer.missing), "overall": overall, "per_elevation": per_ring,
            "per_azimuth": per_az}


def _cell(s: dict | None, digits: int) -> str:
    if not s or s["mean"] is None:
        return "inf" if s and s.get("inf") else "–"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


DIGITS = {"psnr": 2, "ssim": 4, "lpips": 4, "csim": 4, "dreamsim": 4}


def format_table(result: dict) -> str:
    arrows = {n: "↑" if M.HIGHER_IS_BETTER[n] else "↓" for n in M.NAMES}
    head = "| | " + " | ".join(f"{n.upper()} {arrows[n]}" for n in M.NAMES) + " |"
    sep = "|---" * (len(M.NAMES) + 1) + "|"

    def row(label, stats):
        return f"| {label} | " + " | ".join("missing" if n in result["missing"] else _cell(stats.get(n), DIGITS[n])
                                            for n in M.NAMES) + " |"

    lines = [f"Split {result['split']}: {len(result['sequences'])} sequence(s), {len(result['views'])} views", "",
             head, sep, row("all views", result["overall"]), "", "Per elevation ring:", "", head, sep]
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
