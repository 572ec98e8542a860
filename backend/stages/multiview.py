"""Stage `multiview` (ID-TS): `face/crop.png` → `views/NNN.png` + `views/cameras.json`, the 96-view orbit.

Each elevation ring is one two-stage ID-TS run (16 frames at 256 px, then 512 px; SPEC 4). The released model
makes the ring that contains its input view, at that view's elevation, with frame 0 = the input view. The input
ring is chosen from the portrait's own viewpoint (head pose from `face/analysis.json`; `choose_input_ring`), and the
whole orbit is turned by the head's yaw so frame 0 sits at the portrait's viewpoint and the head faces −Y.
The other rings need an input view at their elevation. `other_rings`:
  "splat":    a render, from that ring's frame-0 camera, of Gaussians fitted (backend/splat) to the rings
              generated so far; rings go outward from the input ring, so each is seeded from its neighbours
              (the seed views are kept as views/seeds/ring_<e>.png),
  "portrait": the portrait crop itself, conditioned on that ring's elevation (fast, no fit, but its geometry only
              approximates the other rings'; recorded as a note in job.json),
  "none":     the input ring only (16 views).
View i = 16·ring + k is written as `views/{i:03d}.png` (RGBA: the generated colour, and the head's matte from
BiRefNet as in the reference, or a white-background key offline) as soon as its ring finishes; `cameras.json`
(OpenCV, DESIGN's world) lists the written views. A re-run after a cancel or crash keeps the rings already
finished when the inputs, options and weights are unchanged (`views/.rings.json`).
Weights: converted folders `<models>/idts/low_stage` and `high_stage`
(see `python -m headforge.backend.idts.converter --help`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import cameras
from ..errors import JobError, StageError
from ..fileio import sha256_file, sha256_tree, write_image, write_json
from ..idts import orbit
from ..idts.readiness import weights_dir
from ..job import stage

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
    from PIL import Image  # Pillow lazily, as every stage: job planning and the doctor import the stages

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


def _ring_files(views_dir: Path, ring: int) -> list[Path]:
    return [views_dir / f"{cameras.view_index(ring, k):03d}.png" for k in range(cameras.VIEWS_PER_RING)]


def _load_ring(views_dir: Path, ring: int, hashes: list[str] | None) -> np.ndarray | None:
    """The 16 RGBA views (16, S, S, 4) uint8 of a ring written before, or None if any is missing, unreadable or
    no longer the file that was written (`hashes`: their sha256 as recorded then)."""
    from PIL import Image  # see read_crop

    files = _ring_files(views_dir, ring)
    if hashes is None or [sha256_file(f) if f.is_file() else "" for f in files] != hashes:
        return None
    try:
        views = [np.asarray(Image.open(f).convert("RGBA")) for f in files]
    except OSError:
        return None
    return np.stack(views) if len({v.shape for v in views}) == 1 else None


@stage("multiview", inputs=("face/crop.png", "face/analysis.json"), outputs=("views",),
       options=MultiviewOptions, version="1")
def run_multiview(ctx, pipeline=None) -> dict:
    from PIL import Image  # see read_crop

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
    if len(rings) > 1 and opts.other_rings == "portrait":
        ctx.note("rings other than the input ring were generated from the portrait crop conditioned on their own "
                 "elevation (other_rings = portrait); their consistency with the input ring is approximate, see "
                 "metrics.cross_ring_l1")
    elif len(rings) > 1:
        ctx.note(f"rings other than the input ring were seeded by renders of Gaussians fitted to the rings already "
                 f"generated ({opts.seed_fit_steps} steps each), from each ring's frame-0 camera")
    elif opts.rings == "all":
        ctx.note("only the input ring was generated (other_rings = none)")

    views_dir = ctx.path("views")
    views_dir.mkdir(parents=True, exist_ok=True)
    # Ring-level resume: rings finished by an interrupted run with the same inputs and options are kept.
    progress_path = views_dir / ".rings.json"  # a dot-file: not an artifact, not hashed by the runner
    fingerprint = _rings_fingerprint(ctx, opts)
    state = json.loads(progress_path.read_text()) if progress_path.is_file() else {}
    if state.get("fingerprint") != fingerprint:
        for old in [*views_dir.glob("[0-9][0-9][0-9].png"), *views_dir.glob("seeds/ring_*.png")]:
            old.unlink()
        state = {"fingerprint": fingerprint, "rings": {}}
        write_json(progress_path, state)
    kept = {}
    for e in rings:
        rec = state["rings"].get(str(e))
        rgba = _load_ring(views_dir, e, rec.get("sha256")) if rec else None
        if rgba is not None:
            kept[e] = (rgba, rec["matte"])

    done: dict[int, np.ndarray] = {}
    timings, seed_timings, matte_used = [], [], None
    events = orbit.generate_orbit(pipe, crop, rings, azimuth, opts, kept=kept, check_cancel=ctx.check_cancel,
                                  progress=lambda f, m: ctx.progress(0.02 + 0.96 * f, m),
                                  warn=lambda m, code: ctx.warn(m, code=code))
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
            for k in range(cameras.VIEWS_PER_RING):  # straight RGBA: colour as generated (over white), the matte
                write_image(views_dir / f"{cameras.view_index(item.index, k):03d}.png",
                            Image.fromarray(item.rgba[k], "RGBA"))
            state["rings"][str(item.index)] = {"matte": item.matte, "seconds": item.seconds,
                                               "sha256": [sha256_file(f) for f in _ring_files(views_dir, item.index)]}
            write_json(progress_path, state)
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
