"""Run in a fresh Python (subprocess): import splat PLYs with HeadForge's importer and render rig views.

argv: SPEC.json — {"size": S, "renders": [{"ply", "out", "engine" (CYCLES|BLENDER_EEVEE), "colour" (SH0|SH),
"render_method" (DITHERED|BLENDED), "method" (AUTO|NATIVE|QUADS), "samples", "view"}]}. Each render writes its
"out" PNG (16-bit RGB over black, Standard view transform). Prints FACTS {json} with the Blender version, whether
it has native splats, and import and render seconds.
"""
import json
import sys
import time
from pathlib import Path

import bpy  # noqa: F401  (first: Embree)

from headforge.addon import render_views, splat_import
from headforge.backend import cameras as rig

spec = json.loads(Path(sys.argv[1]).read_text())
size = spec["size"]
by_index = {c["index"]: c for c in rig.rig_cameras(size)}
facts = {"blender": bpy.app.version_string, "native": splat_import.native_splats_available(), "renders": []}
for job in spec["renders"]:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    t0 = time.perf_counter()
    if job.get("method") == "NATIVE" and not facts["native"]:
        continue
    splat_import.import_splat(job["ply"], colour=job.get("colour", "SH0"),
                              render_method=job.get("render_method", "DITHERED"), method=job.get("method", "AUTO"))
    import_s = time.perf_counter() - t0
    scene = bpy.context.scene
    cam_obj = render_views.setup_scene(size, job["samples"], "cpu")
    scene.render.engine = job["engine"]
    scene.render.film_transparent = False
    scene.render.dither_intensity = 0.0
    scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.0, 0.0, 0.0, 1.0)
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    if job["engine"] == "CYCLES":
        c = scene.cycles
        c.samples, c.filter_width = job["samples"], 0.01
        c.transparent_max_bounces, c.max_bounces = 256, 256
        c.min_transparent_bounces = 256  # no Russian roulette through the splat layers (it adds speckle)
        c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = c.volume_bounces = 0
        c.seed = 0
    else:
        scene.eevee.taa_render_samples = job["samples"]
    render_views.place_camera(cam_obj, by_index[job["view"]])
    s = scene.render
    s.image_settings.file_format, s.image_settings.color_mode, s.image_settings.color_depth = "PNG", "RGB", "16"
    s.filepath = job["out"]
    t = time.perf_counter()
    bpy.ops.render.render(write_still=True)
    facts["renders"].append({"out": job["out"], "import_s": round(import_s, 3),
                             "render_s": round(time.perf_counter() - t, 2)})
print("FACTS " + json.dumps(facts))
