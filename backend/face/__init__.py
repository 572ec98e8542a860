"""Face analysis for the `face` stage (backend/stages/face.py), run as a whole by `analysis.analyse`: detection
(`detect`), dense landmarks (`landmarks`), head pose (`pose`), matting (`matte`), the multi-view model's framing
(`framing`), identity embeddings (`identity`) and photo-quality measures (`quality`). Pure Python; no bpy.

Face chooser in the Blender panel (for the add-on's UI; the backend side is done):
  * After the `face` stage, read `face/analysis.json`: `faces` is the list of every detection, numbered left to
    right in the photo (stable across runs of the same photo and detector); `chosen` is the face used.
    `face/faces.png` is a ready preview: the photo (≤ 768 px) with every face boxed and numbered, the chosen
    one green. Show it with the crop (`face/crop.png`) and matte (`face/matte.png`) previews.
  * When `len(faces) > 1` (the job also carries a `face.multiple` warning), draw an enum or a row of buttons
    "Face 0 … Face N-1", labelled with each face's `size_px` and position, defaulting to `chosen`.
    `ui_face_items(analysis)` below builds the (identifier, name, description) triples for an EnumProperty.
  * Choosing a face re-runs the job from the face stage with the stage option `face` set to that number:
    `run_job(job, options={"face": {"face": N}})` (CLI: `--set face.face=N`); the runner re-runs `face` and
    everything after it because the option changed. `-1` means "the largest" (the default).
  * A refusal (`face.none`, `face.too_small`, `face.cut_by_border`, `face.bad_choice`) arrives as an error
    event with `data["code"]`; show its message and hint; the job folder keeps the input stage's results.
"""


def ui_face_items(analysis: dict) -> list[tuple[str, str, str]]:
    """(identifier, name, description) per detected face, for a Blender EnumProperty's items callback."""
    items = []
    for i, f in enumerate(analysis.get("faces", [])):
        x1, y1, x2, y2 = f["bbox"]
        largest = " (largest)" if f["size_px"] == max(g["size_px"] for g in analysis["faces"]) else ""
        items.append((str(i), f"Face {i}{largest}",
                      f"{f['size_px']:.0f} px face at ({(x1 + x2) / 2:.0f}, {(y1 + y2) / 2:.0f}), "
                      f"confidence {f['score']:.2f}"))
    return items
