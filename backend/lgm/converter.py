"""HQ-Head's `ckpts/recon.safetensors` (LGM 'big', SPEC 4.11 and 5) → a diffusers folder for `LGMModel`.

The checkpoint's keys carry no prefix and are our parameter names (`unet.*`, `conv.*`), so the conversion is a
checked copy: every one of the model's 376 tensors must be present with its shape, and no key may be left over
(the reference skips absent or mis-shaped keys with a warning; we refuse the file and name them). LPIPS weights
(`lpips.*`), which the reference excludes from its state_dict, are ignored and counted.

    python -m headforge.backend.lgm.converter --recon recon.safetensors --out $HEADFORGE_MODELS/lgm

writes `<out>/config.json` + `<out>/diffusion_pytorch_model.safetensors` (`LGMModel.from_pretrained(out)`) and
`<out>/lgm.json` (source, counts).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import HeadForgeError
from .model import BIG_CONFIG, TINY_CONFIG, LGMModel

IGNORED_PREFIXES = ("lpips.",)  # training loss only (SPEC 4.11: excluded from the state_dict)
CONFIGS = {"big": BIG_CONFIG, "tiny": TINY_CONFIG}
INFO_FILE = "lgm.json"


class LGMCheckpointError(HeadForgeError):
    """A reconstructor checkpoint that cannot be used (unreadable, incomplete, wrong shapes or extra keys)."""

    code = "lgm.bad_checkpoint"


@dataclass
class Report:
    mapped: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unknown or self.shape_mismatch)


def expected_shapes(size: str = "big") -> dict[str, tuple[int, ...]]:
    """Every parameter of the model and its shape (built on the meta device: no memory)."""
    with torch.device("meta"):
        model = LGMModel(**CONFIGS[size])
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_keys(shapes: dict[str, tuple[int, ...]], size: str = "big") -> Report:
    """Compare a checkpoint's {key: shape} with the model's: mapped, ignored, missing, unknown, mis-shaped."""
    expected = expected_shapes(size)
    rep = Report()
    for key, shape in shapes.items():
        if key.startswith(IGNORED_PREFIXES):
            rep.ignored.append(key)
        elif key not in expected:
            rep.unknown.append(key)
        elif tuple(shape) != expected[key]:
            rep.shape_mismatch.append(f"{key}: {tuple(shape)} in the file, {expected[key]} expected")
        else:
            rep.mapped.append(key)
    rep.missing = [k for k in expected if k not in shapes]
    return rep


def describe(rep: Report, name: str, size: str) -> str:
    lines = [f"{name} is not the LGM '{size}' reconstructor checkpoint:"]
    if rep.missing:
        lines.append(f"  {len(rep.missing)} of its tensors are missing: {', '.join(rep.missing[:12])}"
                     + (" …" if len(rep.missing) > 12 else ""))
    if rep.shape_mismatch:
        lines.append(f"  {len(rep.shape_mismatch)} have the wrong shape: {'; '.join(rep.shape_mismatch[:6])}"
                     + (" …" if len(rep.shape_mismatch) > 6 else ""))
    if rep.unknown:
        lines.append(f"  {len(rep.unknown)} keys are not LGM's: {', '.join(rep.unknown[:12])}"
                     + (" …" if len(rep.unknown) > 12 else ""))
    return "\n".join(lines)


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Key → shape from a .safetensors header (no tensor is read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001  (safetensors raises several error types for damaged files)
        raise LGMCheckpointError(f"{path} is not a readable .safetensors file ({exc}).",
                                 hint="Download HQ-Head's ckpts/recon.safetensors again.") from exc


def convert(path: str | Path, out_dir: str | Path, size: str = "big", dtype: torch.dtype = torch.float16) -> Report:
    """Check and convert `path` into `out_dir`; raises LGMCheckpointError naming every missing, mis-shaped or
    unknown key."""
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise LGMCheckpointError(f"{path} does not exist.", code="lgm.checkpoint_missing")
    if path.suffix != ".safetensors":
        raise LGMCheckpointError(f"{path.name}: the reconstructor checkpoint is read as .safetensors only "
                                 "(HQ-Head ships ckpts/recon.safetensors).")
    rep = check_keys(read_shapes(path), size)
    if not rep.ok:
        raise LGMCheckpointError(describe(rep, path.name, size))
    state = {k: v for k, v in load_file(str(path)).items() if not k.startswith(IGNORED_PREFIXES)}
    model = LGMModel(**CONFIGS[size])
    model.load_state_dict(state, strict=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.to(dtype).save_pretrained(str(out_dir), safe_serialization=True)
    (out_dir / INFO_FILE).write_text(json.dumps({"size": size, "source": path.name, "mapped_keys": len(rep.mapped),
                                                 "ignored_keys": len(rep.ignored), "dtype": str(dtype)}, indent=1))
    return rep


def main(argv: list[str] | None = None) -> int:
    """CLI: convert HQ-Head's recon.safetensors (LGM 'big') into a folder LGMModel.from_pretrained reads."""
    ap = argparse.ArgumentParser(prog="python -m headforge.backend.lgm.converter", description=main.__doc__)
    ap.add_argument("--recon", required=True, help="HQ-Head ckpts/recon.safetensors")
    ap.add_argument("--out", required=True, help="output folder, e.g. $HEADFORGE_MODELS/lgm")
    ap.add_argument("--size", default="big", choices=sorted(CONFIGS), help="model size (tiny: the test fixtures')")
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    args = ap.parse_args(argv)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    try:
        rep = convert(args.recon, args.out, args.size, dtype)
    except LGMCheckpointError as exc:
        print(f"error: {exc}")
        return 2
    print(f"{len(rep.mapped)} tensors converted, {len(rep.ignored)} ignored (LPIPS) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
