"""HQ-Head checkpoints -> diffusers folders (SPEC 5).

`low_stage.pt` / `high_stage.pt` are DeepSpeed model-state files: tensors under the top-level key `module`, each
key prefixed with `module.`. They are read with `torch.load(weights_only=True)` only. Sub-files (open_clip
ViT-H-14, OpenAI CLIP ViT-L/14 weights as a state dict, the aesthetic MLP, the ArcFace backbone) fill components
that the stage checkpoint lacks. Output: one folder per stage,

    <out>/unet  vae  concat_vae  image_encoder  aesthetic_encoder  aesthetic_mlp  identity_encoder  idts_stage.json

each component written with `save_pretrained` (safetensors). Every input key is either mapped to a parameter
of the same shape or listed as ignored (training-only `lpips.*` and `id_model.*`, CLIP text-side tensors);
anything else, and any parameter left without a value, is an error that names the file and the keys.
"""
from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from . import keymaps

STAGES = ("low", "high")

# component -> (checkpoint prefix, converter(state) -> (converted, ignored))
PREFIXES = {
    "unet": "model.diffusion_model.",
    "vae": "first_stage_model.",
    "concat_vae": "conditioner.embedders.3.encoder.",
    "image_encoder": "conditioner.embedders.0.open_clip.model.",
    "aesthetic_encoder": "conditioner.embedders.1.aesthetic_model.",
    "aesthetic_mlp": "conditioner.embedders.1.aesthetic_mlp.",
    "identity_encoder": "conditioner.embedders.5.",
}
IGNORED_PREFIXES = ("lpips.", "id_model.")  # training losses only (SPEC 5)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unreadable, unsafe, incomplete, or of the wrong kind."""


def load_torch_file(path: str | Path) -> dict:
    """Load a pickled checkpoint with `weights_only=True` (or a .safetensors file). Never unpickles code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path.name}: refused by torch.load(weights_only=True) ({str(exc).splitlines()[0]}). HeadForge only "
            "reads plain tensor pickles; re-save the state_dict as .safetensors in an environment you trust.") from exc


def stage_state_dict(obj: dict, name: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The model tensors of a loaded stage checkpoint: DeepSpeed `module` (keys lose `module.`), Lightning
    `state_dict`, or a flat dict."""
    if "module" in obj and isinstance(obj["module"], dict):
        sd = obj["module"]
        return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        return dict(obj["state_dict"])
    if all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    raise CheckpointError(f"{name}: no 'module' or 'state_dict' entry and not a flat state_dict")


def _vae_levels(config: dict) -> int:
    return len(config["block_out_channels"])


@dataclass
class ComponentSpec:
    """How to build and fill one component."""

    build: Callable[[], torch.nn.Module]
    convert: Callable[[dict], tuple[dict, list[str]]]


def component_specs(size: str = "real") -> dict[str, ComponentSpec]:
    """Builders and key converters of every component, for the full-size ('real') or fixture-tiny ('tiny') models."""
    from diffusers import AutoencoderKL

    from .aesthetic import AestheticMLP
    from .clip import new_vision_model, open_clip_h14_config, openai_clip_l14_config, vision_config
    from .identity import IdentityEncoder
    from .unet import REAL_UNET_CONFIG, TINY_UNET_CONFIG, IDTSUNet
    from .vae import REAL_VAE_CONFIG, TINY_VAE_CONFIG

    tiny = size == "tiny"
    ucfg = TINY_UNET_CONFIG if tiny else REAL_UNET_CONFIG
    vcfg = TINY_VAE_CONFIG if tiny else REAL_VAE_CONFIG
    h14 = vision_config(64, 2, 2, 14, 1024) if tiny else open_clip_h14_config()
    l14 = vision_config(64, 2, 1, 14, 768, quick_gelu=True) if tiny else openai_clip_l14_config()
    return {
        "unet": ComponentSpec(lambda: IDTSUNet(**ucfg), lambda s: (keymaps.convert_unet(s, ucfg), [])),
        "vae": ComponentSpec(lambda: AutoencoderKL(**vcfg), lambda s: (keymaps.convert_vae(s, _vae_levels(vcfg)), [])),
        "concat_vae": ComponentSpec(lambda: AutoencoderKL(**vcfg),
                                    lambda s: (keymaps.convert_vae(s, _vae_levels(vcfg)), [])),
        "image_encoder": ComponentSpec(lambda: new_vision_model(h14), keymaps.convert_clip_visual),
        "aesthetic_encoder": ComponentSpec(lambda: new_vision_model(l14), keymaps.convert_clip_visual),
        "aesthetic_mlp": ComponentSpec(AestheticMLP,
                                       lambda s: ({keymaps.aesthetic_mlp_key(k): v for k, v in s.items()}, [])),
        "identity_encoder": ComponentSpec(IdentityEncoder, lambda s: (keymaps.convert_identity(s), [])),
    }


@dataclass
class ConversionReport:
    """What happened to every key: mapped (source -> target), ignored, and per-component problems."""

    mapped: dict[str, str] = field(default_factory=dict)  # source key -> "component/target[, ...]"
    ignored: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)  # component -> target keys without a value
    shape_mismatch: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # component -> file it came from

    @property
    def ok(self) -> bool:
        return not (self.unknown or self.shape_mismatch or any(self.missing.values()))


def split_components(state: dict[str, torch.Tensor]) -> tuple[dict[str, dict], list[str], list[str]]:
    """Split a stage state_dict by component prefix -> ({component: {local key: tensor}}, ignored, unknown)."""
    parts: dict[str, dict] = {c: {} for c in PREFIXES}
    ignored, unknown = [], []
    for k, v in state.items():
        for comp, prefix in PREFIXES.items():
            if k.startswith(prefix):
                parts[comp][k[len(prefix):]] = v
                break
        else:
            (ignored if k.startswith(IGNORED_PREFIXES) else unknown).append(k)
    return parts, ignored, unknown


def map_components(state: dict[str, torch.Tensor], size: str = "real", models: dict | None = None,
                   extra: dict[str, tuple[str, dict]] | None = None) -> tuple[dict[str, dict], ConversionReport]:
    """Map a stage state_dict onto our components and check every key and shape.

    models: {component: module} to check against (built from `component_specs(size)` when absent; pass meta-device
    models for a cheap full-size check). extra: {component: (file name, state_dict)} sub-files used for components
    the stage checkpoint lacks. Returns ({component: converted state}, report).
    """
    specs = component_specs(size)
    parts, ignored, unknown = split_components(state)
    report = ConversionReport(ignored=list(ignored), unknown=list(unknown))
    out = {}
    for comp, spec in specs.items():
        prefix, local = PREFIXES[comp], parts[comp]
        source = "stage checkpoint"
        if extra and comp in extra:  # the sub-file fills what the stage checkpoint lacks; the checkpoint wins
            sub = _strip_subfile(comp, extra[comp][1])
            added = {k: v for k, v in sub.items() if k not in local}
            if added:
                source = extra[comp][0] if not local else f"stage checkpoint + {extra[comp][0]}"
                local = {**added, **local}
        report.sources[comp] = source
        converted = {}
        for key, value in local.items():  # key by key, so every unknown key is reported
            try:
                targets, ignored_here = spec.convert({key: value})
            except KeyError:
                report.unknown.append(prefix + key)
                continue
            report.ignored += [prefix + k for k in ignored_here]
            for tgt in targets:
                if tgt in converted:
                    report.unknown.append(f"{prefix}{key} (a second source for {comp}/{tgt})")
            converted.update(targets)
            if targets:
                report.mapped[prefix + key] = ", ".join(f"{comp}/{t}" for t in targets)
        model = (models or {}).get(comp)
        if model is None:
            model = spec.build()
        expected = _expected_shapes(model)
        report.missing[comp] = sorted(set(expected) - set(converted))
        for k, v in converted.items():
            if k not in expected:
                report.unknown.append(f"{comp}/{k}")
            elif tuple(v.shape) != expected[k]:
                report.shape_mismatch.append(f"{comp}/{k}: {tuple(v.shape)} vs {expected[k]}")
        out[comp] = converted
    return out, report


def _expected_shapes(model: torch.nn.Module) -> dict[str, tuple]:
    """Persistent state_dict entries and shapes (non-persistent buffers such as CLIP position_ids excluded)."""
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _strip_subfile(comp: str, state: dict) -> dict:
    """Sub-files carry their own layout: open_clip/OpenAI CLIP full models (text tower dropped here), the bare
    ArcFace backbone, the bare aesthetic MLP."""
    if comp in ("image_encoder", "aesthetic_encoder"):
        return {k: v for k, v in state.items() if k.startswith("visual.") or k in keymaps.CLIP_TEXT_KEYS}
    if comp == "identity_encoder":
        return {("id_model." + k if not k.startswith(("mlp.", "id_model.")) else k): v for k, v in state.items()}
    return state


def load_components(converted: dict[str, dict], size: str = "real") -> dict[str, torch.nn.Module]:
    """Build every component and load its converted weights (strict)."""
    specs = component_specs(size)
    models = {}
    for comp, spec in specs.items():
        model = spec.build().eval()
        model.load_state_dict(converted[comp], strict=True)
        models[comp] = model
    return models


def convert_checkpoint(path: str | Path, out_dir: str | Path, stage: str, size: str = "real",
                       subfiles: dict[str, str | Path] | None = None,
                       dtype: torch.dtype = torch.float16) -> ConversionReport:
    """Convert one HQ-Head stage checkpoint (plus optional sub-files) into a diffusers folder `out_dir`.

    stage: 'low' (256 px, `low_stage.pt`) or 'high' (512 px, `high_stage.pt`). subfiles: {component: path} for
    components the checkpoint lacks ('image_encoder', 'aesthetic_encoder', 'aesthetic_mlp', 'identity_encoder').
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
    path = Path(path)
    other = "high" if stage == "low" else "low"
    if other in path.name.lower() and stage not in path.name.lower():
        raise CheckpointError(f"{path.name} looks like the {other}-stage checkpoint but was given as the {stage} stage "
                              f"(stage 1 is low_stage.pt at 256 px, stage 2 is high_stage.pt at 512 px); the two have "
                              "identical keys, so the file name is the only check: rename it if it is right.")
    state = stage_state_dict(load_torch_file(path), path.name)
    extra = {c: (Path(p).name, _flat(load_torch_file(p), Path(p).name)) for c, p in (subfiles or {}).items()}
    converted, report = map_components(state, size=size, extra=extra)
    if not report.ok:
        raise CheckpointError(describe_problems(report, path.name))
    models = load_components(converted, size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for comp, model in models.items():
        model.to(dtype).save_pretrained(str(out_dir / comp), safe_serialization=True)
    (out_dir / "idts_stage.json").write_text(json.dumps(
        {"stage": stage, "size": size, "source": path.name, "sources": report.sources,
         "ignored_keys": len(report.ignored), "mapped_keys": len(report.mapped)}, indent=1))
    return report


def _flat(obj: dict, name: str) -> dict:
    try:
        return stage_state_dict(obj, name)
    except CheckpointError:
        for key in ("model", "params"):
            if isinstance(obj.get(key), dict):
                return obj[key]
        raise


def describe_problems(report: ConversionReport, name: str) -> str:
    """A short, specific message: which file, which components are missing what, which keys are unknown."""
    lines = [f"{name} cannot be converted:"]
    for comp, miss in report.missing.items():
        if miss:
            hint = {"image_encoder": " (pass the open_clip ViT-H-14 file, open_clip_pytorch_model.bin)",
                    "aesthetic_encoder": " (pass the CLIP ViT-L/14 weights as a state dict)",
                    "aesthetic_mlp": " (pass sac+logos+ava1-l14-linearMSE.pth)",
                    "identity_encoder": " (pass trained_arcface.pth)"}.get(comp, "")
            lines.append(f"  {comp}: {len(miss)} tensors missing under {PREFIXES[comp]}*, e.g. {miss[:3]}{hint}")
    if report.unknown:
        lines.append(f"  {len(report.unknown)} unknown keys, e.g. {report.unknown[:5]}")
    if report.shape_mismatch:
        lines.append(f"  {len(report.shape_mismatch)} shape mismatches, e.g. {report.shape_mismatch[:3]}")
    return "\n".join(lines)


SUBFILE_OPTIONS = {"open_clip": "image_encoder", "clip_l": "aesthetic_encoder", "aesthetic": "aesthetic_mlp",
                   "arcface": "identity_encoder"}


def main(argv: list[str] | None = None) -> int:
    """CLI: convert low_stage.pt and/or high_stage.pt into <out>/low_stage and <out>/high_stage."""
    ap = argparse.ArgumentParser(prog="python -m headforge.backend.idts.converter", description=main.__doc__)
    ap.add_argument("--low", help="HQ-Head ckpts/low_stage.pt (stage 1, 256 px)")
    ap.add_argument("--high", help="HQ-Head ckpts/high_stage.pt (stage 2, 512 px)")
    ap.add_argument("--out", required=True, help="output folder, e.g. $HEADFORGE_MODELS/idts")
    ap.add_argument("--open-clip", help="open_clip_pytorch_model.bin (ViT-H-14), if the .pt files lack it")
    ap.add_argument("--clip-l", help="CLIP ViT-L/14 weights as a state dict (not the TorchScript ViT-L-14.pt)")
    ap.add_argument("--aesthetic", help="sac+logos+ava1-l14-linearMSE.pth")
    ap.add_argument("--arcface", help="trained_arcface.pth (IR-SE-50)")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    args = ap.parse_args(argv)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    subfiles = {comp: getattr(args, opt) for opt, comp in SUBFILE_OPTIONS.items() if getattr(args, opt)}
    if not (args.low or args.high):
        ap.error("give --low and/or --high")
    for stage, path in (("low", args.low), ("high", args.high)):
        if path:
            try:
                report = convert_checkpoint(path, Path(args.out) / f"{stage}_stage", stage, subfiles=subfiles,
                                            dtype=dtype)
            except CheckpointError as exc:
                print(f"error: {exc}")
                return 2
            print(f"{stage}: {len(report.mapped)} tensors converted, {len(report.ignored)} ignored "
                  f"(training-only or CLIP text side) -> {Path(args.out) / f'{stage}_stage'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
