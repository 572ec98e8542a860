"""`DATASET/<id>/landmarks.json`: the expression points of each view where a face is found, for the training's
expression loss (backend/train/expression.py reads it instead of running MediaPipe on every target frame).

The points are those the loss uses (train/expression.EXPRESSION_POINTS: lips, eyes and brows of the face stage's
MediaPipe mesh, face/landmarks.image_mesh_478), found on each view composited over white as training sees it
(train/data.over_white), at the views' full size. Views with no face found (the back of the head, most profiles) are
absent from "views"; "searched" counts the views looked at.

    {"size": S, "points": "mediapipe-478 lips+eyes+brows (train/expression.EXPRESSION_POINTS)", "searched": 96,
     "views": {"<cameras.json index>": [[x, y], ...]}}
"""
from __future__ import annotations

from pathlib import Path

from ..fileio import write_json
from ..train.data import over_white
from ..train.expression import expression_points
from ..views import read_views
from . import layout

FILE = layout.LANDMARKS_FILE
POINTS = "mediapipe-478 lips+eyes+brows (train/expression.EXPRESSION_POINTS)"


def view_landmarks(views_dir: Path, progress=lambda f, m: None) -> dict:
    """landmarks.json's content for one views folder."""
    cams, views = read_views(views_dir, code="dataset")
    found = {}
    for n, v in enumerate(views):
        pts = expression_points(over_white(v.rgba))
        if pts is not None:
            found[str(int(cams[v.camera_index]["index"]))] = [[round(float(x), 2), round(float(y), 2)] for x, y in pts]
        progress((n + 1) / len(views), f"landmarks of view {n + 1}/{len(views)}")
    return {"size": int(views[0].rgba.shape[1]), "points": POINTS, "searched": len(views), "views": found}


def write_landmarks(root: Path, seq_id: str) -> dict:
    """Write `<root>/<seq_id>/landmarks.json`; returns its content."""
    data = view_landmarks(layout.views_dir(root, seq_id))
    write_json(layout.sequence_dir(root, seq_id) / FILE, data)
    return data
