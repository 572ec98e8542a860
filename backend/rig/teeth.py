"""The upper front teeth where an open mouth shows them.

ICT-FaceKit's jawOpen lowers the upper lip by a few millimetres as well as the jaw, and its upper incisors end
about 1.5 mm below the closed upper lip: an open mouth hides them behind the upper lip (issue 16: "open mouths
show no upper front teeth"). The upper teeth and the gums that do not follow the jaw are moved down so that
their edge shows SHOW_M below the upper lip of the fully open mouth, by at most MAX_DROP_M (a deeper bite, still
behind the lower lip when the mouth is closed). What the drop cannot reach, jawOpen itself carries: its shape
key moves the upper teeth and gums down with the upper lip, so the incisors keep showing SHOW_M below it as the
mouth opens (people show 2-4 mm of upper incisor; ICT's open mouth showed a sliver: 17 px of a 256 px head at
jawOpen 0.8 on the astronaut).
"""
from __future__ import annotations

import numpy as np

from ..headmodel import ARKIT_52

SHOW_M = 0.0045  # upper incisor below the open mouth's upper lip (people show 2-4 mm, more as it opens)
MAX_DROP_M = 0.003
UPPER_LIP_INNER = 62  # iBUG 68: the upper lip's inner edge at the midline


def show_upper_teeth(model, rig) -> float:
    """Move the rig's upper teeth and upper gums down in its neutral basis, and with the upper lip in its
    jawOpen shape key (in place). Returns the neutral drop in metres (0 when the model has no teeth or
    landmarks); rig.extras["upper_teeth_follow_m"]: how far jawOpen moves them down at full weight."""
    if "teeth" not in model.groups or model.landmarks_68 is None:
        return 0.0
    jaw = rig.deltas[ARKIT_52.index("jawOpen")].astype(np.float64)
    basis = rig.basis.astype(np.float64)
    teeth = model.groups["teeth"]
    move = np.linalg.norm(jaw[teeth], axis=1)
    upper = teeth[move <= 0.5 * move.max()]  # the lower teeth ride on the jaw
    front = basis[upper, 1] < basis[upper, 1].min() + 0.004  # the incisors: the front 4 mm (the head faces −Y)
    edge = basis[upper[front], 2].min()
    lip = int(model.landmarks_68[UPPER_LIP_INNER])
    lip_open = basis[lip, 2] + jaw[lip, 2]
    drop = float(np.clip(edge - (lip_open - SHOW_M), 0.0, MAX_DROP_M))
    follow = float(min(0.0, (lip_open - SHOW_M) - (edge - drop)))  # < 0: further down at full jawOpen
    moved = upper
    if "gums_and_tongue" in model.groups:
        gums = model.groups["gums_and_tongue"]
        moved = np.concatenate([upper, gums[np.linalg.norm(jaw[gums], axis=1) <= 0.25 * move.max()]])
    rig.basis[moved, 2] -= drop
    rig.deltas[ARKIT_52.index("jawOpen"), moved, 2] += follow
    rig.extras["upper_teeth_follow_m"] = -follow
    return drop
