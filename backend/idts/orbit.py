"""The 96-view orbit from one portrait crop with ID-TS (SPEC 4), without a job folder: which ring the portrait
belongs to (`choose_input_ring`), the order the rings are made in (`ring_order`), each ring's input view (the
portrait, or `splat_seed_view`: a render of Gaussians fitted to the rings made so far), the views' mattes
(`view_mattes`), the converted weights as a pipeline (`load_pipeline`) and how far neighbouring rings agree
(`cross_ring_l1`). `generate_orbit` runs it ring by ring; backend/stages/multiview.py reads the crop and the pose,
calls it and writes each ring as it arrives.

Each elevation ring is one two-stage ID-TS run (16 frames at 256 px, then 512 px). The released model makes the ring
that contains its input view, at that view's elevation, with frame 0 = the input view; the whole orbit is turned by
the head's yaw so frame 0 sits at the portrait's viewpoint and the head faces −Y. The other rings need an input view
at their elevation (multiview.other_rings):
  "splat":    a render, from that ring's frame-0 camera, of Gaussians fitted (backend/splat) to the rings made so
              far; rings go outward from the input ring, so each is seeded from its neighbours,
  "portrait": the portrait crop itself, conditioned on that ring's elevation (fast, no fit, but its geometry only
              approximates the other rings'),
  "none":     the input ring only (16 views).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from scipy import ndimage

from .. import cameras
from ..errors import JobError, ModelMissingError, StageError
from ..face.matte import birefnet_matte, find_birefnet
from .readiness import weights_dir
from .stage_folder import missing_files

CONVERT_HINT = ("Convert HQ-Head's released checkpoints once: python -m headforge.backend.idts.converter "
                "--low low_stage.pt --high high_stage.pt --out <models>/idts (plus --open-clip/--clip-l/"
                "--aesthetic/--arcface for sub-files the .pt files lack), or set multiview.models_dir.")


def viewpoint(pose: dict | None) -> tuple[float, float]:
    """(azimuth, elevation) in degrees of the photo's camera seen from the head (DESIGN's world frame) for the face
    stage's head pose (None: a frontal view at elevation 0).

    yaw > 0 (subject turned toward their own left) puts the camera at azimuth −yaw; pitch > 0 (looking up) puts it
    at elevation −pitch (backend/face/pose.py conventions).
    """
    if not pose or "yaw_deg" not in pose:
        return 0.0, 0.0
    return -float(pose["yaw_deg"]), -float(pose.get("pitch_deg", 0.0))


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


def _device_and_dtype(opts):
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


def load_pipeline(opts, on_warning=None):
    """The ID-TS pipeline from the converted folders for the multiview options `opts` (models_dir, stage2, steps,
    device, precision, memory, aesthetic_score); ModelMissingError naming what is absent."""
    from .pipeline import IDTSPipeline, ModelFilesMissing, StageModels  # torch: see splat_seed_view

    folder = weights_dir(opts.models_dir)
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


def other_rings_note(rings: list[int], opts) -> str:
    """One line for job.json on how the rings other than the input ring got their input view ("" when none)."""
    if len(rings) > 1 and opts.other_rings == "portrait":
        return ("rings other than the input ring were generated from the portrait crop conditioned on their own "
                "elevation (other_rings = portrait); their consistency with the input ring is approximate, see "
                "metrics.cross_ring_l1")
    if len(rings) > 1:
        return (f"rings other than the input ring were seeded by renders of Gaussians fitted to the rings already "
                f"generated ({opts.seed_fit_steps} steps each), from each ring's frame-0 camera")
    return "only the input ring was generated (other_rings = none)" if opts.rings == "all" else ""


def white_key_alpha(rgb: np.ndarray, lo: float = 0.03, hi: float = 0.10) -> np.ndarray:
    """Alpha of a head generated over a white background: ramp on the largest channel's distance from white,
    holes inside the silhouette (white of the eyes, highlights) filled. rgb (H, W, 3) uint8 -> (H, W) float32."""
    d = (255.0 - rgb.astype(np.float32)).max(axis=2) / 255.0
    alpha = np.clip((d - lo) / (hi - lo), 0.0, 1.0)
    solid = ndimage.binary_fill_holes(alpha > 0.5)
    return np.where(solid & (alpha <= 0.5), 1.0, alpha).astype(np.float32)


def view_mattes(frames: np.ndarray, method: str) -> tuple[np.ndarray, str]:
    """Alpha (V, H, W) float32 for generated views (V, H, W, 3) uint8, and the method used. BiRefNet is what the
    reference runs on its views (SPEC 4.11); the white key is the offline fallback."""
    if method in ("auto", "birefnet"):
        path = find_birefnet()
        if path is not None:
            return np.stack([birefnet_matte(f, path) for f in frames]), "birefnet"
        if method == "birefnet":
            raise ModelMissingError("multiview.matte = birefnet but no BiRefNet model is installed.",
                                    code="model.missing", hint="Download it from the add-on preferences or use "
                                    "matte = auto/white.")
    return np.stack([white_key_alpha(f) for f in frames]), "white"


def splat_seed_view(rings_rgba: dict[int, np.ndarray], ring: int, yaw_deg: float, opts,
                    check_cancel=None) -> np.ndarray:
    """Input view for `ring`: fit Gaussians to the generated rings (RGBA (16, S, S, 4) uint8 each, rig cameras
    turned by `yaw_deg`) and render the ring's frame-0 camera over white -> (S, S, 3) uint8. `opts`: the
    multiview options (seed_fit_steps, seed_fit_points, seed, device)."""
    # torch only here: the multiview stage (and so this module) is imported by job planning and the doctor,
    # which must not cost a torch import
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


@dataclass
class Ring:
    """One finished ring: its index, the 16 views as generated (RGBA (16, S, S, 4) uint8, frame 0 = the input
    view's azimuth), the matte method and the seconds it took (0 for a ring kept from before)."""
    index: int
    rgba: np.ndarray
    matte: str
    seconds: float
    kept: bool = False


@dataclass
class SeedView:
    """The input view rendered for a ring (S, S, 3) uint8, before the ring is generated."""
    index: int
    image: np.ndarray
    seconds: float


def generate_orbit(pipe, crop: np.ndarray, rings: list[int], azimuth: float, opts, *,
                   kept: dict[int, tuple[np.ndarray, str]] | None = None,
                   progress: Callable = lambda f, m: None, warn: Callable = lambda m, code: None,
                   check_cancel: Callable | None = None) -> Iterator[Ring | SeedView]:
    """Generate `rings` (ring indices, the input ring first) with the ID-TS pipeline `pipe` from the portrait `crop`
    (H, W, 3) uint8, the orbit turned by `azimuth`; yields each ring (and, with other_rings = splat, each seed view
    just before its ring) as soon as it is made. `kept`: {ring: (rgba, matte)} finished earlier, yielded as they
    are. `opts`: the multiview options (other_rings, seed, seed_fit_steps, seed_fit_points, device, matte).
    `progress(fraction, message)` is called between diffusion steps (the caller's cancel check)."""
    kept = kept or {}
    per_ring = 2 if pipe.high is not None else 1
    total = len(rings) * per_ring * pipe.num_steps
    done: dict[int, np.ndarray] = {}
    for r_i, e in enumerate(rings):
        started = time.time()
        label = f"ring {e} ({cameras.ELEVATIONS_DEG[e]:g}°)"
        if e in kept:
            done[e] = kept[e][0]
            yield Ring(e, kept[e][0], kept[e][1], 0.0, kept=True)
            continue
        source = crop
        if r_i > 0 and opts.other_rings == "splat":
            progress(r_i / len(rings), f"{label}: fitting Gaussians to {len(done)} ring(s) for its input view")
            try:
                source = splat_seed_view(done, e, azimuth, opts, check_cancel=check_cancel)
            except StageError as exc:  # e.g. empty masks or hull: this ring falls back to the portrait
                source = crop
                warn(f"ring {e}: no seed view from Gaussians ({exc.message}); using the portrait crop",
                     "multiview.seed_fallback")
            else:
                yield SeedView(e, source, round(time.time() - started, 3))

        def on_step(stage_name, step, n, r_i=r_i, label=label):
            k = r_i * per_ring * n + (0 if stage_name == "low" else n) + step + 1
            progress(k / total, f"{label}, {stage_name} stage, step {step + 1}/{n}")

        frames = pipe.generate_ring(source, cameras.ELEVATIONS_DEG[e], seed=opts.seed + 1000 * e,
                                    callback=on_step).frames
        alphas, matte = view_mattes(frames, opts.matte)
        done[e] = np.concatenate([frames, np.clip(alphas * 255.0 + 0.5, 0, 255).astype(np.uint8)[..., None]], 3)
        yield Ring(e, done[e], matte, round(time.time() - started, 3))
