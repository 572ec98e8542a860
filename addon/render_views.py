"""Render a head asset from the 96-view rig with Cycles: the paper's multi-view dataset format.

Writes `NNN.png` (RGBA, transparent background), `NNN_depth.npy` (float32 (H, W), metres along the camera's
+Z, 0 where empty), `NNN_normal.npy` (float16 (H, W, 3), world-frame unit normals, 0 where empty) and
`cameras.json` (backend/cameras.py layout, plus the asset's normalisation). Run as
`python -m headforge.addon.render_views ASSET -o DIR` (what `headforge render-views` does) or inside Blender.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix

from ..backend import cameras as rig
from ..backend.errors import HeadForgeError, InputImageError
from ..backend.events import ProgressEvent
from ..backend.fileio import write_npy
from ..backend.headmodel.frames import YUP_TO_WORLD

# How each importer maps file axes to Blender's (glTF and OBJ are +Y up, front +Z; Blender is +Z up).
Y_UP_TO_Z_UP = np.eye(4)
Y_UP_TO_Z_UP[:3, :3] = YUP_TO_WORLD


def import_asset(path: Path) -> tuple[list, np.ndarray]:
    """Load the asset into an empty scene; returns its mesh objects and the file→Blender axis matrix (None for FBX,
    whose importer applies the axes and unit scale its header declares)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputImageError(f"{path} does not exist.", code="asset.not_found")
    if suffix in (".glb", ".gltf"):
        bpy.ops.import_scene.gltf(filepath=str(path))
        axes = Y_UP_TO_Z_UP
    elif suffix == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path), forward_axis="NEGATIVE_Z", up_axis="Y")
        axes = Y_UP_TO_Z_UP
    elif suffix == ".fbx":  # axes and units from the file's header: its frame → Blender's is not known here
        bpy.ops.import_scene.fbx(filepath=str(path))
        axes = None
    elif suffix == ".blend":
        with bpy.data.libraries.load(str(path), link=False) as (src, dst):
            dst.objects = list(src.objects)
        for ob in dst.objects:
            if ob is not None and ob.type in ("MESH", "EMPTY", "ARMATURE"):
                bpy.context.scene.collection.objects.link(ob)
        axes = np.eye(4)
    else:
        raise InputImageError(f"{path.name}: render-views reads .glb, .gltf, .obj, .fbx or .blend.",
                              code="asset.unsupported_format")
    meshes = [ob for ob in bpy.context.scene.objects if ob.type == "MESH"]
    if not meshes:
        raise InputImageError(f"{path.name} holds no mesh.", code="asset.no_mesh")
    return meshes, axes


def world_vertices(meshes) -> np.ndarray:
    """All evaluated vertices in Blender world coordinates, (N, 3)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    chunks = []
    for ob in meshes:
        ev = ob.evaluated_get(depsgraph)
        me = ev.to_mesh()
        co = np.empty(len(me.vertices) * 3, dtype=np.float64)
        me.vertices.foreach_get("co", co)
        mw = np.array(ev.matrix_world)
        chunks.append(co.reshape(-1, 3) @ mw[:3, :3].T + mw[:3, 3])
        ev.to_mesh_clear()
    return np.concatenate(chunks)


def normalise(meshes) -> np.ndarray:
    """Centre the asset's box on the origin and scale its largest extent to rig.OBJECT_EXTENT_M.

    Returns the 4×4 applied (Blender import frame → rig world). The asset must already face −Y (glTF/OBJ
    assets facing +Z do after import)."""
    v = world_vertices(meshes)
    lo, hi = v.min(0), v.max(0)
    s = rig.OBJECT_EXTENT_M / float((hi - lo).max())
    T = np.diag([s, s, s, 1.0])
    T[:3, 3] = -s * (lo + hi) / 2.0
    for ob in bpy.context.scene.objects:
        if ob.parent is None:
            ob.matrix_world = Matrix(T.tolist()) @ ob.matrix_world
    bpy.context.view_layer.update()
    return T


def setup_scene(size: int, samples: int, device: str) -> bpy.types.Object:
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.render.use_persistent_data = True
    scene.render.film_transparent = True
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"
    scene.cycles.device = _pick_device(device)
    world = bpy.data.worlds.new("headforge_uniform") if scene.world is None else scene.world
    scene.world = world
    world.use_nodes = True
    bg = next(n for n in world.node_tree.nodes if n.type == "BACKGROUND")
    bg.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)  # even, shadow-free light: the albedo shows
    bg.inputs["Strength"].default_value = 1.0
    cam_data = bpy.data.cameras.new("headforge_rig")
    cam_data.sensor_fit = "VERTICAL"
    cam_data.clip_start, cam_data.clip_end = 0.01, 100.0
    cam = bpy.data.objects.new("headforge_rig", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    return cam


def _pick_device(device: str) -> str:
    if device == "cpu":
        return "CPU"
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
        for kind in ("OPTIX", "CUDA", "HIP", "METAL", "ONEAPI"):
            try:
                prefs.compute_device_type = kind
            except TypeError:
                continue
            prefs.get_devices()
            if any(d.type == kind for d in prefs.devices):
                for d in prefs.devices:
                    d.use = d.type == kind
                return "GPU"
    except (KeyError, AttributeError):
        pass
    if device == "gpu":
        raise HeadForgeError("No GPU is available to Cycles.", code="render.no_gpu")
    return "CPU"


def place_camera(cam_obj, cam: dict) -> None:
    b = rig.blender_camera(cam)
    cam_obj.matrix_world = Matrix(b["matrix_world"].tolist())
    cam_obj.data.angle_y = b["angle_y"]
    cam_obj.data.shift_x, cam_obj.data.shift_y = b["shift_x"], b["shift_y"]


def aux_material(kind: str) -> bpy.types.Material:
    """Emission-only override: camera-space depth (kind "depth") or world normal·0.5+0.5 (kind "normal")."""
    mat = bpy.data.materials.new(f"headforge_{kind}")
    mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.clear()
    geo = nt.nodes.new("ShaderNodeNewGeometry")
    emit = nt.nodes.new("ShaderNodeEmission")
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    if kind == "depth":
        xf = nt.nodes.new("ShaderNodeVectorTransform")
        xf.vector_type, xf.convert_from, xf.convert_to = "POINT", "WORLD", "CAMERA"
        sep = nt.nodes.new("ShaderNodeSeparateXYZ")  # Cycles' camera space looks along +Z: z is the depth
        nt.links.new(geo.outputs["Position"], xf.inputs["Vector"])
        nt.links.new(xf.outputs["Vector"], sep.inputs["Vector"])
        nt.links.new(sep.outputs["Z"], emit.inputs["Color"])
    else:
        mad = nt.nodes.new("ShaderNodeVectorMath")
        mad.operation = "MULTIPLY_ADD"
        mad.inputs[1].default_value = (0.5, 0.5, 0.5)
        mad.inputs[2].default_value = (0.5, 0.5, 0.5)
        nt.links.new(geo.outputs["Normal"], mad.inputs[0])
        nt.links.new(mad.outputs["Vector"], emit.inputs["Color"])
    emit.inputs["Strength"].default_value = 1.0
    nt.links.new(emit.outputs["Emission"], out.inputs["Surface"])
    return mat


def render_to(path: Path, fmt: str) -> None:
    s = bpy.context.scene.render
    if fmt == "PNG":
        s.image_settings.file_format, s.image_settings.color_mode, s.image_settings.color_depth = "PNG", "RGBA", "8"
    else:
        s.image_settings.file_format = "OPEN_EXR"
        s.image_settings.color_mode, s.image_settings.color_depth = "RGBA", "32"
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    s.filepath = str(tmp)
    bpy.ops.render.render(write_still=True)
    tmp.replace(path)


def read_exr(path: Path) -> np.ndarray:
    img = bpy.data.images.load(str(path), check_existing=False)
    w, h = img.size
    px = np.empty(w * h * 4, dtype=np.float32)
    img.pixels.foreach_get(px)
    bpy.data.images.remove(img)
    return px.reshape(h, w, 4)[::-1]  # Blender stores rows bottom-up


def render_views(asset: Path, out: Path, size: int = 256, rings=None, samples: int = 16, device: str = "auto",
                 emit=lambda e: None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    meshes, axes = import_asset(asset)
    T = normalise(meshes)
    cam_obj = setup_scene(size, samples, device)
    cams = rig.rig_cameras(size, rings=rings)
    scene = bpy.context.scene
    n, timings = len(cams), {}
    passes = [("color", None), ("depth", aux_material("depth")), ("normal", aux_material("normal"))]
    for p, (kind, mat) in enumerate(passes):
        start = time.time()
        scene.view_layers[0].material_override = mat
        if mat is not None:
            scene.cycles.samples, scene.cycles.filter_width = 1, 0.01
            scene.view_settings.view_transform = "Raw" if "Raw" in _view_transforms() else "Standard"
        for i, cam in enumerate(cams):
            place_camera(cam_obj, cam)
            stem = f"{cam['index']:03d}"
            if kind == "color":
                render_to(out / f"{stem}.png", "PNG")
            else:
                exr = out / f".{stem}_{kind}.exr"
                render_to(exr, "EXR")
                px = read_exr(exr)
                exr.unlink()
                hit = px[..., 3] > 0.5
                if kind == "depth":
                    write_npy(out / f"{stem}_depth.npy", np.where(hit, px[..., 0], 0.0).astype(np.float32))
                else:
                    nrm = px[..., :3] * 2.0 - 1.0
                    nrm /= np.maximum(np.linalg.norm(nrm, axis=-1, keepdims=True), 1e-8)
                    write_npy(out / f"{stem}_normal.npy", np.where(hit[..., None], nrm, 0.0).astype(np.float16))
            done = (p * n + i + 1) / (len(passes) * n)
            emit(ProgressEvent("progress", "render-views", done, done, f"{kind} {i + 1}/{n}",
                               str(out / f"{stem}.png") if kind == "color" else None))
        timings[kind] = round(time.time() - start, 2)
    scene.view_layers[0].material_override = None
    for c in cams:
        c["file"] = f"{c['index']:03d}.png"
    rig.save_cameras_json(out / "cameras.json", cams, source=str(asset.resolve()),
                          normalisation={"blender_import_to_world": T.tolist(),
                                         "file_to_world": None if axes is None else (T @ axes).tolist(),
                                         "object_extent_m": rig.OBJECT_EXTENT_M},
                          render={"engine": "CYCLES", "samples": samples, "device": scene.cycles.device,
                                  "seconds": timings, "total_seconds": round(time.time() - t0, 2)})
    return {"views": len(cams), "seconds": round(time.time() - t0, 2), "pass_seconds": timings}


def _view_transforms() -> set[str]:
    prop = bpy.types.ColorManagedViewSettings.bl_rna.properties["view_transform"]
    try:
        return {i.identifier for i in prop.enum_items}
    except TypeError:
        return set()


def parse_rings(text: str):
    if text == "all":
        return None
    rings = [int(r) for r in text.split(",")]
    if any(r < 0 or r >= len(rig.ELEVATIONS_DEG) for r in rings):
        raise HeadForgeError(f"--rings {text}: rings are 0..{len(rig.ELEVATIONS_DEG) - 1}.", code="cli.bad_option")
    return rings


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="headforge render-views")
    p.add_argument("asset")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--rings", default="all")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    emit = (lambda e: print(e.to_json(), flush=True)) if a.json else (
        lambda e: print(f"{e.fraction * 100:5.1f}% {e.message}", flush=True))
    try:
        result = render_views(Path(a.asset), Path(a.output), a.size, parse_rings(a.rings), a.samples, a.device, emit)
    except HeadForgeError as err:
        print(ProgressEvent("error", "render-views", message=err.message, data=err.to_dict()).to_json(), flush=True)
        return 1
    emit(ProgressEvent("job_done", "render-views", 1.0, 1.0,
                       f"{result['views']} views in {result['seconds']} s → {a.output}", data=result))
    return 0


def render_sequence(asset: Path, out: Path, size: int, samples: int = 16, device: str = "auto",
                    emit=lambda e: None, label: str = "", threads: int = 0) -> dict:
    """Colour views only (the dataset builder's sequences): the asset normalised as `render_views` does, each
    `NNN.png` rendered unless it is already there (a half-rendered sequence continues where it stopped: files
    appear only once complete), `cameras.json` written last, when every view is there. `threads` > 0: Cycles'
    CPU threads (several workers share the machine's cores)."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    meshes, axes = import_asset(asset)
    T = normalise(meshes)
    cam_obj = setup_scene(size, samples, device)
    if threads > 0:
        bpy.context.scene.render.threads_mode, bpy.context.scene.render.threads = "FIXED", threads
    cams = rig.rig_cameras(size)
    rendered = 0
    for i, cam in enumerate(cams):
        cam["file"] = f"{cam['index']:03d}.png"
        if not (out / cam["file"]).is_file():
            place_camera(cam_obj, cam)
            render_to(out / cam["file"], "PNG")
            rendered += 1
        emit(ProgressEvent("progress", "dataset", (i + 1) / len(cams), (i + 1) / len(cams),
                           f"{label} view {i + 1}/{len(cams)}", None,
                           data={"sequence": label, "view": i + 1, "views": len(cams)}))
    seconds = round(time.time() - t0, 2)
    rig.save_cameras_json(out / "cameras.json", cams, source=str(asset.resolve()),
                          normalisation={"blender_import_to_world": T.tolist(),
                                         "file_to_world": None if axes is None else (T @ axes).tolist(),
                                         "object_extent_m": rig.OBJECT_EXTENT_M},
                          render={"engine": "CYCLES", "samples": samples, "device": bpy.context.scene.cycles.device,
                                  "views_rendered": rendered, "total_seconds": seconds})
    return {"views": len(cams), "rendered": rendered, "seconds": seconds}


def batch_main(argv=None) -> int:
    """`python -m headforge.addon.render_views --batch JOBS.json`: one Blender process renders several dataset
    sequences (JOBS.json: {"size", "samples", "device", "sequences": [{"id", "asset", "out"}]}), JSON-line events
    on stdout; a sequence that fails is reported (an "error" event naming it) and the next one goes on. A sequence
    with an "ict" entry is a built-in head whose .glb is written here first when absent."""
    import json

    p = argparse.ArgumentParser(prog="render_views --batch")
    p.add_argument("--batch", required=True)
    a = p.parse_args(argv)
    jobs = json.loads(Path(a.batch).read_text())
    failed = 0
    for seq in jobs["sequences"]:
        def emit(e):
            print(e.to_json(), flush=True)
        try:
            if seq.get("ict") and not Path(seq["asset"]).is_file():  # a built-in head: made here, in parallel
                from ..backend.dataset.ict_heads import write_sampled_head

                emit(ProgressEvent("progress", "dataset", 0.0, 0.0, f"{seq['id']}: writing the ICT-FaceKit head",
                                   data={"sequence": seq["id"], "view": 0, "views": 96}))
                write_sampled_head(Path(seq["asset"]), **seq["ict"])
            result = render_sequence(Path(seq["asset"]), Path(seq["out"]), int(jobs["size"]), int(jobs["samples"]),
                                     jobs.get("device", "auto"), emit, seq["id"], int(jobs.get("threads", 0)))
        except HeadForgeError as err:
            failed += 1
            print(ProgressEvent("error", "dataset", message=f"{seq['id']}: {err.message}",
                                data={**err.to_dict(), "sequence": seq["id"]}).to_json(), flush=True)
            continue
        print(ProgressEvent("info", "dataset", message=f"{seq['id']} rendered",
                            data={**result, "sequence": seq["id"], "done": True}).to_json(), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(batch_main() if "--batch" in sys.argv[1:] else main())
