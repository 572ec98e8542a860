"""Identity embeddings for evaluation and face choice: insightface's ArcFace when a recogniser is present in the
pack, dlib's 128-D ResNet embedding (face_recognition_models, offline) otherwise.

`identity_similarity(a, b)` is the paper's CSIM (cosine similarity); `identity_distance(a, b)` the Euclidean
distance, the measure dlib's embedding is trained for (same person below 0.6).
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np

from ..errors import ModelMissingError
from ..models.store import open_model
from .landmarks import dlib_box

ARCFACE_FILES = ("w600k_r50.onnx", "w600k_mbf.onnx", "glintr100.onnx")
DLIB_SAME_PERSON = 0.6  # dlib's documented threshold on the Euclidean distance


def identity_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (CSIM); 1 = identical direction."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embeddings of different models cannot be compared ({a.shape} vs {b.shape})")
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance of two embeddings (dlib: < 0.6 means the same person)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embeddings of different models cannot be compared ({a.shape} vs {b.shape})")
    return float(np.linalg.norm(a - b))


def find_arcface(pack_dir: Path | None) -> Path | None:
    if pack_dir is None:
        return None
    for name in ARCFACE_FILES:
        if (pack_dir / name).is_file():
            return pack_dir / name
    return None


@functools.lru_cache(maxsize=1)
def _dlib_models():
    import dlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import face_recognition_models as frm
    return (dlib.face_recognition_model_v1(frm.face_recognition_model_location()),
            dlib.shape_predictor(frm.pose_predictor_five_point_model_location()))


def dlib_embedding(rgb: np.ndarray, kps5: np.ndarray) -> np.ndarray:
    """dlib's 128-D embedding (128,) of the face at `kps5`, aligned by dlib's own 5-point predictor (the
    alignment the network was trained with; it separates t1's people better than the 68-point shape)."""
    import dlib


    encoder, predictor5 = _dlib_models()
    x1, y1, x2, y2 = dlib_box(np.asarray(kps5, dtype=np.float64))
    rgb = np.ascontiguousarray(rgb)
    shape = predictor5(rgb, dlib.rectangle(int(round(x1)), int(round(y1)), int(round(x2)), int(round(y2))))
    return np.asarray(encoder.compute_face_descriptor(rgb, shape), dtype=np.float32)


@functools.lru_cache(maxsize=2)
def _arcface_model(path: str):
    from insightface.model_zoo import get_model

    model = get_model(path, providers=["CPUExecutionProvider"])
    model.prepare(ctx_id=-1)
    return model


def arcface_embedding(rgb: np.ndarray, kps5: np.ndarray, path: Path) -> np.ndarray:
    """insightface ArcFace (512,) of the face aligned by its five keypoints (112² similarity warp)."""
    from insightface.utils import face_align

    aligned = face_align.norm_crop(np.ascontiguousarray(rgb[..., ::-1]), landmark=np.asarray(kps5, np.float32))
    model = open_model(path, _arcface_model, (f"insightface-{Path(path).parent.name}",))
    return np.asarray(model.get_feat(aligned), dtype=np.float32).ravel()


def embed(rgb: np.ndarray, kps5: np.ndarray, method: str = "auto",
          pack_dir: Path | None = None) -> tuple[np.ndarray, str]:
    """(embedding, model name) for one face; `method` is auto | arcface | dlib."""
    arc = find_arcface(pack_dir) if method in ("auto", "arcface") else None
    if arc is not None:
        return arcface_embedding(rgb, kps5, arc), f"arcface:{arc.name}"
    if method == "arcface":
        raise ModelMissingError("No ArcFace recogniser (w600k_*.onnx) in the insightface pack.",
                                code="model.missing",
                                hint="Use --set face.identity=dlib, or add the pack's recogniser.")
    return dlib_embedding(rgb, kps5), "dlib_resnet_v1"
