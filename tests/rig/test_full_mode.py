"""The rig stage in mode "full" with a reconstructed mesh: the Lee Perry-Smith scan stands in for
mesh/head.glb (real size, world frame), and must come back as a fitted, refined, textured rig.
"Infinite, 3D Head Scan" by Lee Perry-Smith / Infinite-Realities, CC BY 3.0 (via the three.js examples)."""
import json

import numpy as np


def _lps_world(shared):
    import trimesh

    from headforge.backend.headmodel.frames import yup_to_world

    mesh = trimesh.load(shared / "data" / "heads" / "lee_perry_smith" / "LeePerrySmith_textured.glb",
                        force="mesh", process=False)
    v = yup_to_world(np.asarray(mesh.vertices), 0.05).astype(np.float64)  # ≈ 5 cm per unit (README)
    v -= [0.0, 0.0, v[:, 2].max() - 0.12]
    return mesh, v


def _job_with_lps_mesh(tmp_path, shared, astronaut_path):
    import trimesh
    from PIL import Image

    from headforge.backend.headmodel.frames import world_to_gltf

    mesh, v = _lps_world(shared)
    job = tmp_path / "job"
    (job / "mesh").mkdir(parents=True)
    (job / "input").mkdir()
    (job / "face").mkdir()
    out = trimesh.Trimesh(world_to_gltf(v), mesh.faces, visual=mesh.visual, process=False)
    out.export(job / "mesh" / "head.glb")
    Image.open(astronaut_path).save(job / "input" / "portrait.png")
    (job / "face" / "analysis.json").write_text(json.dumps({"image_size": [512, 512], "face": None}))
    return job, mesh, v


def test_rig_stage_full_mode_uses_the_mesh(tmp_path, shared, astronaut_path, gltf_validator):
    from headforge.backend.events import CancelToken
    from headforge.backend.fitting.geometry import SurfaceQuery
    from headforge.backend.headmodel import ARKIT_52
    from headforge.backend.job import Job, StageContext
    from headforge.backend.stages.rig import RigOptions, run_rig

    job, mesh, v = _job_with_lps_mesh(tmp_path, shared, astronaut_path)
    events = []
    ctx = StageContext(Job(job), "rig", RigOptions(texture_size=256), "full", events.append, CancelToken(),
                       lambda f: f)
    metrics = run_rig(ctx)
    assert metrics["source"] == "mesh" and metrics["landmarks_3d"] > 300
    rec = json.loads((job / "rig" / "rig.json").read_text())
    assert rec["shape_keys"] == list(ARKIT_52) and rec["inputs_used"]["mesh/head.glb"]
    report = gltf_validator(job / "rig" / "head_rigged.glb")
    assert report["errors"] == 0, report["messages"]
    # the rig's neutral face, carried into the reconstruction's frame, lies on the scan's face
    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.build import build_rig

    m = load_ict()
    tr = rec["to_reconstruction"]
    rig = build_rig(m, np.array(rec["fit"]["identity"]))
    face = m.face_region()
    expr = np.array(rec["fit"]["expression"])
    posed = m.vertices(np.array(rec["fit"]["identity"]), expr)[face]
    P = tr["scale"] * posed @ np.array(tr["R"]).T + np.array(tr["t"])
    d = SurfaceQuery(v, np.asarray(mesh.faces)).closest(P)[1]
    print(f"LPS as mesh/head.glb: fitted face to scan mean {1000 * d.mean():.2f} mm, "
          f"hair triangles {metrics['hair_triangles']}")
    assert np.median(d) < 0.002
    assert rig.basis.shape[0] == m.n_vertices


def test_flame_rig_from_the_mesh(tmp_path, shared, ict, astronaut_path, gltf_validator):
    """FLAME in full mode: fitted to the reconstructed surface, refined toward it, coloured per vertex from its
    texture, ARKit keys carried over; the rig's neutral face lies on the scan."""
    from headforge.backend.events import CancelToken
    from headforge.backend.fitting.geometry import SurfaceQuery
    from headforge.backend.headmodel import ARKIT_52
    from headforge.backend.headmodel.flame import load_flame
    from headforge.backend.job import Job, StageContext
    from headforge.backend.rig.flame_rig import build_flame_rig
    from headforge.backend.stages.rig import RigOptions, run_rig
    from tests.rig.test_flame import write_flame_from_ict

    flame_file = tmp_path / "flame_from_ict.pkl"
    write_flame_from_ict(flame_file, ict)
    job, mesh, v = _job_with_lps_mesh(tmp_path, shared, astronaut_path)
    ctx = StageContext(Job(job), "rig", RigOptions(head_model="flame", head_model_path=str(flame_file)), "full",
                       lambda e: None, CancelToken(), lambda f: f)
    metrics = run_rig(ctx)
    rec = json.loads((job / "rig" / "rig.json").read_text())
    assert metrics["source"] == "mesh" and rec["head_model"]["name"] == "flame"
    assert rec["shape_keys"] == list(ARKIT_52) and not (job / "rig" / "skin.png").exists()
    report = gltf_validator(job / "rig" / "head_rigged.glb")
    assert report["errors"] == 0, report["messages"]
    m = load_flame(flame_file)
    tr = rec["to_reconstruction"]
    basis = build_flame_rig(m, np.array(rec["fit"]["identity"])).basis.astype(np.float64)
    front = basis[:, 1] < np.percentile(basis[:, 1], 20)  # the front fifth of the head: the face
    P = tr["scale"] * basis[front] @ np.array(tr["R"]).T + np.array(tr["t"])
    d = SurfaceQuery(v, np.asarray(mesh.faces)).closest(P)[1]
    print(f"FLAME-format head fitted to LPS: front of the face to scan median {1000 * np.median(d):.2f} mm")
    assert np.median(d) < 0.003
    # the skin's per-vertex colours come from the scan's texture: skin tones that vary over the face
    import pygltflib

    from tests.glb import read_accessor

    gl = pygltflib.GLTF2().load(str(job / "rig" / "head_rigged.glb"))
    prim = next(m for m in gl.meshes if m.name == "head").primitives[0]  # the skin
    rgb = 255 * read_accessor(gl, prim.attributes.COLOR_0).astype(np.float64)
    print(f"  skin colours mean {rgb.mean(0).round(1)}, std {rgb.std(0).round(1)}")
    assert rgb[:, 0].mean() > rgb[:, 2].mean() + 20 and rgb.std(0).min() > 5
