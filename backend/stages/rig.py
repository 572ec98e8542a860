"""Stage `rig`: fit a head model (ICT-FaceKit Light by default, FLAME from a user's file) to the portrait,
neutralise its expression, texture it, and write the rigged head: rig/head_rigged.glb + rig/rig.json.

Mode "instant" needs only input/ and face/ (a FaceBuilder-style head from one photo on the CPU in seconds);
with head_model "flame" the user's FLAME file is fitted instead and carries ARKit keys transferred from ICT
(FLAME's pickle has no UVs: a flat skin colour from the photo, or per-vertex colours from the mesh).
Mode "full" with mesh/head.glb fits the model to the reconstructed surface (3D landmarks from renders of it +
its points), registers it non-rigidly to that surface (ICT; FLAME is refined toward the face), carries the
expression shapes over, transfers its texture and keeps hair as a separate mesh; without a mesh it falls back
to the photo fit and notes so.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..errors import FaceError, StageError
from ..fileio import write_bytes, write_image, write_json
from ..headmodel import load_head_model
from ..headmodel.arkit import ict_weights_to_arkit
from ..rig.build import BONES
from ..rig.gltf import png_bytes, rig_to_gltf
from ..rig.mesh_rig import load_bake_views, load_textured_glb, rig_from_mesh
from ..rig.photo_rig import load_more_photos, rig_from_photos
from ..rig.record import RIG_FORMAT, rig_record
from ..stage import stage


@dataclass
class RigOptions:
    # "ict" (ICT-FaceKit Light, MIT) or "flame" (needs head_model_path)
    head_model: str = field(default="ict", metadata={"choices": ("ict", "flame")})
    head_model_path: str = ""  # a converted ICT .npz or the user's FLAME pickle; empty: the default ICT file
    # "auto" (MediaPipe 478 when present), "mediapipe478" or "ibug68"
    landmarks: str = field(default="auto", metadata={"choices": ("auto", "mediapipe478", "ibug68")})
    identity_modes: int = field(default=60, metadata={"range": (1, 300)})  # identity coefficients fitted
    # skin atlas height in px (width is twice)
    texture_size: int = field(default=512, metadata={"range": (64, 8192)})


def _head_model_file(inputs: dict, options: dict) -> dict:
    """A user-supplied head model (a FLAME file): replacing it re-runs the rig."""
    return {"head_model": options["head_model_path"]} if options.get("head_model_path") else {}


@stage("rig", inputs=("input/portrait.png", "face/analysis.json", "face/matte.png", "mesh/head.glb", "input/more",
                      "face/more", "views"),
       outputs=("rig/head_rigged.glb", "rig/rig.json"), optional_outputs=("rig/skin.png",), options=RigOptions,
       version="5",  # 5: the portrait fit keeps opposite keys exclusive; the hair and texture changes of 2026-12-07
       external_inputs=_head_model_file)
def run_rig(ctx) -> dict:
    opts: RigOptions = ctx.options
    t0 = time.time()
    present = {p: ctx.path(p).exists() for p in ("splat/head.ply", "mesh/head.glb")}
    if ctx.mode in ("full", "views") and present["mesh/head.glb"]:
        ctx.progress(0.02, "Loading the head model")
        return _rig_from_reconstruction(ctx, load_head_model(opts.head_model, opts.head_model_path), opts, present, t0)
    analysis_path = ctx.path("face/analysis.json")
    if not analysis_path.is_file():
        raise FaceError("face/analysis.json is missing: run the face stage first.", code="rig.no_analysis")
    try:
        analysis = json.loads(analysis_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise StageError(f"face/analysis.json is unreadable ({e}).", code="rig.bad_analysis") from e
    photo = np.asarray(Image.open(ctx.path("input/portrait.png")).convert("RGB"))
    ctx.progress(0.02, "Loading the head model")
    model = load_head_model(opts.head_model, opts.head_model_path)
    matte_path = ctx.path("face/matte.png")
    matte = (np.asarray(Image.open(matte_path).convert("L"), np.float32) / 255.0) if matte_path.is_file() else None
    if matte is not None and matte.shape != photo.shape[:2]:
        matte = None  # a matte of another photo: label without it
    photos = [(photo, analysis, matte)] + load_more_photos(ctx.path, analysis)  # several photos of one person
    rig, atlas, fit, lm, info = rig_from_photos(model, photos, landmarks=opts.landmarks,
                                                n_identity=opts.identity_modes, texture_size=opts.texture_size,
                                                progress=lambda f, m: ctx.progress(0.05 + 0.8 * f, m))
    if info["reprojection_error_iod"] > 0.08:
        ctx.warn(f"The head model matches the landmarks loosely ({100 * info['reprojection_error_iod']:.1f}% of "
                 "the eye distance); the photo may show an extreme expression or a strong profile.",
                 code="rig.loose_fit")
    if ctx.mode == "full" and not any(present.values()):
        ctx.note("No splat or mesh was found: the rig was fitted to the photo alone.")
    ctx.progress(0.88, "Writing rig/head_rigged.glb")
    # the portrait's expression, removed from the Basis: as ARKit weights for ICT, as PCA coefficients for FLAME
    arkit_expr = ict_weights_to_arkit(fit.expression, model.expression_names) if model.uv is not None else None
    record = {
        **rig_record(rig, model, fit),
        "fit": {"landmarks": lm.kind, "identity": fit.identity.tolist(),
                "portrait_expression_arkit": arkit_expr, "portrait_expression": fit.expression.tolist(),
                "portrait_gaze_deg": info.get("portrait_gaze_deg") or {},  # the photo's gaze: eye bones' pose
                "camera": {"K": fit.K.tolist(), "w2c": fit.w2c.tolist()},
                "reprojection_error_iod": info["reprojection_error_iod"],
                "inter_ocular_px": fit.inter_ocular_px},
        "neutralised": True,
        "inputs_used": {"photo": True, **present},
        "texture": info["texture"],
        "eyes": info.get("eyes"),  # iris and sclera colours read from the photo
        "hair_mesh": info.get("hair_mesh") is not None,  # a hair volume shaped to the photo's outline
        "hair": info.get("hair"),
        "photos": info.get("photos"),  # several photos: each one's camera, yaw, expression and fit error
    }
    _write(ctx, rig, model, atlas, [info["hair_mesh"]] if info.get("hair_mesh") else None, record)
    ctx.progress(1.0, f"Rigged head: {len(rig.key_names)} shape keys, {len(BONES)} bones")
    return {"reprojection_error_iod": round(info["reprojection_error_iod"], 4), "landmarks": lm.kind,
            "seconds": round(time.time() - t0, 2)}


def _rig_from_reconstruction(ctx, model, opts: RigOptions, present: dict, t0: float) -> dict:
    """Full mode with mesh/head.glb: fit to the reconstructed surface, refine, transfer its texture, split hair."""
    mesh = load_textured_glb(ctx.path("mesh/head.glb"))
    rig, atlas, fit, hair, info = rig_from_mesh(model, mesh, texture_size=opts.texture_size,
                                                n_identity=max(opts.identity_modes, 100),
                                                views=load_bake_views(ctx.path("views")),
                                                progress=lambda f, m: ctx.progress(0.05 + 0.8 * f, m))
    record = {
        **rig_record(rig, model, fit),
        "fit": {"source": "mesh/head.glb", "identity": fit.identity.tolist(),
                "expression": fit.expression.tolist(), **{k: v for k, v in info.items() if k != "seconds"}},
        # rig frame → the reconstruction's frame (where the splat and mesh/head.glb live)
        "to_reconstruction": {"scale": fit.scale, "R": fit.R.tolist(), "t": fit.t.tolist()},
        "neutralised": True,
        "inputs_used": {"photo": False, **present},
        "hair_mesh": hair is not None,
    }
    ctx.progress(0.9, "Writing rig/head_rigged.glb")
    _write(ctx, rig, model, atlas, [hair] if hair else None, record)
    ctx.progress(1.0, f"Rigged head from the reconstruction ({info['landmarks_3d']} landmarks)")
    return {"source": "mesh", "landmarks_3d": info["landmarks_3d"], "hair_triangles": info["hair_triangles"],
            "seconds": round(time.time() - t0, 2)}


def _write(ctx, rig, model, atlas, attachments, record: dict) -> None:
    """rig/head_rigged.glb, rig/skin.png (absent for FLAME: per-vertex colours instead) and rig/rig.json."""
    gl = rig_to_gltf(rig, png_bytes(atlas) if atlas is not None else None,
                     extras={"headforge": {"rig_format": RIG_FORMAT, "head_model": model.name}},
                     attachments=attachments)
    write_bytes(ctx.path("rig/head_rigged.glb"), b"".join(gl.save_to_bytes()))
    if atlas is not None:
        write_image(ctx.path("rig/skin.png"), Image.fromarray(atlas))
    write_json(ctx.path("rig/rig.json"), record)
