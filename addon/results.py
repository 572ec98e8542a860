"""Bring a finished job's artifacts into the scene: one collection, one root empty, the splat and the head."""
from __future__ import annotations

import json
import time
from pathlib import Path

import bpy

from ..backend.errors import HeadForgeError

SPLAT = "splat/head.ply"
HEADS = ("rig/head_rigged.glb", "mesh/head.glb")  # the rigged head when the rig stage ran, else the bare mesh


def job_faces(job_dir) -> list[dict]:
    """The faces the face stage found (face/analysis.json), [] when it has not run."""
    p = Path(job_dir) / "face" / "analysis.json"
    try:
        return list(json.loads(p.read_text()).get("faces", []))
    except (OSError, ValueError):
        return []


def artifacts_of(job_dir) -> dict:
    job = Path(job_dir)
    head = next((job / h for h in HEADS if (job / h).is_file()), None)
    return {"splat": job / SPLAT if (job / SPLAT).is_file() else None, "head": head}


def _remove_collection(coll) -> None:
    for ob in list(coll.all_objects):
        bpy.data.objects.remove(ob)
    for child in list(coll.children_recursive):
        bpy.data.collections.remove(child)
    bpy.data.collections.remove(coll)


def import_job_results(job_dir, *, max_preview: int = 200_000, colour: str = "SH0",
                       render_method: str = "DITHERED") -> dict:
    """Import (or re-import, replacing the previous import of the same job) the job's splat and head.

    Returns {collection, root, splat, head facts, seconds}; {} parts are absent when the job did not make them.
    Raises HeadForgeError when the job has nothing to import."""
    from . import head_import, splat_import

    t0 = time.perf_counter()
    job = Path(job_dir)
    found = artifacts_of(job)
    if not any(found.values()):
        raise HeadForgeError(f"{job} has no splat or head yet (run the splat, mesh or rig stage first).",
                             code="import.nothing")
    name = job.name
    key = str(job.resolve())
    # Built beside the previous import of this job, which is replaced only once the new one is complete: a
    # failure leaves the scene as it was.
    previous = [c for c in bpy.data.collections if c.get("headforge_job") == key]
    coll = bpy.data.collections.new(f"HeadForge {name}")
    coll["headforge_job"] = key
    bpy.context.scene.collection.children.link(coll)
    try:
        root = bpy.data.objects.new(name, None)
        root.empty_display_type, root.empty_display_size = "PLAIN_AXES", 0.1
        root["headforge_job"] = key
        coll.objects.link(root)
        out = {"collection": coll, "root": root}
        if found["head"] is not None:
            head = head_import.import_head(found["head"], name=f"{name}_head", collection=coll, root=root)
            root["headforge_head"] = str(found["head"])
            out["head"] = head["facts"]
        if found["splat"] is not None:
            ob = splat_import.import_splat(found["splat"], name=f"{name}_splat", collection=coll,
                                           max_preview=max_preview, colour=colour, render_method=render_method)
            ob.parent = root
            out["splat"] = ob
    except BaseException:
        _remove_collection(coll)
        raise
    for old in previous:
        _remove_collection(old)
    coll.name = f"HeadForge {name}"
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out
