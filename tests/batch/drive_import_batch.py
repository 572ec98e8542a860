"""Run in a fresh bpy process: install the repository as an extension, run Import Batch on a batch folder, print
FACTS {json} about the collections and heads it made.

argv: REPO BATCH_DIR JOBS(comma-separated) COLUMNS SPACING
"""
import json
import sys
from pathlib import Path

import bpy  # noqa: F401  (first: Embree)

sys.path.insert(0, str(Path(sys.argv[1]) / "tests" / "blender"))
import extension_setup  # noqa: E402

repo, batch_dir, jobs, columns, spacing = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), \
    float(sys.argv[5])
module = extension_setup.install(repo)
extension_setup.enable(module)
bpy.ops.wm.read_homefile(use_empty=True)
result = sorted(bpy.ops.headforge.import_batch(directory=batch_dir, jobs=jobs, columns=columns, spacing=spacing))
facts = {"result": result, "batches": []}
for coll in bpy.context.scene.collection.children:
    entry = {"name": coll.name, "jobs": []}
    for child in coll.children:
        roots = [o for o in child.objects if o.type == "EMPTY" and o.parent is None]
        meshes = [o for o in child.all_objects if o.type == "MESH"]
        bpy.context.view_layer.update()
        corners = [list(o.matrix_world @ v.co) for o in meshes for v in list(o.data.vertices)[::50]]
        keys = max((len(o.data.shape_keys.key_blocks) for o in meshes if o.data.shape_keys), default=0)
        entry["jobs"].append({"name": child.name, "job": child.get("headforge_job"),
                              "root": [list(r.location) for r in roots], "meshes": len(meshes), "shape_keys": keys,
                              "min": [min(c[i] for c in corners) for i in range(3)] if corners else None,
                              "max": [max(c[i] for c in corners) for i in range(3)] if corners else None})
    facts["batches"].append(entry)
print("FACTS " + json.dumps(facts))
