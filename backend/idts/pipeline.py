"""ID-TS ring generation: portrait crop -> 16 views of one elevation ring (stage 1 at 256 px, stage 2 at 512 px).

`StageModels` holds one stage's converted models (a folder written by `converter.convert_checkpoint`);
`IDTSPipeline.generate_ring` runs SPEC 4.2-4.9 with a CPU generator (seedable, device-independent noise), drawn
in the reference's order: stage 1: cond-frame noise, initial noise; stage 2: cond-frame noise, posterior eps,
initial noise (`run_stage` takes the draws from any `noise(shape)` source: the parity tests feed the fixtures').
Memory modes (`MEMORY_MODES`): "fast" keeps both stages on the device; "balanced" (default) keeps only the
running stage there (model CPU offload between stages) and runs the VAE on 4 frames at a time; "low" also runs
the guidance halves as two UNet calls and the VAE on one frame at a time. Out of GPU memory, a ring is retried
in the next mode and `on_warning` says so.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from diffusers import AutoencoderKL
from transformers import CLIPVisionModelWithProjection

from .aesthetic import AestheticMLP
from .conditioner import COND_AUG, IDTSConditioner
from .frames import prepare_frame, resize_u8, to_signed
from .identity import IdentityEncoder
from .sampler import edm_sigmas, guidance_scale, sample_euler
from .stage_folder import missing_files
from .unet import IDTSUNet
from .vae import decode, encode_sample, to_uint8

MEMORY_MODES = ("fast", "balanced", "low")
STAGE_RESOLUTION = {"low": 256, "high": 512}


class ModelFilesMissing(FileNotFoundError):
    """Converted weights are absent or incomplete; `missing` lists the paths."""

    def __init__(self, message: str, missing: list[str]):
        super().__init__(message)
        self.missing = missing


@dataclass
class StageModels:
    """The models of one stage ('low' or 'high')."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    conditioner: IDTSConditioner
    stage: str
    resolution: int

    @classmethod
    def from_components(cls, parts: dict, stage: str, resolution: int | None = None,
                        vector_chunk: int = 256) -> "StageModels":
        cond = IDTSConditioner(parts["image_encoder"], parts["aesthetic_encoder"], parts["aesthetic_mlp"],
                               parts["identity_encoder"], parts["concat_vae"], chunk=vector_chunk)
        return cls(parts["unet"].eval(), parts["vae"].eval(), cond.eval(), stage,
                   resolution or STAGE_RESOLUTION[stage])

    @classmethod
    def from_pretrained(cls, folder: str | Path, stage: str, dtype: torch.dtype = torch.float16,
                        resolution: int | None = None) -> "StageModels":
        """Load a converted stage folder; checks it is complete and of the requested stage."""
        folder = Path(folder)
        missing = missing_files(folder)
        if missing:
            raise ModelFilesMissing(f"ID-TS {stage} stage weights incomplete in {folder}: missing {', '.join(missing)}",
                                    missing)
        info = json.loads((folder / "idts_stage.json").read_text())
        if info.get("stage") != stage:
            raise ValueError(f"{folder} holds the {info.get('stage')!r} stage (converted from {info.get('source')}), "
                             f"but the {stage!r} stage was requested")
        loaders = {"unet": IDTSUNet, "vae": AutoencoderKL, "concat_vae": AutoencoderKL,
                   "image_encoder": CLIPVisionModelWithProjection, "aesthetic_encoder": CLIPVisionModelWithProjection,
                   "aesthetic_mlp": AestheticMLP, "identity_encoder": IdentityEncoder}
        parts = {}
        for comp, loader in loaders.items():
            kw = {"attn_implementation": "sdpa"} if loader is CLIPVisionModelWithProjection else {}
            parts[comp] = loader.from_pretrained(str(folder / comp), torch_dtype=dtype, **kw)
        chunk = parts["unet"].config.projection_class_embeddings_input_dim // 3
        return cls.from_components(parts, stage, resolution or info.get("resolution"), vector_chunk=chunk)

    def modules(self) -> list[torch.nn.Module]:
        return [self.unet, self.vae, self.conditioner]

    def to(self, device: torch.device | str) -> "StageModels":
        for m in self.modules():
            m.to(device)
        return self


@dataclass
class RingResult:
    """One generated ring: uint8 RGB frames, frame t at relative azimuth AZ[t] (SPEC 4.8)."""

    elevation: float
    low: np.ndarray  # [T, R1, R1, 3]
    high: np.ndarray | None  # [T, R2, R2, 3]

    @property
    def frames(self) -> np.ndarray:
        return self.high if self.high is not None else self.low


class IDTSPipeline:
    """Portrait crop -> ring of views. low: stage-1 models; high: stage-2 models (None: stage 1 only)."""

    def __init__(self, low: StageModels, high: StageModels | None = None, num_frames: int = 16,
                 num_steps: int = 25, device: str | torch.device = "cpu", memory: str = "balanced",
                 aesthetic_score: float | None = None, on_warning: Callable[[str], None] | None = None):
        if memory not in MEMORY_MODES:
            raise ValueError(f"memory must be one of {MEMORY_MODES}, not {memory!r}")
        self.low, self.high = low, high
        self.num_frames, self.num_steps = num_frames, num_steps
        self.device = torch.device(device)
        self.memory = memory
        self.aesthetic_score = aesthetic_score
        self.on_warning = on_warning or (lambda msg: None)
        self._on_device: set[int] = set()
        self.unet_calls = 0
        self.timings: list[dict] = []  # per run_stage: {stage, condition_s, sample_s, decode_s} (device-synchronised)

    # -- device placement ---------------------------------------------------------------------------
    def _stages(self) -> list[StageModels]:
        return [s for s in (self.low, self.high) if s is not None]

    def activate(self, models: StageModels) -> None:
        """Put `models` on the device; in 'balanced'/'low' mode move the other stage back to the CPU first."""
        if self.memory != "fast":
            for other in self._stages():
                if other is not models and id(other) in self._on_device:
                    other.to("cpu")
                    self._on_device.discard(id(other))
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        if id(models) not in self._on_device:
            models.to(self.device)
            self._on_device.add(id(models))

    def _unet(self, models: StageModels) -> Callable:
        """The UNet called in its own dtype; sampler maths stays float32."""
        dtype = models.unet.dtype

        def call(x, t, context, vector, num_frames, image_only_indicator=None):
            self.unet_calls += 1
            # c_noise stays float32: the sinusoid is computed in float32 from it
            out = models.unet(x.to(dtype), t.float(), context.to(dtype), vector.to(dtype), num_frames=num_frames,
                              image_only_indicator=image_only_indicator)
            return out.float()

        return call

    # -- one stage ------------------------------------------------------------------------------------
    @torch.no_grad()
    def run_stage(self, models: StageModels, image_u8: np.ndarray, elevation: float,
                  noise: Callable[[tuple[int, ...]], torch.Tensor], stage1_frames: np.ndarray | None = None,
                  callback: Callable[[int, int], None] | None = None) -> np.ndarray:
        """One stage on a prepared RGB frame image_u8 [R, R, 3] -> frames [T, R, R, 3] uint8.

        noise(shape) -> standard-normal CPU tensor: the stage's random draws, in order (see the module docstring).

        stage1_frames [T, r, r, 3]: the stage-2 hand-off (upscaled, encoded, posterior-sampled, mixed 50/50 with noise).
        callback(step, num_steps) runs after every sampler step (raise from it to cancel).
        """
        clock = [self._now()]
        self.activate(models)
        dev, T = self.device, self.num_frames
        image = to_signed(image_u8)[None].to(dev)  # [1, 3, R, R]
        cdtype = next(models.conditioner.identity_encoder.parameters()).dtype
        cond_aug = torch.tensor([COND_AUG])
        cond_frames = image + cond_aug.to(dev) * noise(tuple(image.shape)).to(dev)
        cond, uncond = models.conditioner(image.to(cdtype), cond_frames.to(cdtype), torch.tensor([elevation]),
                                          cond_aug, T, score=self.aesthetic_score)
        cond.crossattn, uncond.crossattn = cond.crossattn.float(), uncond.crossattn.float()
        cond.concat, uncond.concat = cond.concat.float(), uncond.concat.float()
        h, w = image.shape[-2] // 8, image.shape[-1] // 8
        init_bias = None
        if stage1_frames is not None:
            video = to_signed(resize_u8(stage1_frames, image.shape[-1])).to(dev, models.vae.dtype)  # [T, 3, R, R]
            eps = noise((T, 4, h, w)).to(dev)
            init_bias = torch.cat([encode_sample(models.vae, v, e) for v, e in
                                   zip(video.split(self._chunk()), eps.split(self._chunk()))]).float()
        init = noise((T, 4, h, w)).to(dev)
        if init_bias is not None:
            init = 0.5 * init + 0.5 * init_bias
        clock.append(self._now())
        sigmas = edm_sigmas(self.num_steps)
        step_cb = None if callback is None else (lambda i, x, d: callback(i, self.num_steps))
        latents = sample_euler(self._unet(models), init, cond, uncond, sigmas, T, guidance_scale(T),
                               callback=step_cb, split=self.memory == "low")
        clock.append(self._now())
        frames = to_uint8(decode(models.vae, latents.to(models.vae.dtype), chunk=self._chunk())).cpu().numpy()
        clock.append(self._now())
        self.timings.append({"stage": models.stage, "condition_s": clock[1] - clock[0],
                             "sample_s": clock[2] - clock[1], "decode_s": clock[3] - clock[2]})
        return frames

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _chunk(self) -> int:
        """Frames per VAE call (per-frame independent, so chunking does not change results)."""
        return {"fast": self.num_frames, "balanced": 4, "low": 1}[self.memory]

    # -- a ring ---------------------------------------------------------------------------------------
    def generate_ring(self, portrait_rgb: np.ndarray, elevation: float, seed: int = 0,
                      callback: Callable[[str, int, int], None] | None = None) -> RingResult:
        """Portrait crop [H, W, 3] uint8 RGB (white background) -> the 16-view ring at `elevation` whose frame 0
        is the portrait's view. callback(stage, step, num_steps). Retries in a lower memory mode on CUDA OOM."""
        while True:
            try:
                return self._generate_ring(portrait_rgb, elevation, seed, callback)
            except torch.OutOfMemoryError:
                i = MEMORY_MODES.index(self.memory)
                if i == len(MEMORY_MODES) - 1:
                    raise
                self.memory = MEMORY_MODES[i + 1]
                for s in self._stages():
                    s.to("cpu")
                self._on_device.clear()
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.on_warning(f"out of GPU memory: retrying in memory mode {self.memory!r}")

    def _generate_ring(self, portrait_rgb, elevation, seed, callback) -> RingResult:
        gen = torch.Generator().manual_seed(int(seed))
        noise = lambda shape: torch.randn(shape, generator=gen)  # noqa: E731
        cb = (lambda name: None if callback is None else (lambda i, n: callback(name, i, n)))
        low_img = prepare_frame(portrait_rgb, self.low.resolution)
        low = self.run_stage(self.low, low_img, elevation, noise, callback=cb("low"))
        high = None
        if self.high is not None:
            high_img = prepare_frame(portrait_rgb, self.high.resolution)
            high = self.run_stage(self.high, high_img, elevation, noise, stage1_frames=low, callback=cb("high"))
        return RingResult(float(elevation), low, high)
