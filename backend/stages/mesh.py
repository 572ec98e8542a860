"""Stage `mesh`: the fitted splat (`splat/head.ply`) + the views → `mesh/head.glb`.

Depth (the median depth of the opacity-sharpened Gaussians, `depth_mode`) and alpha of the splat's Gaussians
are rendered from the views' cameras and fused into a TSDF (pixels that the view's own alpha matte, where it
has one, or the splat's alpha calls background carve free space); the surface is meshed by marching cubes,
reduced to the largest component, smoothed (Taubin), decimated (quadric), made watertight, UV-unwrapped
(xatlas) and textured from the views. The glb is in DESIGN's world frame (+Z up, metres, facing −Y);
`mesh/head_albedo.png` (and `mesh/head_normal.png` with `normal_map`) hold the maps also embedded in it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..cameras import scale_intrinsics
from ..errors import JobError
from ..fileio import write_image
from ..mesh.glb import write_head_glb
from ..splat.ply import read_ply
from ..stage import stage
from ..views import read_views


@dataclass
class MeshOptions:
    target_triangles: int = 30000  # quadric decimation target
    texture_size: int = 2048  # albedo texture side (px): 512..8192, a power of two
    voxel_size: float = 0.001  # TSDF voxel (metres)
    trunc_voxels: float = 4.0  # TSDF truncation, in voxels
    depth_size: int = 512  # long side (px) of the splat depth renders
    smooth_iterations: int = 10  # Taubin passes on the marching-cubes surface
    bake_power: float = 4.0  # view weight = cos(view angle) ** bake_power
    min_opacity: float = 0.005  # Gaussians below this opacity are ignored for the surface
    depth_opacity_gain: float = 30.0  # opacity sharpening for the depth renders (1: none)
    depth_mode: str = "median"  # "median": where the ray is half blocked | "expected": mean Gaussian-centre depth
    carve_with_view_alpha: bool = True  # the views' alpha mattes also mark free space for the fusion
    normal_map: bool = False  # bake a tangent-space normal map from the high-resolution surface
    device: str = "auto"  # "auto" | "cpu" | "cuda"


def validate(opts: MeshOptions) -> None:
    def bad(msg):
        raise JobError(f"mesh: {msg}", code="job.bad_option")

    if not 100 <= int(opts.target_triangles) <= 2_000_000:
        bad(f"target_triangles={opts.target_triangles}; use 100..2000000.")
    ts = int(opts.texture_size)
    if ts < 256 or ts > 8192 or ts & (ts - 1):
        bad(f"texture_size={opts.texture_size}; use a power of two from 256 to 8192.")
    if not 0.0002 <= float(opts.voxel_size) <= 0.02:
        bad(f"voxel_size={opts.voxel_size} m; use 0.0002..0.02.")
    if not 1.0 <= float(opts.trunc_voxels) <= 20.0:
        bad(f"trunc_voxels={opts.trunc_voxels}; use 1..20.")
    if not 32 <= int(opts.depth_size) <= 4096:
        bad(f"depth_size={opts.depth_size}; use 32..4096.")
    if not 1.0 <= float(opts.depth_opacity_gain) <= 1000.0:
        bad(f"depth_opacity_gain={opts.depth_opacity_gain}; use 1..1000.")
    if opts.depth_mode not in ("median", "expected"):
        bad(f"depth_mode={opts.depth_mode!r}; use median or expected.")
    if opts.device not in ("auto", "cpu", "cuda"):
        bad(f"device={opts.device!r}; use auto, cpu or cuda.")


def load_views(views_dir: Path, with_images: bool = True):
    """cameras.json + NNN.png → (cameras, ColorViews). Images may be RGBA (alpha used) or RGB. Each ColorView
    carries `camera_index`, its position in the cameras list (views whose image is missing are skipped)."""
    from ..mesh.texture import ColorView  # torch, lazily: planning a job imports every stage module

    cams, views = read_views(views_dir, code="mesh", need_alpha=False, skip_missing=True, with_images=with_images)
    return cams, [ColorView(v.rgba[..., :3], v.rgba[..., 3] if v.has_alpha else None, v.K, v.w2c, v.camera_index)
                  for v in views]


@stage("mesh", inputs=("splat/head.ply", "views"),
       outputs=("mesh/head.glb", "mesh/head_albedo.png", "mesh/preview.png"),
       optional_outputs=("mesh/head_normal.png",), options=MeshOptions, version="3")
def run_mesh(ctx) -> dict:
    import torch

    from ..mesh.extract import surface_from_depth, textured_mesh
    from ..mesh.fusion import carve_with_mattes
    from ..mesh.splat_depth import render_depth_views, select_gaussians, surface_bounds

    opts: MeshOptions = ctx.options
    validate(opts)
    t0 = time.time()
    device = opts.device if opts.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    ctx.progress(0.0, "reading the splat")
    splat = read_ply(ctx.path("splat/head.ply"))
    sel = select_gaussians(splat, opts.min_opacity)
    if sel.counts["floaters"] or sel.counts["outside_box"]:
        ctx.note(f"{sel.counts['floaters'] + sel.counts['outside_box']} stray Gaussians ignored for the surface.")
    cams, colour_views = load_views(ctx.path("views"))
    ctx.progress(0.02, f"rendering depth of {sel.counts['kept']} Gaussians from {len(cams)} views")
    depth_views = render_depth_views(splat, sel.keep, cams, opts.depth_size, device, opts.depth_opacity_gain,
                                     ctx.check_cancel,
                                     lambda f: ctx.progress(0.02 + 0.23 * f, "rendering splat depth"),
                                     mode=opts.depth_mode)
    carved = carve_with_mattes(depth_views, colour_views) if opts.carve_with_view_alpha else 0
    bounds = surface_bounds(splat, sel.keep)
    low, high, fig = surface_from_depth(
        depth_views, bounds, opts.voxel_size, opts.trunc_voxels * opts.voxel_size, opts.target_triangles,
        opts.smooth_iterations, ctx.check_cancel, lambda f, m: ctx.progress(0.25 + 0.35 * f, m))
    head = textured_mesh(low, high, colour_views, opts.texture_size, opts.bake_power, opts.normal_map,
                         ctx.check_cancel, lambda f, m: ctx.progress(0.6 + 0.35 * f, m))
    ctx.check_cancel()
    ctx.progress(0.96, "writing mesh/head.glb")

    write_image(ctx.path("mesh/head_albedo.png"), Image.fromarray(head.texture))
    if head.normal_map is not None:
        write_image(ctx.path("mesh/head_normal.png"), Image.fromarray(head.normal_map))
    write_head_glb(ctx.path("mesh/head.glb"), head.vertices, head.faces, head.uv, head.texture,
                   normal_map=head.normal_map, vertex_normals=head.vertex_normals)
    preview = _preview(ctx.path("mesh/preview.png"), head, cams[0])
    ctx.progress(1.0, f"{len(head.faces)} triangles, {opts.texture_size}² texture", preview=preview)
    return {"triangles": int(len(head.faces)), "vertices": int(len(head.vertices)),
            "watertight": bool(low.is_watertight), "surface_area_m2": round(float(low.area), 5),
            "volume_m3": round(float(low.volume), 7), "gaussians": sel.counts,
            "depth_mode": opts.depth_mode, "matte_carved_views": carved, **fig, **head.figures,
            "seconds": round(time.time() - t0, 2)}


def _preview(path: Path, head, cam: dict) -> Path:
    """A 256-px render of the textured mesh from the first view's camera."""
    from ..mesh.texture import render_textured

    s = 256 / max(cam["width"], cam["height"])
    w, h = int(round(cam["width"] * s)), int(round(cam["height"] * s))
    img, _ = render_textured(head.vertices, head.faces, head.uv, head.texture,
                             scale_intrinsics(cam["K"], w / cam["width"], h / cam["height"]), cam["w2c"], h, w)
    write_image(path, Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)))
    return path
