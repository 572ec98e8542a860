"""Head models (ICT-FaceKit Light by default, FLAME from a user's file) behind one interface, in the world frame."""
from ..errors import JobError
from .arkit import ARKIT_52, arkit_deltas, ict_to_arkit_name
from .base import HeadModel
from .flame import load_flame
from .ict import load_ict

__all__ = ["ARKIT_52", "HeadModel", "arkit_deltas", "ict_to_arkit_name", "load_head_model", "load_ict"]


def load_head_model(kind: str = "ict", path: str = ""):
    """The head model the rig stage fits: "ict" (ICT-FaceKit Light; `path` a converted .npz, "" the default file) or
    "flame" (`path` the user's FLAME pickle)."""
    if kind == "ict":
        return load_ict(path or None)
    if kind == "flame":
        if not path:
            raise JobError("head_model 'flame' needs rig.head_model_path: the FLAME file you downloaded "
                           "(registration at flame.is.tue.mpg.de).", code="rig.flame_path_missing")
        return load_flame(path)
    raise JobError(f"Unknown head model {kind!r}; choose 'ict' or 'flame'.", code="rig.bad_head_model")

