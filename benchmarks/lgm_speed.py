"""LGM speed and memory at real size with random weights: the forward pass (4 views at 256 px → 65,536 Gaussians)
and one fine-tuning step (forward under autocast, 8 views rendered at 512 px by our rasterizer, MSE losses, scaled
backward, clipping, AdamW) in fp16 and bf16, with peak GPU memory. Speed and memory do not depend on the weights'
values, except the renderer's cost, which grows with the Gaussians' screen size: the final 1×1 conv is rescaled so
the Gaussians are head-sized (`model.head_sized_output`), as a trained LGM's are.

    python benchmarks/lgm_speed.py --size big --device cuda          # on a GPU (benchmarks/gpu_check.sh runs it)
    python benchmarks/lgm_speed.py --size tiny --device cpu --repeats 1   # a CPU check of the script itself
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from headforge.backend.lgm.data import Subject, choose_vids, reference_pose
from headforge.backend.lgm.finetune import FinetuneConfig, make_optimizer, train_step
from headforge.backend.lgm.model import build, head_sized_output

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def synthetic_subject(size: int) -> Subject:
    """16 ring views of a smooth coloured ellipse (speed does not depend on the content)."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    images = {}
    for v in range(16, 32):
        a = 2 * math.pi * (v - 16) / 16
        mask = ((xs / 0.6) ** 2 + (ys / 0.8) ** 2 <= 1).float()
        rgb = torch.stack([0.5 + 0.4 * torch.sin(3 * xs + a), 0.5 + 0.4 * torch.cos(2 * ys), 0.5 + 0.3 * xs * ys])
        images[v] = torch.cat([rgb * mask, mask[None]], 0)
    return Subject(images, {v: reference_pose(v) for v in images}, "synthetic")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gib(device) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def timed(fn, device, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="big", choices=["big", "tiny"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--precision", default="fp16,bf16", help="comma-separated: fp16, bf16")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats after one warm-up")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("lgm_speed: no CUDA device")
    torch.manual_seed(0)
    model = build(args.size, seed=0, device=device)
    n_params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    subject = synthetic_subject(cfg.output_size)
    batch = subject.batch(choose_vids(np.random.RandomState(0)), cfg.input_size, cfg.output_size)
    with torch.no_grad():
        head_sized_output(model, batch.input[None].to(device))
    print(f"lgm_speed: LGM '{args.size}' ({n_params:,} parameters), {cfg.input_size} px input, "
          f"{4 * cfg.splat_size ** 2:,} Gaussians, renders at {cfg.output_size} px; device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    rows = []
    x = batch.input[None].to(device)
    for name in [p for p in args.precision.split(",") if p]:
        dtype = DTYPES[name]
        # inference: weights in the half type, as the converter writes them
        infer = build(args.size, seed=0, device=device, dtype=dtype).eval()
        infer.load_state_dict({k: v.to(dtype) for k, v in model.state_dict().items()})
        reset_peak(device)
        with torch.no_grad():
            times = timed(lambda: infer(x.to(dtype)), device, args.repeats + 1)[1:]
        fwd = {"precision": name, "what": "forward (inference, weights in " + name + ")",
               "seconds": round(float(np.median(times)), 4), "peak_gib": peak_gib(device)}
        infer = None  # free the inference copy before the training one
        # one fine-tuning step: fp32 master weights, autocast, GradScaler for fp16
        train = build(args.size, seed=0, device=device)
        train.load_state_dict(model.state_dict())
        train.train()
        ft = FinetuneConfig(steps=10, lr=1e-6, precision=name)
        opt, _ = make_optimizer(train, ft)
        scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16 and device.type == "cuda")
        reset_peak(device)
        results = []
        times = timed(lambda: results.append(train_step(train, batch, opt, scaler, ft, device, None, dtype)),
                      device, args.repeats + 1)[1:]
        step = {"precision": name, "what": "fine-tuning step (8 views rendered, AdamW)",
                "seconds": round(float(np.median(times)), 4), "peak_gib": peak_gib(device),
                "loss": round(results[-1]["loss"], 5)}
        train = opt = None  # free them before the next precision
        for r in (fwd, step):
            print(f"lgm_speed: {r['precision']} {r['what']}: {r['seconds']:.3f} s (median of {args.repeats}), "
                  f"peak GPU memory {r['peak_gib']} GiB" + (f", loss {r['loss']}" if "loss" in r else ""))
            rows.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "device": str(device), "parameters": n_params, "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
