"""The training run's configuration: read from YAML, JSON or TOML, validated completely before anything runs.

Every error is a `HeadForgeError` with a `train.config.*` code naming the key, what was given and what is allowed.
Defaults follow the reference (Hi3D `configs/train-v01.yaml`, HQ-Head `vtdm_gen_v04.py`): EDM sigma sampling with
p_mean 1.0 / p_std 1.6, v-weighting, lr 1e-5, 16 frames, UCG rate 0.1, training cond_aug exp(N(-3, 0.5²)), and the
total loss diffusion + LPIPS + (1 − ArcFace cosine), i.e. weights 1, 1, 1.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HeadForgeError
from ..idts.stage_folder import missing_files

STAGES = ("low", "high")
PRECISIONS = ("no", "fp16", "bf16")
LOGGERS = ("auto", "tensorboard", "jsonl")


class ConfigError(HeadForgeError):
    code = "train.config.invalid"


@dataclass
class LossWeights:
    diffusion: float = 1.0
    lpips: float = 1.0
    identity: float = 1.0
    expression: float = 1.0


@dataclass
class TrainConfig:
    stage: str  # "low" (stage 1, 256 px) or "high" (stage 2, 512 px)
    model: str  # converted stage folder to start from (idts.converter output / builders.save_stage)
    dataset: str  # DATASET folder (manifest.json + <id>/views/)
    output: str  # run folder: checkpoints/, logs/, model/ (the trained stage folder)
    split: str = "train"
    steps: int = 1000  # optimiser steps
    batch_size: int = 1  # videos per micro-batch per process
    grad_accum: int = 1  # micro-batches per optimiser step
    lr: float = 1e-5
    weight_decay: float = 0.0
    adam_betas: tuple = (0.9, 0.999)
    max_grad_norm: float = 1.0  # 0: no clipping
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    trainable: list = field(default_factory=lambda: ["all"])  # "all" or UNet parameter-name substrings
    ema_decay: float = 0.9999  # 0 turns EMA off
    export_ema: bool = True  # export the EMA weights (when EMA is on)
    seed: int = 0
    num_frames: int = 16
    resolution: int | None = None  # default: the model folder's resolution (256 / 512)
    start_frames: list = field(default_factory=lambda: [0, 1, 2, 3, 4, 12, 13, 14, 15])  # the reference's starts
    rings: list | None = None  # rings to draw from; None: every ring (stage 1), ring 1 = 0° (stage 2, as the reference)
    p_mean: float = 1.0
    p_std: float = 1.6
    cond_aug_mean: float = -3.0
    cond_aug_std: float = 0.5
    ucg_rate: float = 0.1  # per video, each of CLIP token, ArcFace token, concat latent zeroed (Hi3D: 0.1 for CLIP
    # and concat; the ArcFace token, HQ-Head's addition, is dropped at the same rate so guidance learns it too)
    perceptual_frames: int | None = None  # the first N frames of each clip are decoded for LPIPS/identity/expression
    # (None: all, as the reference; fewer saves GPU memory: the decoder runs with gradients)
    losses: LossWeights = field(default_factory=LossWeights)
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    num_workers: int = 0  # DataLoader worker processes preparing micro-batches ahead (0: in the training process)
    # torch's intra-op threads when training on the CPU: a fixed count keeps the loss curve the same on any machine
    # (ID-TS's conditioners resize with kernels whose low bits follow the thread count); 0: torch's default
    cpu_threads: int = 1
    log_with: str = "auto"  # auto: TensorBoard when tensorboardX/tensorboard is installed, else JSON lines only
    models_root: str | None = None  # where LPIPS weights are looked up (models/store.py); None: the default
    landmarks: str = "auto"  # expression landmarks: "auto" (landmarks.json, else MediaPipe), "file", "mediapipe"

    def fingerprint(self) -> str:
        """What a checkpoint must match to be resumed: everything that changes the loss curve (not steps/logging)."""
        d = dataclasses.asdict(self)
        for k in ("steps", "checkpoint_every", "keep_checkpoints", "log_every", "log_with", "output", "num_workers",
                  "cpu_threads"):
            d.pop(k)
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_TYPES = {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def read_config_file(path) -> dict:
    """The raw mapping of a .yaml/.yml, .json or .toml file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Training config {path} does not exist.", code="train.config.missing")
    text = path.read_text()
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(text)
        elif suffix == ".json":
            raw = json.loads(text)
        elif suffix == ".toml":
            raw = tomllib.loads(text)
        else:
            raise ConfigError(f"Training config {path} has suffix {suffix!r}; use .yaml, .yml, .json or .toml.",
                              code="train.config.format")
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001  (each parser has its own error type)
        raise ConfigError(f"Training config {path} is not valid {suffix[1:].upper()}: {e}",
                          code="train.config.syntax") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"Training config {path} must hold a mapping of options, not {type(raw).__name__}.",
                          code="train.config.syntax")
    return raw


def _bad(key: str, value, want: str) -> ConfigError:
    return ConfigError(f"Training config: {key} = {value!r} is not valid; expected {want}.",
                       code="train.config.bad_value", hint=f"fix `{key}` in the config file")


def _number(key, value, kind=float, lo=None, hi=None, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise _bad(key, value, "an integer" if kind is int else "a number")
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise _bad(key, value, f"a number {'>' if lo_open else '≥'} {lo}")
    if hi is not None and value > hi:
        raise _bad(key, value, f"a number ≤ {hi}")
    return kind(value)


def parse_config(raw: dict, base: Path | None = None) -> TrainConfig:
    """Validate a raw mapping into a TrainConfig. Relative paths are taken from `base` (the config's folder)."""
    raw = dict(raw)
    known = set(_TYPES)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"Training config: unknown option(s) {', '.join(unknown)}.", code="train.config.unknown_key",
                          hint="known options: " + ", ".join(sorted(known)))
    for key in ("stage", "model", "dataset", "output"):
        if key not in raw:
            raise ConfigError(f"Training config: `{key}` is required.", code="train.config.missing_key")
    if raw["stage"] not in STAGES:
        raise _bad("stage", raw["stage"], "'low' (stage 1) or 'high' (stage 2)")
    for key in ("model", "dataset", "output"):
        if not isinstance(raw[key], str) or not raw[key]:
            raise _bad(key, raw[key], "a folder path")
        p = Path(raw[key]).expanduser()
        raw[key] = str(p if p.is_absolute() or base is None else (base / p))
    if raw.get("models_root") is not None:
        raw["models_root"] = str(Path(raw["models_root"]).expanduser())
    if "split" in raw and raw["split"] not in ("train", "val", "test"):
        raise _bad("split", raw["split"], "'train', 'val' or 'test'")
    ints = {"steps": 1, "batch_size": 1, "grad_accum": 1, "seed": 0, "num_frames": 1, "checkpoint_every": 1,
            "keep_checkpoints": 1, "log_every": 1, "num_workers": 0, "cpu_threads": 0}
    for key, lo in ints.items():
        if key in raw:
            raw[key] = _number(key, raw[key], int, lo)
    if raw.get("resolution") is not None:
        raw["resolution"] = _number("resolution", raw["resolution"], int, 8)
        if raw["resolution"] % 8:
            raise _bad("resolution", raw["resolution"], "a multiple of 8 (the VAE's factor)")
    if raw.get("perceptual_frames") is not None:
        raw["perceptual_frames"] = _number("perceptual_frames", raw["perceptual_frames"], int, 1)
    floats = {"lr": (0, None, True), "weight_decay": (0, None, False), "max_grad_norm": (0, None, False),
              "ema_decay": (0, 1, False), "p_std": (0, None, True), "cond_aug_std": (0, None, False),
              "ucg_rate": (0, 1, False), "p_mean": (None, None, False), "cond_aug_mean": (None, None, False)}
    for key, (lo, hi, lo_open) in floats.items():
        if key in raw:
            raw[key] = _number(key, raw[key], float, lo, hi, lo_open)
    if raw.get("ema_decay", 0.0) >= 1.0:
        raise _bad("ema_decay", raw["ema_decay"], "0 (off) or a decay below 1")
    if "adam_betas" in raw:
        b = raw["adam_betas"]
        if not (isinstance(b, (list, tuple)) and len(b) == 2):
            raise _bad("adam_betas", b, "two numbers in [0, 1)")
        raw["adam_betas"] = tuple(_number("adam_betas", v, float, 0, 0.999999) for v in b)
    for key in ("gradient_checkpointing", "export_ema"):
        if key in raw and not isinstance(raw[key], bool):
            raise _bad(key, raw[key], "true or false")
    if raw.get("mixed_precision", "no") not in PRECISIONS:
        raise _bad("mixed_precision", raw["mixed_precision"], "'no', 'fp16' or 'bf16'")
    if raw.get("log_with", "auto") not in LOGGERS:
        raise _bad("log_with", raw["log_with"], "'auto', 'tensorboard' or 'jsonl'")
    if raw.get("landmarks", "auto") not in ("auto", "file", "mediapipe"):
        raise _bad("landmarks", raw["landmarks"], "'auto', 'file' or 'mediapipe'")
    if "trainable" in raw:
        t = raw["trainable"]
        if isinstance(t, str):
            t = [t]
        if not (isinstance(t, list) and t and all(isinstance(s, str) and s for s in t)):
            raise _bad("trainable", raw["trainable"], "'all' or a list of UNet parameter-name substrings")
        raw["trainable"] = t
    nf = raw.get("num_frames", 16)
    if "start_frames" in raw:
        s = raw["start_frames"]
        if not (isinstance(s, list) and s and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 16
                                                  for v in s)):
            raise _bad("start_frames", s, "a list of ring positions 0..15")
    if nf > 16:
        raise _bad("num_frames", nf, "at most 16 (one ring)")
    if raw.get("rings") is not None:
        r = raw["rings"]
        if not (isinstance(r, list) and r and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 5
                                                  for v in r)):
            raise _bad("rings", r, "a list of ring numbers 0..5")
    losses = raw.get("losses", {})
    if not isinstance(losses, dict):
        raise _bad("losses", losses, "a mapping of loss weights")
    names = {f.name for f in dataclasses.fields(LossWeights)}
    extra = sorted(set(losses) - names)
    if extra:
        raise ConfigError(f"Training config: unknown loss(es) {', '.join(extra)}.", code="train.config.unknown_key",
                          hint="losses: " + ", ".join(sorted(names)))
    raw["losses"] = LossWeights(**{k: _number(f"losses.{k}", v, float, 0) for k, v in losses.items()})
    if all(getattr(raw["losses"], n) == 0 for n in names):
        raise ConfigError("Training config: every loss weight is 0; nothing would be trained.",
                          code="train.config.no_loss")
    return TrainConfig(**raw)


def check_inputs(cfg: TrainConfig) -> None:
    """The model folder and the dataset exist and hold what the run needs (cheap: no torch, no images)."""
    model = Path(cfg.model)
    if not model.is_dir():
        raise ConfigError(f"Training config: model folder {model} does not exist.", code="train.config.no_model",
                          hint="convert the released checkpoint first (python -m headforge.backend.idts.converter) "
                          "and point `model` at the stage folder")
    missing = missing_files(model)
    if missing:
        raise ConfigError(f"Training config: model folder {model} is incomplete (missing {', '.join(missing)}).",
                          code="train.config.no_model")
    info = json.loads((model / "idts_stage.json").read_text())
    if info.get("stage") != cfg.stage:
        raise ConfigError(f"Training config: stage is {cfg.stage!r} but {model} holds the {info.get('stage')!r} "
                          "stage.", code="train.config.stage_mismatch")
    manifest = Path(cfg.dataset) / "manifest.json"
    if not manifest.is_file():
        raise ConfigError(f"Training config: {manifest} does not exist; `dataset` must be a folder made by "
                          "`headforge dataset build`.", code="train.config.no_dataset")
    out = Path(cfg.output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"Training config: output {out} exists and is not a folder.", code="train.config.output")


def load_config(path) -> TrainConfig:
    """Read, validate and check a training config file."""
    path = Path(path)
    cfg = parse_config(read_config_file(path), base=path.resolve().parent)
    check_inputs(cfg)
    return cfg
