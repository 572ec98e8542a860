"""The pipeline's stages, one module each, and the stage order of each mode. The job runner (backend/job.py) runs
the stages it is given; this list is the default."""
from . import face, input, mesh, multiview, rig, splat

STAGES = {fn.stage.name: fn.stage for fn in (input.run_input, face.run_face, multiview.run_multiview, splat.run_splat,
                                              mesh.run_mesh, rig.run_rig)}

# Stage order of each mode.
PIPELINES: dict[str, tuple[str, ...]] = {
    "full": ("input", "face", "multiview", "splat", "mesh", "rig"),
    "instant": ("input", "face", "rig"),
    "views": ("splat", "mesh", "rig"),  # a job folder whose views/ already exist (render-views, external views)
}
