"""Stage `face`: `input/portrait.png` → face detection, landmarks, head pose, matte, framing crop, identity.

Outputs (all in photo pixels unless said otherwise):
  face/analysis.json   the schema below
  face/crop.png        512×512 RGB, the matted head over white, framed like the reference examples: the
                       multi-view model's input (SPEC 4.1–4.2; its centre crop of a 512² image is the identity)
  face/crop_matte.png  512×512 L, the matte in crop pixels (for RGBA consumers such as the reconstructor)
  face/matte.png       the matte at the photo's size (L, 0..255)
  face/identity.npy    float32 (D,): the chosen face's identity embedding (D = 128 dlib, 512 ArcFace)
  face/faces.png       the photo with every detected face boxed and numbered (the face chooser's preview)

analysis.json:
  "image_size": [w, h] of input/portrait.png
  "faces": every detection, ordered left to right (the numbers `--set face.face=N` refers to), each
      {"bbox": [x1, y1, x2, y2], "score": float, "kps5": [[x, y] × 5], "size_px": float, "detector": str}
      kps5 in image order as the detectors give them: eye, eye, nose tip, mouth corner, mouth corner, each pair
      left-to-right in the image (for a subject facing the camera: their right eye first). size_px is the face
      box's geometric-mean side.
  "chosen": index into "faces"
  "face": the chosen face, additionally:
      "landmarks_68": [[x, y] × 68] dlib, iBUG 300-W order, or null
      "landmarks_478": [[x, y, z] × 478] MediaPipe refined mesh (z: MediaPipe's relative depth in the same
          pixel scale, smaller = nearer the camera), or null
      "pose": {"yaw_deg", "pitch_deg", "roll_deg", "source", "rotation_cam", "alternatives"}: relative to the
          line of sight to the face. yaw > 0: the subject turned toward their own left (+X of DESIGN's world
          frame); pitch > 0: looking up; roll > 0: head tilted toward the subject's left shoulder. rotation_cam
          is the head → OpenCV camera rotation (head frame = DESIGN's world frame). See backend/face/pose.py.
      "quality": measured numbers behind the warnings (sharpness, luminance, occlusion ratios, ...)
  "crop": {"size": 512, "affine_photo_to_crop": [[a, b, tx], [c, d, ty]], "background": "white",
           "framing": {...how the anchor and scale were chosen...}}
  "matte": {"source": "alpha" | "mediapipe" | "birefnet", "coverage": fraction of the photo in the matte}
  "identity": {"model": "dlib_resnet_v1" | "arcface:<file>", "dim": D}
  "orientation": {"upright_deg": 0/90/180/270}: how far a sideways photo was turned for the detectors
  "detector": {"name", "file", "pack"}
  "mediapipe": {"runtime": "solutions" | "opencv"}: how MediaPipe's mesh and matte ran (face/landmarks.py)
  "warnings": [{"code", "message"}]
  "more_photos": only with several photos of one person: per photo after the first (input/more/NN.png)
      {"name": "NN", "distance": dlib identity distance to photo 1, "threshold": the same-person limit used};
      each one's own analysis is face/more/NN.json (this schema, without crop) and its matte face/more/NN_matte.png
Expression coefficients come from the rig stage's photo fit, not from here.

Refusals (FaceError, nothing written): face.none, face.too_small, face.cut_by_border, face.bad_choice,
face.bad_option, face.no_pose, face.different_people (a further photo shows someone else). Warnings:
face.multiple, face.small, face.head_cut, face.blurry, face.dark, face.overexposed,
face.weak_detection, face.eyes_covered, face.mouth_covered, face.profile, face.sideways, face.matte_fallback,
face.no_mesh.
"""
from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from ..face.analysis import FaceOptions, analyse, check_same_person
from ..fileio import write_image, write_json, write_npy
from ..photo import MORE_DIR
from ..stage import stage

OUTPUTS = ("face/analysis.json", "face/crop.png", "face/crop_matte.png", "face/faces.png", "face/identity.npy",
           "face/matte.png")


@stage("face", inputs=("input/portrait.png", "input/alpha.png", MORE_DIR), outputs=OUTPUTS,
       optional_outputs=("face/more",), options=FaceOptions, version="1")
def run_face(ctx) -> dict:
    opts: FaceOptions = ctx.options
    photo = np.asarray(Image.open(ctx.path("input/portrait.png")).convert("RGB"))
    alpha_path = ctx.path("input/alpha.png")
    result = analyse(photo, opts, alpha=alpha_path if alpha_path.exists() else None,
                     progress=ctx.progress)
    for w in result.analysis["warnings"]:
        ctx.warn(w["message"], code=w["code"])
    more = _more_photos(ctx, opts, photo, result.analysis)
    ctx.progress(0.9, "Writing face/")
    write_image(ctx.path("face/matte.png"), Image.fromarray(result.matte8, "L"))
    write_image(ctx.path("face/crop_matte.png"), Image.fromarray(result.crop_matte8, "L"))
    write_image(ctx.path("face/faces.png"), Image.fromarray(result.faces_preview))
    write_npy(ctx.path("face/identity.npy"), result.identity)
    write_image(ctx.path("face/crop.png"), Image.fromarray(result.crop))
    if more:
        result.analysis["more_photos"] = [{"name": name, **check} for name, _, _, check in more]
        for name, res, _, _ in more:
            write_image(ctx.path(f"face/more/{name}_matte.png"), Image.fromarray(res.matte8, "L"))
            write_json(ctx.path(f"face/more/{name}.json"), {k: v for k, v in res.analysis.items() if k != "crop"})
    write_json(ctx.path("face/analysis.json"), result.analysis)
    ctx.progress(1.0, f"{len(result.analysis['faces'])} face(s), chose {result.analysis['chosen']}",
                 preview=ctx.path("face/crop.png"))
    face = result.analysis["face"]
    return {"faces": len(result.analysis["faces"]), "chosen": result.analysis["chosen"],
            "size_px": face["size_px"], "yaw_deg": face["pose"]["yaw_deg"], "matte": result.analysis["matte"]["source"],
            "warnings": [w["code"] for w in result.analysis["warnings"]], "seconds": result.timings,
            **({"more_photos": result.analysis["more_photos"]} if more else {})}


def _more_photos(ctx, opts: FaceOptions, photo: np.ndarray, analysis: dict) -> list:
    """Analyse input/more/NN.png (several photos of one person) and check each shows photo 1's person: →
    [(name, FaceResult, photo, {"distance", "threshold"})]; a stale face/more/ is removed first."""
    if ctx.path("face/more").exists():
        shutil.rmtree(ctx.path("face/more"))
    folder = ctx.path(MORE_DIR)
    names = sorted(p.stem for p in folder.glob("[0-9][0-9].png")) if folder.is_dir() else []
    out = []
    for i, name in enumerate(names):
        ctx.progress(0.5 + 0.35 * i / len(names), f"Analysing photo {name}")
        other = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))
        alpha = folder / f"{name}_alpha.png"
        res = analyse(other, opts, alpha=alpha if alpha.exists() else None)
        for w in res.analysis["warnings"]:
            ctx.warn(f"Photo {name}: {w['message']}", code=w["code"])
        out.append((name, res, other))
    checks = check_same_person((photo, analysis), [(o, r.analysis) for _, r, o in out])
    return [(name, res, other, check) for (name, res, other), check in zip(out, checks)]
