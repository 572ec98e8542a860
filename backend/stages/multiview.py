"""Stage `multiview` (ID-TS): `face/crop.png` + the head pose → `views/NNN.png` + `views/cameras.json`, the 96-view
orbit (backend/idts/orbit.py: input ring, ring order, seed views, mattes).

View i = 16·ring + k is written as `views/{i:03d}.png` (RGBA: the generated colour, and the head's matte from
BiRefNet as in the reference, or a white-background key offline) as soon as its ring finishes; with other_rings =
splat each ring's input view is kept as views/seeds/ring_<e>.png. `cameras.json` (OpenCV, DESIGN's world) lists the
written views. A re-run after a cancel or crash keeps the rings already finished when the inputs, options and
weights are unchanged (`views/.rings.json`, backend/views.py). Weights: converted folders
`<models>/idts/low_stage` and `high_stage` (see `python -m headforge.backend.idts.converter --help`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import cameras
from ..errors import JobError, StageError
from ..fileio import sha256_tree, write_image
from ..idts import orbit
from ..idts.readiness import weights_dir
from ..stage import stage
from ..views import RingProgress


@dataclass
class MultiviewOptions:
    models_dir: str = ""  # folder holding low_stage/ and high_stage/ ("" = $HEADFORGE_MODELS/idts)
    seed: int = 0
    steps: int = 25
    rings: str = "all"  # all | input
    other_rings: str = "splat"  # splat | portrait | none  (input views of the other rings)
    seed_fit_steps: int = 300  # "splat": fit steps for each seed view (gsplat on CUDA, PyTorch rasterizer on CPU)
    seed_fit_points: int = 20_000  # "splat": initial Gaussians of each seed fit
    stage2: bool = True  # False: stage 1 only (256 px views)
    device: str = "auto"  # auto | cuda | cpu | cuda:N
    precision: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | fp16 | bf16 | fp32
    memory: str = "balanced"  # fast | balanced | low (see backend/idts/pipeline.py)
    aesthetic_score: float = -1.0  # < 0: predicted from the image, as the reference does
    matte: str = "auto"  # auto | birefnet | white: the views' alpha (auto: BiRefNet when installed, else white key)
    # the input ring's elevation in degrees; auto: from the head pose (idts/orbit.choose_input_ring)
    elevation: str = field(default="auto",
                           metadata={"choices": ("auto",) + tuple(f"{e:g}" for e in cameras.ELEVATIONS_DEG)})


def _models_dir(opts: MultiviewOptions) -> Path:
    return weights_dir(opts.models_dir)


def read_crop(path: Path) -> np.ndarray:
    """face/crop.png -> (H, W, 3) uint8 RGB over white."""
    img = Image.open(path)
    if img.mode in ("RGBA", "LA", "PA", "P"):
        img = img.convert("RGBA")
        rgba = np.asarray(img).astype(np.float32)
        a = rgba[..., 3:4] / 255.0
        return np.clip(rgba[..., :3] * a + 255.0 * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(img.convert("RGB"))


def _rings_fingerprint(ctx, opts: MultiviewOptions) -> str:
    """What a finished ring depends on: the options, the crop, the head pose and the converted weights."""
    h = hashlib.sha256(json.dumps(dataclasses.asdict(opts), sort_keys=True).encode())
    for rel in ("face/crop.png", "face/analysis.json"):
        h.update(sha256_tree(ctx.path(rel)).encode())
    for stage_name in ("low", "high"):
        info = _models_dir(opts) / f"{stage_name}_stage" / "idts_stage.json"
        h.update(info.read_bytes() if info.is_file() else b"-")
    return h.hexdigest()


@stage("multiview", inputs=("face/crop.png", "face/analysis.json"), outputs=("views",),
       options=MultiviewOptions, version="1")
def run_multiview(ctx, pipeline=None) -> dict:
    opts: MultiviewOptions = ctx.options
    if (opts.rings not in ("all", "input") or opts.other_rings not in ("splat", "portrait", "none")
            or opts.matte not in ("auto", "birefnet", "white")):
        raise JobError("multiview.rings must be all|input, multiview.other_rings portrait|none and multiview.matte "
                       "auto|birefnet|white.", code="job.bad_option")
    if opts.other_rings == "splat" and opts.seed_fit_steps < 1:
        raise JobError("multiview.seed_fit_steps must be at least 1.", code="job.bad_option")
    crop_path = ctx.path("face/crop.png")
    if not crop_path.is_file():
        raise StageError("face/crop.png is missing: run the face stage first.", code="stage.missing_input")
    ctx.progress(0.0, "Loading the ID-TS models")
    pipe = pipeline or orbit.load_pipeline(opts, on_warning=lambda m: ctx.warn(m, code="multiview.memory"))
    crop = read_crop(crop_path)

    analysis = ctx.path("face/analysis.json")
    pose = (json.loads(analysis.read_text()).get("face") or {}).get("pose") if analysis.is_file() else None
    if not pose or "yaw_deg" not in pose:
        ctx.note("no head pose in face/analysis.json: the portrait is taken as a frontal view at elevation 0")
    azimuth, elevation = orbit.viewpoint(pose)
    input_ring, why = orbit.choose_input_ring(elevation, opts.elevation)
    ctx.note(f"input view at azimuth {azimuth:.1f}°, elevation {elevation:.1f}° → input ring {input_ring} "
             f"(elevation {cameras.ELEVATIONS_DEG[input_ring]:g}°, {why}); the orbit is turned by {azimuth:.1f}° "
             "about +Z")
    rings = orbit.ring_order(input_ring, "input" if opts.other_rings == "none" else opts.rings)
    note = orbit.other_rings_note(rings, opts)
    if note:
        ctx.note(note)

    views_dir = ctx.path("views")
    views_dir.mkdir(parents=True, exist_ok=True)
    resume = RingProgress(views_dir, _rings_fingerprint(ctx, opts))  # rings kept from an interrupted run
    done: dict[int, np.ndarray] = {}
    timings, seed_timings, matte_used = [], [], None
    events = orbit.generate_orbit(pipe, crop, rings, azimuth, opts, kept=resume.kept(rings),
                                  check_cancel=ctx.check_cancel, warn=lambda m, code: ctx.warn(m, code=code),
                                  progress=lambda f, m: ctx.progress(0.02 + 0.96 * f, m))
    for item in events:
        label = f"ring {item.index} ({cameras.ELEVATIONS_DEG[item.index]:g}°)"
        if isinstance(item, orbit.SeedView):  # the input view this ring is generated from
            seed_path = views_dir / "seeds" / f"ring_{item.index}.png"
            write_image(seed_path, Image.fromarray(item.image))
            seed_timings.append(item.seconds)
            ctx.progress(0.02 + 0.96 * len(done) / len(rings), f"ring {item.index}: input view rendered",
                         preview=seed_path)
            continue
        if not item.kept:
            resume.add(item.index, item.rgba, item.matte, item.seconds)
        done[item.index], matte_used = item.rgba, item.matte
        timings.append(item.seconds)
        ctx.progress(0.02 + 0.96 * len(done) / len(rings),
                     f"{label} kept from the interrupted run" if item.kept else f"{label} written",
                     preview=views_dir / f"{cameras.view_index(item.index, 0):03d}.png")

    size = int(next(iter(done.values())).shape[1])
    cams = cameras.rig_cameras(size=size, rings=sorted(done), yaw_deg=azimuth)
    cameras.save_cameras_json(views_dir / "cameras.json", cams, input_ring=input_ring, ring_order=rings,
                              generator="ID-TS (HQ-Head on diffusers)", input_view_azimuth=azimuth,
                              input_view_elevation=elevation, other_rings=opts.other_rings, matte=matte_used)
    ctx.progress(1.0, f"{len(done) * cameras.VIEWS_PER_RING} views written",
                 preview=views_dir / f"{cameras.view_index(input_ring, 0):03d}.png")
    return {"views": len(done) * cameras.VIEWS_PER_RING, "size": size, "input_ring": input_ring,
            "ring_order": rings, "seconds_per_ring": timings, "seed_fit_seconds": seed_timings,
            "unet_calls": pipe.unet_calls, "memory_mode": pipe.memory, "matte": matte_used,
            "cross_ring_l1": orbit.cross_ring_l1({e: v[..., :3] for e, v in done.items()})}
