"""ICT-FaceKit Light (MIT, USC ICT) from its compact .npz, converted to the world frame.

The archive's arrays, units and axes are documented in ict_facekit/README.md of the team's data: centimetres,
+Y up, face toward +Z, +X the subject's left; 100 identity modes scaled to N(0, 1) coefficients and 57
expression blendshapes with ARKit-style `_L`/`_R` names (53 of them are upstream's own set).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from ..errors import ModelMissingError
from ..models import store
from .base import HeadModel
from .frames import ict_to_world
from .ict_convert import convert_ict

ICT_FILENAME = "ict_face_light.npz"
N_EXPRESSIONS = 53  # upstream's loader set; PupilDilate_* and cheekRaiser_* are left out
REQUIRED = ("neutral", "faces", "identity_basis", "expression_basis", "expression_names", "group_names",
            "group_ranges", "landmarks_68", "uv", "face_uv", "tri_material", "material_names")


ICT_HINT = ("Download it (MIT licence): `headforge models download ict-facekit`; in Blender: Preferences → "
            "HeadForge → Models → download ICT-FaceKit Light. Or set HEADFORGE_ICT to a converted .npz.")


def default_ict_path(root: str | os.PathLike | None = None, *, convert: bool = True) -> Path | None:
    """$HEADFORGE_ICT when set, else <models root>/ict_facekit/ict_face_light.npz from the model store (the
    registry asset `ict-facekit`, converted from its downloaded sources on first use); None when absent.
    convert=False (doctor): never convert; the .npz path is returned when its sources are there to convert."""
    if os.environ.get("HEADFORGE_ICT"):
        return Path(os.environ["HEADFORGE_ICT"]).expanduser()

    path = store.model_path("ict_facekit", ICT_FILENAME, root=root)
    if path.is_file():
        return path
    if not convert:
        return path if (path.parent / "generic_neutral_mesh.obj").is_file() else None
    return _convert_downloaded(path.parent)


def _convert_downloaded(folder: Path) -> Path | None:
    """Convert the registry's downloaded upstream files (models folder/ict_facekit) into the .npz, once."""
    if not (folder / "generic_neutral_mesh.obj").is_file():
        return None

    out = folder / ICT_FILENAME
    convert_ict(folder, out)
    return out


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, n_identity: int) -> HeadModel:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ModelMissingError(f"{path} is not a readable ICT-FaceKit archive ({e}).",
                                code="model.ict_unreadable") from e
    missing = [k for k in REQUIRED if k not in z.files]
    if missing:
        raise ModelMissingError(f"{path} lacks the arrays {', '.join(missing)}; convert ICT-FaceKit again.",
                                code="model.ict_incomplete")
    neutral = ict_to_world(z["neutral"])  # (V, 3) m
    V = neutral.shape[0]
    names = [str(n) for n in z["expression_names"]][:N_EXPRESSIONS]
    groups = {str(n): np.arange(lo, hi, dtype=np.int32) for n, (lo, hi) in zip(z["group_names"], z["group_ranges"])}
    if "detail_names" in z.files:
        for n, (lo, hi) in zip(z["detail_names"], z["detail_ranges"]):
            if not str(n).startswith("tooth_"):
                groups[str(n) if str(n) != "narrow_face_area" else "face_area"] = np.arange(lo, hi, dtype=np.int32)
    if "fitting_vertices" in z.files:
        groups["fitting"] = z["fitting_vertices"].astype(np.int32)
    model = HeadModel(
        name="ict-facekit-light",
        neutral=neutral,
        faces=z["faces"].astype(np.int32),
        identity_basis=ict_to_world(z["identity_basis"][:n_identity]),
        expression_basis=ict_to_world(z["expression_basis"][:N_EXPRESSIONS]),
        expression_names=names,
        groups=groups,
        landmarks_68=z["landmarks_68"].astype(np.int64),
        uv=z["uv"].astype(np.float32),
        face_uv=z["face_uv"].astype(np.int32),
        face_material=z["tri_material"].astype(np.int8),
        material_names=[str(n) for n in z["material_names"]],
        expression_range=(0.0, 1.0),
        info={"source": "https://github.com/ICT-VGL/ICT-FaceKit", "licence": "MIT", "file": path},
    )
    if model.faces.max() >= V or model.identity_basis.shape[1:] != (V, 3):
        raise ModelMissingError(f"{path} is inconsistent (faces or bases do not match {V} vertices).",
                                code="model.ict_incomplete")
    return model


def load_ict(path: str | os.PathLike | None = None, n_identity: int = 100) -> HeadModel:
    """Load ICT-FaceKit Light as a HeadModel in the world frame (metres). Raises ModelMissingError."""
    p = Path(path) if path is not None else default_ict_path()
    if p is None or not p.is_file():
        raise ModelMissingError(
            f"ICT-FaceKit Light ({ICT_FILENAME}) was not found"
            + (f" at {p}" if p is not None else "") + ".",
            code="model.ict_missing",
            hint=ICT_HINT)
    return _load_cached(str(p.resolve()), int(n_identity))
