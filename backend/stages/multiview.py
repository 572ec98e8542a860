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

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import cameras
from ..errors import JobError, ModelMissingError, StageError
from ..fileio import sha256_file, write_image, write_json
from ..idts.readiness import weights_dir
from ..idts.stage_folder import missing_files
from ..job import stage

CONVERT_HINT = ("Convert HQ-Head's released checkpoints once: python -m headforge.backend.idts.converter "
                "--low low_stage.pt --high high_stage.pt --out <models>/idts (plus --open-clip/--clip-l/"
                "--aesthetic/--arcface for sub-files the .pt files lack), or set multiview.models_dir.")


@dataclass
class MultiviewOptions:
    models_dir: str = ""  # folder holding low_stage/ and high_stage/ ("" = $HEADFORGE_MODELS/idts)
    seed: int = 0
    steps: int = 25
    rings: str = "all"  # all | input
    other_rings: str = "splat"  # splat | portrait | none  (how rings other than the input ring get an input view)
    seed_fit_steps: int = 300  # "splat": fit steps for each seed view (gsplat on CUDA, PyTorch rasterizer on CPU)
    seed_fit_points: int = 20_000  # "splat": initial Gaussians of each seed fit
    stage2: bool = True  # False: stage 1 only (256 px views)
    device: str = "auto"  # auto | cuda | cpu | cuda:N
    precision: str = "auto"  # auto (fp16 on CUDA, fp32 on CPU) | fp16 | bf16 | fp32
    memory: str = "balanced"  # fast | balanced | low (see backend/idts/pipeline.py)
    aesthetic_score: float = -1.0  # < 0: predicted from the image, as the reference does
    matte: str = "auto"  # auto | birefnet | white: the views' alpha (auto: BiRefNet when installed, else white key)
    # the input ring's elevation in degrees; auto: from the head pose (choose_input_ring)
    elevation: str = field(default="auto",
                           metadata={"choices": ("auto",) + tuple(f"{e:g}" for e in cameras.ELEVATIONS_DEG)})


def _models_dir(opts: MultiviewOptions) -> Path:
    return weights_dir(opts.models_dir)


def viewpoint_from_analysis(path: Path) -> tuple[float, float, str]:
    """(azimuth, elevation) in degrees of the photo's camera seen from the head (DESIGN's world frame), and a note.

    yaw > 0 (subject turned toward their own left) puts the camera at azimuth −yaw; pitch > 0 (looking up) puts it
    at elevation −pitch (backend/face/pose.py conventions).
    """
    if not path.is_file():
        return 0.0, 0.0, "face/analysis.json absent: the portrait is taken as a frontal view at elevation 0"
    pose = (json.loads(path.read_text()).get("face") or {}).get("pose") or {}
    if "yaw_deg" not in pose:
        return 0.0, 0.0, "no head pose in face/analysis.json: the portrait is taken as a frontal view at elevation 0"
    return -float(pose["yaw_deg"]), -float(pose.get("pitch_deg", 0.0)), ""


# Auto keeps the 0° ring (the reference's default, its examples' ring) for estimates within this many degrees of level.
# Nearest-ring would switch at ±5°, inside the estimator's spread on real portraits: the reference's frontal example
# fixtures/idts/framing/0001.png reads 13.8° above with all three pose estimators (tests/face/test_pose.py).
LEVEL_WINDOW_DEG = 15.0


def choose_input_ring(elevation: float, setting: str = "auto") -> tuple[int, str]:
    """The ring (index into cameras.ELEVATIONS_DEG) that ID-TS is conditioned on, and why, for a portrait seen from
    `elevation` degrees. `setting` is multiview.elevation: "auto", or a ring's elevation that overrides the pose."""
    if setting != "auto":
        return cameras.ELEVATIONS_DEG.index(float(setting)), "set by multiview.elevation"
    if abs(elevation) < LEVEL_WINDOW_DEG:
        return cameras.ELEVATIONS_DEG.index(0.0), (f"within {LEVEL_WINDOW_DEG:g}° of level: the frontal ring; "
                                              "--set multiview.elevation=N picks another")
    return int(np.argmin([abs(e - elevation) for e in cameras.ELEVATIONS_DEG])), "the nearest ring"


def ring_order(input_ring: int, rings: str) -> list[int]:
    """The input ring first, then the others by distance in elevation (ties: the lower ring first)."""
    if rings == "input":
        return [input_ring]
    return sorted(range(len(cameras.ELEVATIONS_DEG)), key=lambda e: (abs(e - input_ring), e))


def _device_and_dtype(opts: MultiviewOptions):
    import torch

    device = opts.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise JobError("multiview.device asks for CUDA but no CUDA device is available.", code="job.bad_option")
    precision = opts.precision
    if precision == "auto":
        precision = "fp16" if device.startswith("cuda") else "fp32"
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if precision not in dtypes:
        raise JobError(f"multiview.precision must be one of auto, {', '.join(dtypes)}.", code="job.bad_option")
    return torch.device(device), dtypes[precision]


def load_pipeline(opts: MultiviewOptions, on_warning=None):
    """The ID-TS pipeline from the converted folders; ModelMissingError naming what is absent."""
    from ..idts.pipeline import IDTSPipeline, ModelFilesMissing, StageModels

    folder = _models_dir(opts)
    needed = ["low"] + (["high"] if opts.stage2 else [])
    missing = [m for s in needed for m in missing_files(folder / f"{s}_stage")]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise ModelMissingError(f"The ID-TS multi-view weights are not installed: missing {shown}.",
                                code="model.missing", hint=CONVERT_HINT)
    device, dtype = _device_and_dtype(opts)
    try:
        low = StageModels.from_pretrained(folder / "low_stage", "low", dtype=dtype)
        high = StageModels.from_pretrained(folder / "high_stage", "high", dtype=dtype) if opts.stage2 else None
    except ModelFilesMissing as e:
        raise ModelMissingError(str(e), code="model.missing", hint=CONVERT_HINT) from e
    except ValueError as e:  # a folder of the other stage
        raise ModelMissingError(str(e), code="model.wrong_stage", hint=CONVERT_HINT) from e
    return IDTSPipeline(low, high, num_steps=opts.steps, device=device, memory=opts.memory,
                        aesthetic_score=None if opts.aesthetic_score < 0 else opts.aesthetic_score,
                        on_warning=on_warning)


def read_crop(path: Path) -> np.ndarray:
    """face/crop.png -> (H, W, 3) uint8 RGB over white."""
    from PIL import Image

    img = Image.open(path)
    if img.mode in ("RGBA", "LA", "PA", "P"):
        img = img.convert("RGBA")
        rgba = np.asarray(img).astype(np.float32)
        a = rgba[..., 3:4] / 255.0
        return np.clip(rgba[..., :3] * a + 255.0 * (1 - a) + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(img.convert("RGB"))


def white_key_alpha(rgb: np.ndarray, lo: float = 0.03, hi: float = 0.10) -> np.ndarray:
    """Alpha of a head generated over a white background: ramp on the largest channel's distance from white,
    holes inside the silhouette (white of the eyes, highlights) filled. rgb (H, W, 3) uint8 -> (H, W) float32."""
    from scipy import ndimage

    d = (255.0 - rgb.astype(np.float32)).max(axis=2) / 255.0
    alpha = np.clip((d - lo) / (hi - lo), 0.0, 1.0)
    solid = ndimage.binary_fill_holes(alpha > 0.5)
    return np.where(solid & (alpha <= 0.5), 1.0, alpha).astype(np.float32)


def view_mattes(frames: np.ndarray, method: str) -> tuple[np.ndarray, str]:
    """Alpha (V, H, W) float32 for generated views (V, H, W, 3) uint8, and the method used. BiRefNet is what the
    reference runs on its views (SPEC 4.11); the white key is the offline fallback."""
    if method in ("auto", "birefnet"):
        from ..face.matte import birefnet_matte, find_birefnet

        path = find_birefnet()
        if path is not None:
            return np.stack([birefnet_matte(f, path) for f in frames]), "birefnet"
        if method == "birefnet":
            raise ModelMissingError("multiview.matte = birefnet but no BiRefNet model is installed.",
                                    code="model.missing", hint="Download it from the add-on preferences or use "
                                    "matte = auto/white.")
    return np.stack([white_key_alpha(f) for f in frames]), "white"


def splat_seed_view(rings_rgba: dict[int, np.ndarray], ring: int, yaw_deg: float, opts: MultiviewOptions,
                    check_cancel=None) -> np.ndarray:
    """Input view for `ring`: fit Gaussians to the generated rings (RGBA (16, S, S, 4) uint8 each, rig cameras
    turned by `yaw_deg`) and render the ring's frame-0 camera over white -> (S, S, 3) uint8."""
    import torch

    from ..splat.optimize import FitConfig, choose_device, fit
    from ..splat.rasterize import rasterize

    done = sorted(rings_rgba)
    size = int(rings_rgba[done[0]].shape[1])
    cams = cameras.rig_cameras(size=size, rings=done, yaw_deg=yaw_deg)
    views = torch.from_numpy(np.concatenate([rings_rgba[e] for e in done])).float() / 255.0  # [V, S, S, 4]
    views[..., :3] *= (views[..., 3:] > 0)
    viewmats = torch.tensor(np.stack([c["w2c"] for c in cams]), dtype=torch.float32)
    Ks = torch.tensor(np.stack([c["K"] for c in cams]), dtype=torch.float32)
    device = opts.device if opts.device != "auto" else "auto"
    cfg = FitConfig.ours(opts.seed_fit_steps, sh_degree=1, holdout_every=0, init_points=opts.seed_fit_points,
                         seed=opts.seed, device=device, preview_every=10 ** 9, checkpoint_every=0,
                         hull_resolution=min(64, max(16, size // 2)))
    sp = fit(views, viewmats, Ks, cfg, check_cancel=check_cancel).splat
    target = cameras.rig_cameras(size=size, rings=[ring], yaw_deg=yaw_deg)[0]
    dev = choose_device(cfg.device)
    t = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dev) for k, v in sp.items()}
    with torch.no_grad():
        rgb, _, _ = rasterize(t["means"], t["quats"], torch.exp(t["log_scales"]), torch.sigmoid(t["opacity_logits"]),
                              t["sh"], torch.tensor(target["w2c"], dtype=torch.float32, device=dev)[None],
                              torch.tensor(target["K"], dtype=torch.float32, device=dev)[None], size, size,
                              sh_degree=1, backgrounds=torch.ones(3, device=dev))
    return (rgb[0].clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def _rings_fingerprint(ctx, opts: MultiviewOptions) -> str:
    """What a finished ring depends on: the options, the crop, the head pose and the converted weights."""
    import dataclasses
    import hashlib

    from ..fileio import sha256_tree

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
    from PIL import Image

    files = _ring_files(views_dir, ring)
    if hashes is None or [sha256_file(f) if f.is_file() else "" for f in files] != hashes:
        return None
    try:
        views = [np.asarray(Image.open(f).convert("RGBA")) for f in files]
    except OSError:
        return None
    return np.stack(views) if len({v.shape for v in views}) == 1 else None


def cross_ring_l1(rings: dict[int, np.ndarray]) -> dict[str, float]:
    """Where rings meet (same azimuth index, neighbouring elevations): mean |difference| of the two views in [0, 1],
    averaged over the 16 azimuths. A proxy for cross-ring consistency (views 10° apart are not identical)."""
    out = {}
    for e in sorted(rings):
        if e + 1 in rings:
            a, b = rings[e].astype(np.float32) / 255.0, rings[e + 1].astype(np.float32) / 255.0
            if a.shape != b.shape:
                continue
            out[f"{cameras.ELEVATIONS_DEG[e]:g}/{cameras.ELEVATIONS_DEG[e + 1]:g}"] = float(np.abs(a - b).mean())
    return out


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
    pipe = pipeline or load_pipeline(opts, on_warning=lambda m: ctx.warn(m, code="multiview.memory"))
    crop = read_crop(crop_path)

    azimuth, elevation, pose_note = viewpoint_from_analysis(ctx.path("face/analysis.json"))
    if pose_note:
        ctx.note(pose_note)
    input_ring, why = choose_input_ring(elevation, opts.elevation)
    ctx.note(f"input view at azimuth {azimuth:.1f}°, elevation {elevation:.1f}° → input ring {input_ring} "
             f"(elevation {cameras.ELEVATIONS_DEG[input_ring]:g}°, {why}); the orbit is turned by {azimuth:.1f}° "
             "about +Z")
    rings = ring_order(input_ring, "input" if opts.other_rings == "none" else opts.rings)
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
    stages_per_ring = 2 if pipe.high is not None else 1
    total = len(rings) * stages_per_ring * pipe.num_steps
    done_rings: dict[int, np.ndarray] = {}
    done_rgba: dict[int, np.ndarray] = {}
    timings, seed_timings = [], []
    matte_used = None
    for r_i, e in enumerate(rings):
        started = time.time()
        kept = _load_ring(views_dir, e, state["rings"][str(e)].get("sha256")) if str(e) in state["rings"] else None
        if kept is not None:
            done_rgba[e], done_rings[e] = kept, kept[..., :3]
            matte_used = state["rings"][str(e)]["matte"]
            timings.append(0.0)
            ctx.progress(0.02 + 0.96 * (r_i + 1) / len(rings), f"ring {e} ({cameras.ELEVATIONS_DEG[e]:g}°) kept from "
                         "the interrupted run", preview=views_dir / f"{cameras.view_index(e, 0):03d}.png")
            continue
        source = crop
        if r_i > 0 and opts.other_rings == "splat":
            ctx.progress(0.02 + 0.96 * r_i / len(rings), f"ring {e} ({cameras.ELEVATIONS_DEG[e]:g}°): fitting "
                         f"Gaussians to {len(done_rgba)} ring(s) for its input view")
            try:
                source = splat_seed_view(done_rgba, e, azimuth, opts, check_cancel=ctx.check_cancel)
            except StageError as exc:  # e.g. empty masks or hull: this ring falls back to the portrait
                ctx.warn(f"ring {e}: no seed view from Gaussians ({exc.message}); using the portrait crop",
                         code="multiview.seed_fallback")
            else:
                seed_path = views_dir / "seeds" / f"ring_{e}.png"  # the input view this ring was generated from
                from PIL import Image

                write_image(seed_path, Image.fromarray(source))
                ctx.progress(0.02 + 0.96 * r_i / len(rings), f"ring {e}: input view rendered", preview=seed_path)
            seed_timings.append(round(time.time() - started, 3))

        def on_step(stage_name, step, n, r_i=r_i, e=e):
            k = r_i * stages_per_ring * n + (0 if stage_name == "low" else n) + step + 1
            ctx.progress(0.02 + 0.96 * k / total, f"ring {e} ({cameras.ELEVATIONS_DEG[e]:g}°), {stage_name} stage, "
                         f"step {step + 1}/{n}")  # also checks for cancel between steps

        result = pipe.generate_ring(source, cameras.ELEVATIONS_DEG[e], seed=opts.seed + 1000 * e, callback=on_step)
        frames = result.frames
        alphas, matte_used = view_mattes(frames, opts.matte)
        from PIL import Image

        for k in range(cameras.VIEWS_PER_RING):
            a8 = np.clip(alphas[k] * 255.0 + 0.5, 0, 255).astype(np.uint8)[..., None]
            rgba = np.concatenate([frames[k], a8], axis=2)  # straight RGBA: colour as generated (over white)
            write_image(views_dir / f"{cameras.view_index(e, k):03d}.png", Image.fromarray(rgba, "RGBA"))
        done_rings[e] = frames
        done_rgba[e] = np.concatenate([frames, np.clip(alphas * 255.0 + 0.5, 0, 255).astype(np.uint8)[..., None]], 3)
        timings.append(round(time.time() - started, 3))
        state["rings"][str(e)] = {"matte": matte_used, "seconds": timings[-1],
                                  "sha256": [sha256_file(f) for f in _ring_files(views_dir, e)]}
        write_json(progress_path, state)
        ctx.progress(0.02 + 0.96 * (r_i + 1) / len(rings), f"ring {e} ({cameras.ELEVATIONS_DEG[e]:g}°) written",
                     preview=views_dir / f"{cameras.view_index(e, 0):03d}.png")

    size = int(next(iter(done_rings.values())).shape[1])
    cams = cameras.rig_cameras(size=size, rings=sorted(done_rings), yaw_deg=azimuth)
    cameras.save_cameras_json(views_dir / "cameras.json", cams, input_ring=input_ring, ring_order=rings,
                          generator="ID-TS (HQ-Head on diffusers)", input_view_azimuth=azimuth,
                          input_view_elevation=elevation, other_rings=opts.other_rings, matte=matte_used)
    ctx.progress(1.0, f"{len(done_rings) * cameras.VIEWS_PER_RING} views written",
                 preview=views_dir / f"{cameras.view_index(input_ring, 0):03d}.png")
    return {"views": len(done_rings) * cameras.VIEWS_PER_RING, "size": size, "input_ring": input_ring,
            "ring_order": rings, "seconds_per_ring": timings, "seed_fit_seconds": seed_timings,
            "unet_calls": pipe.unet_calls,
            "memory_mode": pipe.memory, "matte": matte_used, "cross_ring_l1": cross_ring_l1(done_rings)}
