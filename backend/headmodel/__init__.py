"""Head models (ICT-FaceKit Light by default, FLAME from a user's file) behind one interface, in the world frame."""
from .arkit import ARKIT_52, arkit_deltas, ict_to_arkit_name
from .base import HeadModel
from .ict import load_ict

__all__ = ["ARKIT_52", "HeadModel", "arkit_deltas", "ict_to_arkit_name", "load_ict"]
