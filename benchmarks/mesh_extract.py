"""Mesh-extraction benchmark on the Lee Perry-Smith scan: renders → (splat fit →) mesh stage → figures.

    python benchmarks/mesh_extract.py --views DIR [--source splat|renders] [--fit-steps N] [--fit-size PX]
                                      [--splat PLY] [--out DIR] [--depth-mode median|expected] [--no-matte-carve]

`--views` is a `headforge render-views` folder of the scan (made here with --render-size if absent). Views
with index % 8 == 0 are held out: neither the splat fit nor the texture bake sees them; the textured mesh is
re-rendered (unlit, our rasterizer) at their cameras and compared with the Cycles renders.
`--source splat` (the pipeline): fit Gaussians to the training views (backend.splat.optimize), then run the
`mesh` stage on the splat. `--source renders`: fuse the renders' own depth maps instead (the upper bound of
the surface path). Geometry is compared with the scan placed in the rig as render-views placed it (bust's
largest extent 0.24 m) and also rescaled to a real head: head length (glabella–back of the skull, the largest
front–back extent above the ears) set to 197 mm, the adult-male mean.

Caching, to iterate on the mesh step alone: the render-views folder given as `--views` is reused whenever it
holds a cameras.json (render it once, several minutes of Cycles); the fitted splat is kept as
OUT/job_splat/splat/head.ply and reused by later runs with the same `--out` (or pass any fitted splat with
`--splat PLY`, which is copied there), so a rerun costs only the mesh stage and the evaluation.

Two Chamfer figures are printed. `chamfer_mm_*` is over the whole scan surface. The scan also holds surface no
camera of the rig can see — shells inside the head around the eyes and mouth, about 7 % of its area, and
the undersides facing away from every camera — which no reconstruction from the views can recover and which
alone add some 1.5 mm (real size) to the reference → mesh side. `chamfer_observed_mm_*` applies the
DTU-style observation mask to the reference side: only scan surface that at least one of the rig's cameras
(all views, training and held-out) sees, by a depth test against the scan's own depth from that camera
(1 mm tolerance in the rig frame), counts for completeness; accuracy (mesh → scan) stays over the whole mesh,
closing cap included. The target (≤ 2 mm) is read on the whole-surface figure.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_data.py, also when loaded by path
from _data import SHARED  # noqa: E402

ASSET = SHARED / "data/heads/lee_perry_smith/LeePerrySmith_textured.glb"
REAL_HEAD_LENGTH_M = 0.197


def main() -> int:
    import bpy  # noqa: F401  (before pymeshlab: both bundle Embree)
    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--views", type=Path, required=True)
    p.add_argument("--render-size", type=int, default=512)
    p.add_argument("--source", choices=["splat", "renders"], default="splat")
    p.add_argument("--splat", type=Path, help="use this fitted splat instead of fitting one")
    p.add_argument("--fit-steps", type=int, default=3000)
    p.add_argument("--fit-size", type=int, default=256)
    p.add_argument("--voxel", type=float, default=0.001)
    p.add_argument("--depth-size", type=int, default=512)
    p.add_argument("--texture", type=int, default=2048)
    p.add_argument("--triangles", type=int, default=30000)
    p.add_argument("--depth-mode", choices=["median", "expected"], default="median")
    p.add_argument("--no-matte-carve", action="store_true", help="fuse without the views' alpha mattes")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument("--out", type=Path, default=Path("/tmp/headforge-mesh-bench"))
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    from headforge.backend.cameras import load_cameras_json
    from headforge.backend.mesh.metrics import chamfer_and_normals, load_reference_head, observed_points, psnr

    t_all = time.time()
    if not (a.views / "cameras.json").is_file():
        subprocess.run([sys.executable, "-m", "headforge.addon.render_views", str(ASSET), "-o", str(a.views),
                        "--size", str(a.render_size)], check=True)
    meta = json.loads((a.views / "cameras.json").read_text())
    cams = load_cameras_json(a.views / "cameras.json")
    ref = load_reference_head(ASSET, np.array(meta["normalisation"]["file_to_world"]))
    held = [c for c in cams if c["index"] % 8 == 0]
    train = [c for c in cams if c["index"] % 8 != 0]
    job = a.out / f"job_{a.source}"
    training_views(a.views, train, job / "views")
    figures = {"views_train": len(train), "views_held_out": len(held), "render_size": cams[0]["width"],
               "torch_threads": torch.get_num_threads()}

    t0 = time.time()
    if a.source == "splat":
        splat_path = job / "splat" / "head.ply"
        if a.splat:
            splat_path.parent.mkdir(parents=True, exist_ok=True)
            splat_path.write_bytes(a.splat.read_bytes())
        elif not splat_path.exists():
            figures.update(fit_splat(a, train, splat_path))
        figures["fit_seconds_total"] = round(time.time() - t0, 1)
        t0 = time.time()
        figures["depth_mode"] = a.depth_mode
        figures["matte_carve"] = not a.no_matte_carve
        head, stage_metrics = run_stage(job, a)
        figures["stage"] = stage_metrics
    else:
        head = mesh_from_renders(a, train, job)
    figures["mesh_seconds"] = round(time.time() - t0, 1)

    import trimesh

    closed = trimesh.Trimesh(head.vertices, head.faces)  # merged across UV seams
    figures["watertight"] = bool(closed.is_watertight)
    figures["triangles"] = int(len(head.faces))
    q = chamfer_and_normals(head.vertices, head.faces, ref.vertices, ref.faces, count=200_000,
                            observed=lambda pts: observed_points(pts, ref.vertices, ref.faces, cams, 0.001))
    scale = REAL_HEAD_LENGTH_M / head_length(ref)
    figures["real_size_scale"] = round(scale, 4)
    for k in ("chamfer", "accuracy", "completeness", "p95"):  # whole scan surface
        figures[f"{k}_mm_rig"] = round(q[k] * 1000, 3)
        figures[f"{k}_mm_real"] = round(q[k] * 1000 * scale, 3)
    figures["observed_fraction_of_scan"] = round(q["observed_fraction"], 4)
    for k in ("chamfer_observed", "completeness_observed", "completeness_unobserved"):  # observation mask
        figures[f"{k}_mm_rig"] = round(q[k] * 1000, 3)
        figures[f"{k}_mm_real"] = round(q[k] * 1000 * scale, 3)
    figures["normal_consistency"] = round(q["normal_consistency"], 4)
    full, fg = [], []
    from PIL import Image

    from headforge.backend.mesh.texture import render_textured

    for c in held:
        rgba = np.asarray(Image.open(a.views / c["file"]).convert("RGBA"), np.float64) / 255.0
        gt = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])
        img, m = render_textured(head.vertices, head.faces, head.uv, head.texture, c["K"], c["w2c"],
                                 c["height"], c["width"])
        full.append(psnr(img, gt))
        fg.append(psnr(img, gt, (rgba[..., 3] > 0) | m))
        if c is held[0]:
            pair = (np.concatenate([gt, img], 1) * 255 + 0.5).astype(np.uint8)
            Image.fromarray(pair).save(a.out / f"heldout_{a.source}.png")
    figures["psnr_held_out_db"] = round(float(np.mean(full)), 2)
    figures["psnr_held_out_min_db"] = round(float(np.min(full)), 2)
    figures["psnr_held_out_foreground_db"] = round(float(np.mean(fg)), 2)
    figures["wall_seconds"] = round(time.time() - t_all, 1)
    print(json.dumps(figures, indent=1))
    (a.out / f"figures_{a.source}.json").write_text(json.dumps(figures, indent=1))
    return 0


def training_views(views: Path, train: list[dict], dest: Path) -> None:
    """The training views as a views folder of their own: their files (hard links, else copies; the stages read
    no view file that leads out of views/, so no symlinks) and a cameras.json listing only them."""
    from headforge.backend.cameras import save_cameras_json

    dest.mkdir(parents=True, exist_ok=True)
    for c in train:
        dst = dest / c["file"]
        if dst.is_symlink():  # an older run's link
            dst.unlink()
        if not dst.exists():
            try:
                os.link(views / c["file"], dst)
            except OSError:
                shutil.copyfile(views / c["file"], dst)
    save_cameras_json(dest / "cameras.json", train)


def head_length(ref) -> float:
    """Largest front–back (y) extent of 2-mm horizontal slices of the scan above 40 % of its height from the top."""
    from headforge.backend.mesh.metrics import sample_surface

    pts, _ = sample_surface(ref.vertices, ref.faces, 200_000)
    top, bottom = pts[:, 2].max(), pts[:, 2].min()
    best = 0.0
    for z in np.arange(top - 0.4 * (top - bottom), top, 0.002):
        s = pts[np.abs(pts[:, 2] - z) < 0.001]
        if len(s) > 10:
            best = max(best, float(np.ptp(s[:, 1])))
    return best


def fit_splat(a, train, splat_path) -> dict:
    import torch
    from PIL import Image

    from headforge.backend.cameras import scale_intrinsics
    from headforge.backend.splat.optimize import FitConfig, fit
    from headforge.backend.splat.ply import write_ply

    imgs, vms, Ks = [], [], []
    for c in train:
        im = Image.open(a.views / c["file"]).convert("RGBA").resize((a.fit_size, a.fit_size), Image.LANCZOS)
        imgs.append(np.asarray(im, np.float32) / 255.0)
        vms.append(c["w2c"])
        Ks.append(scale_intrinsics(c["K"], a.fit_size / c["width"], a.fit_size / c["height"]))
    cfg = FitConfig.ours(a.fit_steps, holdout_every=0, preview_every=max(a.fit_steps // 10, 1))
    t = time.time()
    res = fit(torch.as_tensor(np.stack(imgs)), torch.as_tensor(np.stack(vms)), torch.as_tensor(np.stack(Ks)), cfg,
              on_progress=lambda s, n, info, prev: print(f"fit {s}/{n} loss {info['loss']:.4f} "
                                                        f"{info['n_gaussians']} Gaussians {info['seconds']:.0f} s",
                                                        flush=True))
    write_ply(splat_path, res.splat)
    return {"fit_size": a.fit_size, "fit_steps": a.fit_steps, "fit_seconds": round(time.time() - t, 1),
            "gaussians": int(len(res.splat["means"])),
            **{f"fit_{k}": v for k, v in res.metrics.items() if isinstance(v, (int, float))}}


def run_stage(job: Path, a):
    from headforge.backend.events import CancelToken
    from headforge.backend.job import Job, StageContext
    from headforge.backend.mesh.glb import read_head_glb
    from headforge.backend.stages.mesh import MeshOptions, run_mesh

    opts = MeshOptions(target_triangles=a.triangles, texture_size=a.texture, voxel_size=a.voxel,
                       depth_size=a.depth_size, depth_mode=a.depth_mode, carve_with_view_alpha=not a.no_matte_carve)
    last = [0.0]

    def emit(e):
        if e.fraction - last[0] >= 0.05 or e.fraction == 1.0:
            last[0] = e.fraction
            print(f"mesh {e.fraction * 100:5.1f}% {e.message}", flush=True)

    metrics = run_mesh(StageContext(Job(job), "mesh", opts, "full", emit, CancelToken(), lambda f: f))
    return read_head_glb(job / "mesh" / "head.glb"), metrics


def mesh_from_renders(a, train, job):
    from headforge.backend.mesh.extract import surface_from_depth, textured_mesh
    from headforge.backend.mesh.fusion import DepthView
    from headforge.backend.stages.mesh import load_views

    _, colour = load_views(job / "views")  # the training views only
    depth = []
    for c in train:
        d = np.load(a.views / f"{c['index']:03d}_depth.npy")
        depth.append(DepthView(d, (d > 0).astype(np.float32), c["K"], c["w2c"]))
    lo = np.full(3, -0.13)
    low, high, fig = surface_from_depth(depth, np.stack([lo, -lo]), a.voxel, 4 * a.voxel, a.triangles,
                                        on_progress=lambda f, m: None)
    print(fig, flush=True)
    head = textured_mesh(low, high, colour, a.texture)
    print(head.figures, flush=True)
    return head


if __name__ == "__main__":
    sys.exit(main())
