"""Import time and peak memory growth of HeadForge's splat importer for 100k / 300k / 1M splats, next to
Blender's own PLY importer on the same files, and of the rigged head importer.

Each measurement runs in a fresh Python (bpy module); peak memory is the process's high-water RSS (VmHWM,
reset through /proc/self/clear_refs just before the import) minus its RSS before it. The PLYs are standard
3DGS files (x y z, nx ny nz, f_dc, 45 f_rest, opacity, scale, rot: 62 floats, 248 bytes a splat).

    .venv/bin/python benchmarks/blender_import.py [--sizes 100000,300000,1000000] [--head GLB]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
import bpy
import numpy as np

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
kind, path = sys.argv[1], sys.argv[2]
bpy.ops.wm.read_factory_settings(use_empty=True)
if kind == "headforge":
    from headforge.addon import splat_import  # imported (and warmed) before measuring
elif kind == "head":
    from headforge.addon import head_import
    bpy.ops.import_scene.gltf  # noqa
before = rss("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")
t = time.perf_counter()
if kind == "headforge":
    ob = splat_import.import_splat(path)
elif kind == "blender_ply":
    bpy.ops.wm.ply_import(filepath=path)
else:
    head_import.import_head(path)
seconds = time.perf_counter() - t
peak = rss("VmHWM:")
out = {"seconds": seconds, "peak_growth_mb": (peak - before) / 2**20}
if kind == "headforge":  # the first evaluation of the Geometry Nodes (what the viewport does next)
    t = time.perf_counter()
    dg = bpy.context.evaluated_depsgraph_get()
    ob.evaluated_get(dg)
    out["first_eval_s"] = time.perf_counter() - t
print("RESULT " + json.dumps(out))
"""


def make_ply(path: Path, n: int, seed: int = 0) -> None:
    import numpy as np

    from headforge.backend.splat.ply import write_ply

    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n, 3)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    write_ply(path, {"means": d * np.float32([0.075, 0.09, 0.11]), "quats": rng.normal(size=(n, 4)).astype(np.float32),
                     "log_scales": rng.uniform(-7, -4, (n, 3)).astype(np.float32),
                     "opacity_logits": rng.normal(size=n).astype(np.float32),
                     "sh": rng.normal(0, 0.2, (n, 16, 3)).astype(np.float32),
                     "extra": {k: np.zeros(n, np.float32) for k in ("nx", "ny", "nz")}})


def measure(kind: str, path: Path, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True, env=env,
                          timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return json.loads(lines[-1][7:])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="100000,300000,1000000")
    p.add_argument("--head", default=str(Path(__file__).resolve().parents[2] / "shared/data/heads/facecap/facecap_decoded.glb"))
    p.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest is reported")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hf-bench-"))
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp / "blender")}
    rows = []
    for n in (int(s) for s in a.sizes.split(",")):
        ply = tmp / f"splat_{n}.ply"
        make_ply(ply, n)
        for kind in ("headforge", "blender_ply"):
            runs = [measure(kind, ply, env) for _ in range(a.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            rows.append((f"{n:,} splats", kind, best, ply.stat().st_size / 2**20))
        ply.unlink()
    if Path(a.head).is_file():
        runs = [measure("head", Path(a.head), env) for _ in range(a.repeat)]
        rows.append((Path(a.head).name, "head", min(runs, key=lambda r: r["seconds"]), Path(a.head).stat().st_size / 2**20))
    print(f"{'input':<26}{'importer':<13}{'file MB':>9}{'import s':>10}{'peak +MB':>10}{'GN eval s':>11}")
    for name, kind, r, mb in rows:
        ev = f"{r['first_eval_s']:.2f}" if "first_eval_s" in r else "-"
        print(f"{name:<26}{kind:<13}{mb:>9.1f}{r['seconds']:>10.2f}{r['peak_growth_mb']:>10.0f}{ev:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
