"""Time until HeadForge's splats (or a rigged head) are in the scene and evaluated, and the peak memory that takes,
for 100k / 300k / 1M splats, next to Blender's own PLY importer on the same files, and of the rigged head importer.

Each run is a fresh Python (bpy module) that imports the file and then forces the first evaluation the viewport
would do next: the evaluated depsgraph, each new object's evaluated geometry (for splats: the Geometry Nodes that
instance one quad per splat), whose size is read back and reported (instances for splats, faces for meshes).
The reported figure is the median over --repeat runs of import + first evaluation; the parts are medians too.
Peak memory is the process's high-water RSS (VmHWM, reset through /proc/self/clear_refs just before the import)
minus its RSS before it, through the evaluation. The PLYs are standard 3DGS files (x y z, nx ny nz, f_dc, 45 f_rest,
opacity, scale, rot: 62 floats, 248 bytes a splat).

    .venv/bin/python benchmarks/blender_import.py [--sizes 100000,300000,1000000] [--head GLB] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
import bpy

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
objects = set(bpy.data.objects)
before = rss("VmRSS:")
open("/proc/self/clear_refs", "w").write("5")
t = time.perf_counter()
if kind == "headforge":
    splat_import.import_splat(path)
elif kind == "blender_ply":
    bpy.ops.wm.ply_import(filepath=path)
else:
    head_import.import_head(path)
t_import = time.perf_counter()
# the first evaluation (what the viewport does next): depsgraph, then every new object's evaluated geometry
dg = bpy.context.evaluated_depsgraph_get()
instances = faces = points = 0
for ob in set(bpy.data.objects) - objects:
    if ob.type not in ("MESH", "CURVES", "POINTCLOUD"):  # armatures, empties: nothing drawn to evaluate
        continue
    geo = ob.evaluated_get(dg).evaluated_geometry()
    pc = geo.instances_pointcloud()
    instances += len(pc.points) if pc is not None else 0
    if geo.mesh is not None:
        faces, points = faces + len(geo.mesh.polygons), points + len(geo.mesh.vertices)
t_eval = time.perf_counter()
out = {"import_s": t_import - t, "first_eval_s": t_eval - t_import, "total_s": t_eval - t,
       "peak_growth_mb": (rss("VmHWM:") - before) / 2**20, "evaluated_instances": instances, "evaluated_faces": faces,
       "evaluated_points": points}
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


def median_run(runs: list[dict]) -> dict:
    """Per-figure medians of repeated runs (each figure on its own)."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="100000,300000,1000000")
    p.add_argument("--head", default=str(Path(__file__).resolve().parents[2]
                                         / "shared/data/heads/facecap/facecap_decoded.glb"))
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are reported")
    a = p.parse_args(argv)
    if a.repeat < 1:
        p.error("--repeat must be at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="hf-bench-"))
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp / "blender")}
    rows = []
    for n in (int(s) for s in a.sizes.split(",")):
        ply = tmp / f"splat_{n}.ply"
        make_ply(ply, n)
        for kind in ("headforge", "blender_ply"):
            rows.append((f"{n:,} splats", kind, median_run([measure(kind, ply, env) for _ in range(a.repeat)]),
                         ply.stat().st_size / 2**20))
        ply.unlink()
    if Path(a.head).is_file():
        runs = [measure("head", Path(a.head), env) for _ in range(a.repeat)]
        rows.append((Path(a.head).name, "head", median_run(runs),
                     Path(a.head).stat().st_size / 2**20))
    print(f"median of {a.repeat} fresh processes; total = import + first evaluation (evaluated depsgraph and each new "
          "object's evaluated geometry read back); peak +MB = high-water RSS growth through both; evaluated = splat "
          "quads instanced by the Geometry Nodes (viewport cap 200k) / mesh faces / vertices")
    print(f"{'input':<26}{'importer':<13}{'file MB':>9}{'total s':>9}{'import s':>10}{'1st eval s':>11}{'peak +MB':>10}"
          f"{'evaluated':>18}")
    for name, kind, r, mb in rows:
        ev = (f"{r['evaluated_instances']:,.0f} inst" if r["evaluated_instances"] else
              f"{r['evaluated_faces']:,.0f} faces" if r["evaluated_faces"] else f"{r['evaluated_points']:,.0f} verts")
        print(f"{name:<26}{kind:<13}{mb:>9.1f}{r['total_s']:>9.2f}{r['import_s']:>10.2f}{r['first_eval_s']:>11.3f}"
              f"{r['peak_growth_mb']:>10.0f}{ev:>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
