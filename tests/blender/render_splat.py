"""Run in a fresh Python (subprocess): import a splat PLY with HeadForge's importer and render rig views.

argv: PLY OUT_DIR SIZE COLOUR(SH0|SH) ENGINE(CYCLES|BLENDER_EEVEE) VIEW_INDEX...
Writes OUT_DIR/blender_<view>.png (RGB over black, Standard view transform) and prints FACTS {json}.
"""
import json
import sys
import time
from pathlib import Path

import bpy  # noqa: F401  (first: Embree)

from headforge.addon import render_views, splat_import
from headforge.backend import cameras as rig

ply, out = Path(sys.argv[1]), Path(sys.argv[2])
size, colour, engine = int(sys.argv[3]), sys.argv[4], sys.argv[5]
views = [int(v) for v in sys.argv[6:]]
facts = {}
bpy.ops.wm.read_factory_settings(use_empty=True)
t0 = time.perf_counter()
ob = splat_import.import_splat(ply, colour=colour)
facts["import_s"] = round(time.perf_counter() - t0, 3)

scene = bpy.context.scene
cam_obj = render_views.setup_scene(size, 32, "cpu")
scene.render.engine = engine
scene.render.film_transparent = False
scene.render.dither_intensity = 0.0
scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
scene.view_settings.view_transform = "Standard"
scene.view_settings.look = "None"
if engine == "CYCLES":
    c = scene.cycles
    c.samples, c.filter_width = 16, 0.01
    c.transparent_max_bounces, c.max_bounces = 256, 256
    c.min_transparent_bounces = 256  # no Russian roulette through the splat layers (it adds speckle)
    c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = c.volume_bounces = 0
    c.seed = 0
else:
    scene.eevee.taa_render_samples = 64
by_index = {c["index"]: c for c in rig.rig_cameras(size)}
for v in views:
    render_views.place_camera(cam_obj, by_index[v])
    t = time.perf_counter()
    s = scene.render
    s.image_settings.file_format, s.image_settings.color_mode, s.image_settings.color_depth = "PNG", "RGB", "16"
    s.filepath = str(out / f"blender_{v:03d}.png")
    bpy.ops.render.render(write_still=True)
    facts[f"render_{v}_s"] = round(time.perf_counter() - t, 2)
print("FACTS " + json.dumps(facts))
