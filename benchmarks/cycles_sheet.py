"""A contact sheet of a finished job's rigged head rendered in Cycles through the add-on's own importer
(headforge.addon.results.import_job_results): front, ¾ (35°), profile (90°), back, then jawOpen, smile and blink
from the front, small and quick (CPU), under a soft key light from the upper left plus a grey sky.

    .venv/bin/python benchmarks/cycles_sheet.py JOB OUT.png [--size 256] [--samples 16]

Run it in a fresh Python: bpy is imported first (before anything that loads Embree).
"""
import bpy  # noqa: I001  (first: see the docstring)

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from mathutils import Vector

TILES = (("front", 0.0, None), ("three_quarter", 35.0, None), ("profile", 90.0, None), ("back", 180.0, None),
         ("jawOpen", 0.0, {"jawOpen": 0.8}), ("smile", 0.0, {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9}),
         ("blink", 0.0, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}))


def _scene(size: int, samples: int):
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    world = bpy.data.worlds.new("sheet") if scene.world is None else scene.world
    scene.world = world
    world.use_nodes = True
    bg = world.node_tree.nodes.get("Background")
    bg.inputs["Color"].default_value = (0.25, 0.25, 0.25, 1.0)
    bg.inputs["Strength"].default_value = 1.0
    sun = bpy.data.objects.new("key", bpy.data.lights.new("key", "SUN"))
    sun.data.energy = 3.0
    sun.data.angle = math.radians(15)
    sun.rotation_euler = (math.radians(50), 0.0, math.radians(-35))  # from the front-left, above
    scene.collection.objects.link(sun)
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    cam.data.lens = 70.0
    scene.collection.objects.link(cam)
    scene.camera = cam
    return scene, cam


def _bounds(objects) -> tuple[Vector, float]:
    pts = np.concatenate([np.array([ob.matrix_world @ Vector(c) for c in ob.bound_box]) for ob in objects])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return Vector(((lo + hi) / 2).tolist()), float(max(hi - lo))


def render_sheet(job: Path, out: Path, size: int = 256, samples: int = 16) -> dict:
    from PIL import Image

    from headforge.addon import results

    for ob in list(bpy.data.objects):
        bpy.data.objects.remove(ob)
    scene, cam = _scene(size, samples)
    imported = results.import_job_results(job)
    meshes = [ob for ob in imported["collection"].all_objects if ob.type == "MESH"]
    head = next(ob for ob in meshes if ob.data.shape_keys is not None)
    centre, extent = _bounds(meshes)
    dist = 0.62 * extent / 0.32  # the head (with neck and hair) fills most of the frame
    keys = head.data.shape_keys.key_blocks
    tiles, seconds = [], {}
    tmp = Path(tempfile.mkdtemp(prefix="hf-cycles-"))
    for name, deg, shape in TILES:
        for kb in keys:
            kb.value = 0.0
        for k, v in (shape or {}).items():
            keys[k].value = v
        a = math.radians(deg)  # the camera turns toward the subject's left (+X) for positive angles
        cam.location = centre + Vector((dist * math.sin(a), -dist * math.cos(a), 0.02 * dist))
        cam.rotation_euler = (centre - cam.location).to_track_quat("-Z", "Y").to_euler()
        scene.render.filepath = str(tmp / f"{name}.png")
        t = time.time()
        bpy.ops.render.render(write_still=True)
        seconds[name] = round(time.time() - t, 1)
        tiles.append(np.asarray(Image.open(tmp / f"{name}.png").convert("RGB")))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(tiles, axis=1)).save(out)
    return {"sheet": str(out), "tiles": [t[0] for t in TILES], "seconds": seconds}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("job")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--samples", type=int, default=16)
    args = p.parse_args(argv)
    print(render_sheet(Path(args.job), Path(args.out), args.size, args.samples))


if __name__ == "__main__":
    main()
