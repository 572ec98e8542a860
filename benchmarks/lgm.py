"""LGM, the paper's reconstructor (backend/lgm/): parity, fine-tuning on a real subject, and the splat stage's start.

1. Parity: every tensor of the `lgm_tiny` fixture (SPEC 7.7) against ours: max |error| per tensor.
2. Fine-tuning loss curve on the Lee Perry-Smith ring (16 views of the 0° ring rendered by `headforge render-views`
   at the tiny model's 128 px), tiny model on the CPU. The tiny model has the fixtures' fill-rule weights with its
   final conv rescaled to head-sized Gaussians (`model.head_sized_output`): random weights, not a trained LGM, so the
   curve shows the loop learning, and needs a larger rate than the reference's 1e-6 to move in a few steps.
3. The splat stage on LPS views (all 96 at 128 px, views mode, CPU) started from the visual hull vs from that tiny
   LGM: held-out PSNR (masked and over white) and wall time. With random LGM weights this proves the wiring only;
   the quality comparison needs the released weights (recon.safetensors).

    python benchmarks/lgm.py                       # all three (about 10 minutes on a 2-core CPU)
    python benchmarks/lgm.py --only parity,finetune --finetune-steps 10
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import SHARED  # noqa: E402  (benchmarks/ on sys.path)

from headforge.backend.lgm.data import Subject, choose_vids  # noqa: E402
from headforge.backend.lgm.finetune import FinetuneConfig, finetune, losses  # noqa: E402
from headforge.backend.lgm.model import TINY_CONFIG, LGMModel, head_sized_output  # noqa: E402

FIXTURES = SHARED / "fixtures" / "idts"
ASSET = SHARED / "data/heads/lee_perry_smith/LeePerrySmith_textured.glb"


def tiny_fixture_model() -> tuple[LGMModel, dict]:
    spec = importlib.util.spec_from_file_location("hf_fill_params", SHARED / "fixtures" / "fill_params.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    meta = json.loads((FIXTURES / "lgm_tiny.json").read_text())
    model = LGMModel(**TINY_CONFIG).eval()
    model.load_state_dict(mod.regenerate(meta["keys_tiny"]), strict=True)
    tensors = {k: v.clone() for k, v in load_file(str(FIXTURES / "lgm_tiny.safetensors")).items()}
    return model, tensors


def parity() -> list[dict]:
    model, t = tiny_fixture_model()
    frames = t["frames_bgra_u8"].numpy()
    subject = Subject.from_bgra({16 + i: frames[i] for i in range(16)})
    vids = choose_vids(np.random.RandomState(0))
    batch = subject.batch(vids, 128, 96)
    with torch.no_grad():
        ours = {"input": batch.input, "images_output": batch.images_output, "masks_output": batch.masks_output,
                "cam_view": batch.cam_view, "cam_view_proj": batch.cam_view_proj, "cam_pos": batch.cam_pos,
                "unet_conv_output": model.raw(t["input"][None]), "gaussians": model(t["input"][None])}
        chained = model(batch.input[None])
    rows = [{"tensor": k, "shape": list(t[k].shape), "max_abs_err": float((v.double() - t[k].double()).abs().max()),
             "max_abs_ref": float(t[k].abs().max())} for k, v in ours.items()]
    rows.append({"tensor": "gaussians from the frames (chained)", "shape": list(t["gaussians"].shape),
                 "max_abs_err": float((chained.double() - t["gaussians"].double()).abs().max()),
                 "max_abs_ref": float(t["gaussians"].abs().max())})
    print(f"lgm parity: views {vids} (fixture {t['vids'].tolist()})")
    for r in rows:
        print(f"  {r['tensor']:38s} {str(tuple(r['shape'])):18s} max |err| {r['max_abs_err']:.2e}  "
              f"(max |ref| {r['max_abs_ref']:.3g})")
    return rows


def render_views(out: Path, size: int, rings: str, samples: int) -> Path:
    if (out / "cameras.json").is_file():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [sys.executable, "-m", "headforge.backend", "--json", "render-views", str(ASSET), "-o", str(tmp),
           "--size", str(size), "--rings", rings, "--samples", str(samples)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"render-views failed: {p.stderr[-2000:]}")
    tmp.rename(out)
    return out


def head_model_dir(cache: Path) -> Path:
    folder = cache / "lgm_tiny_head"
    if not (folder / "config.json").is_file():
        model, t = tiny_fixture_model()
        head_sized_output(model, t["input"][None])
        model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def finetune_curve(cache: Path, steps: int, lr: float, threads_check: int) -> dict:
    views = render_views(cache / "lps_ring1_128", 128, "1", 4)
    subject = Subject.from_job_views(views)
    batch = subject.batch(choose_vids(np.random.RandomState(0)), 128, 96)
    cfg = FinetuneConfig(steps=steps, lr=lr, checkpoint_every=0)

    def fixed(model):
        with torch.no_grad():
            out = losses(model.eval(), batch, torch.device("cpu"), None, cfg, None)
        return {k: round(float(out[k]), 5) for k in ("loss", "mse", "mse_alpha", "psnr")}

    model = LGMModel.from_pretrained(str(head_model_dir(cache)))
    before = fixed(model)
    print(f"lgm fine-tuning: LPS 0° ring (16 views, 128 px), tiny LGM, {steps} steps at lr {lr}, augmentations "
          f"p=0.5, {torch.get_num_threads()} thread(s); step 0's 8 views before: {before}")
    result = finetune(model, subject, cfg, on_progress=lambda s, n, r: print(
        f"  step {s:3d}/{n}: loss {r['loss']:.4f} (MSE {r['mse']:.4f}, alpha {r['mse_alpha']:.4f}), "
        f"PSNR {r['psnr']:.2f} dB, lr {r['lr']:.2e}", flush=True))
    after = fixed(model)
    print(f"lgm fine-tuning: step 0's 8 views after: {after}; {result.seconds:.1f} s "
          f"({result.seconds / steps:.2f} s/step); LPIPS {result.lpips}")
    out = {"steps": steps, "lr": lr, "before": before, "after": after, "seconds": round(result.seconds, 2),
           "history": result.history, "lpips": result.lpips}
    if threads_check:
        losses_by_threads = {}
        prev = torch.get_num_threads()
        for n in (1, 4):
            torch.set_num_threads(n)
            m = LGMModel.from_pretrained(str(head_model_dir(cache)))
            r = finetune(m, subject, FinetuneConfig(steps=threads_check, lr=lr, checkpoint_every=0))
            losses_by_threads[n] = [h["loss"] for h in r.history]
        torch.set_num_threads(prev)
        diff = float(np.max(np.abs(np.subtract(losses_by_threads[1], losses_by_threads[4]))))
        print(f"lgm fine-tuning: thread count, {threads_check} steps: losses with 1 thread {losses_by_threads[1]}, "
              f"with 4 {losses_by_threads[4]}: max |difference| {diff:.2e}")
        out["threads"] = {"losses": losses_by_threads, "max_abs_diff": diff}
    return out


def splat_jobs(cache: Path, splat_steps: int, lgm_steps: int, lr: float) -> list[dict]:
    from headforge.backend.job import run_job

    views = render_views(cache / "lps_all_128", 128, "all", 4)
    rows = []
    for init in ("hull", "lgm"):
        job = Path(tempfile.mkdtemp(prefix=f"lgm-bench-{init}-"))
        shutil.copytree(views, job / "views")
        opts = {"steps": splat_steps, "size": 128, "device": "cpu", "init": init, "preview_every": 10**6,
                "checkpoint_every": 10**6, "lgm_finetune_steps": lgm_steps, "lgm_finetune_lr": lr,
                "lgm_dir": str(head_model_dir(cache))}
        t = time.time()
        record = run_job(job, options={"splat": opts}, mode="views", until="splat")
        wall = time.time() - t
        m = record["stages"]["splat"]["metrics"]
        row = {"init": init, "wall_seconds": round(wall, 1), "fit_seconds": m["fit_seconds"],
               "lgm_seconds": (m.get("lgm") or {}).get("seconds"), "n_gaussians": m["n_gaussians"],
               "init_test_psnr": m.get("init_test_psnr"), "test_psnr": m["test_psnr"],
               "test_psnr_masked": m["test_psnr_masked"], "test_alpha_iou": m.get("test_alpha_iou"),
               "held_out_views_lgm_saw": (m.get("lgm") or {}).get("held_out_views_seen")}
        rows.append(row)
        print(f"lgm splat start {init:4s}: held-out PSNR {row['init_test_psnr']} dB at the start → "
              f"{row['test_psnr']:.2f} dB (masked {row['test_psnr_masked']:.2f} dB, alpha IoU {row['test_alpha_iou']}) "
              f"after {splat_steps} steps; {row['n_gaussians']} Gaussians; stage wall {row['wall_seconds']} s "
              f"(fit {row['fit_seconds']} s"
              + (f", LGM {row['lgm_seconds']} s; held-out views LGM saw: {row['held_out_views_lgm_saw']}"
                 if row["lgm_seconds"] is not None else "") + ")", flush=True)
        shutil.rmtree(job, ignore_errors=True)
    print("lgm splat start: the LGM here is the tiny fill-rule model (random weights): this proves the wiring only; "
          "the quality comparison needs the released LGM weights.")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="parity,finetune,splat", help="comma-separated sections")
    ap.add_argument("--finetune-steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3, help="fine-tuning rate for the tiny random model")
    ap.add_argument("--threads-check", type=int, default=3, help="steps run with 1 and 4 threads (0: skip)")
    ap.add_argument("--splat-steps", type=int, default=300)
    ap.add_argument("--lgm-steps", type=int, default=5, help="LGM fine-tuning steps before the lgm-started fit")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "headforge-bench"))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    results = {}
    if "parity" in only:
        results["parity"] = parity()
    if "finetune" in only:
        results["finetune"] = finetune_curve(cache, args.finetune_steps, args.lr, args.threads_check)
    if "splat" in only:
        results["splat"] = splat_jobs(cache, args.splat_steps, args.lgm_steps, args.lr)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
