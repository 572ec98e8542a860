"""The portrait's own expression as a one-frame take: the instant fit estimates it (rig.json's
fit.portrait_expression_arkit, removed from the rig's Basis) and where the photo's eyes look (fit.portrait_gaze_deg;
the rig rests looking ahead), and keying it brings the photo's expression back onto the neutral rig as shape-key
values and eye-bone rotations. The fit never uses both keys of an opposite pair (eyeLookUp with eyeLookDown, In with
Out, jaw and mouth Left with Right: fitting/photo.EXCLUSIVE_KEYS); a job rigged before that rule may still hold both."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..headmodel.arkit import ARKIT_52
from .take import AnimationError, Take


def portrait_expression_take(rig_json) -> Take:
    """One frame: the 52 ARKit weights the rig stage fitted to the portrait. AnimationError when the record is
    missing, unreadable or has no ARKit expression (a FLAME rig stores PCA coefficients instead)."""
    p = Path(rig_json)
    if p.is_dir():
        p = p / "rig" / "rig.json" if (p / "rig" / "rig.json").is_file() else p / "rig.json"
    try:
        record = json.loads(p.read_text())
    except FileNotFoundError:
        raise AnimationError(f"{p} does not exist: the portrait's expression comes from a job's rig stage.",
                             code="animate.no_rig_record", hint="Pick the job folder (or its rig/rig.json).") from None
    except (OSError, ValueError) as e:
        raise AnimationError(f"{p} cannot be read ({e}).", code="animate.no_rig_record") from e
    expr = (record.get("fit") or {}).get("portrait_expression_arkit")
    if not isinstance(expr, dict) or not expr:
        raise AnimationError(f"{p.name} holds no ARKit expression of the portrait (a FLAME rig, or an older job).",
                             code="animate.no_portrait_expression")
    unknown = sorted(set(expr) - set(ARKIT_52))
    values = np.array([float(expr.get(n, 0.0)) for n in ARKIT_52])
    if unknown or not np.isfinite(values).all():
        raise AnimationError(f"{p.name}: the portrait expression has unknown names or values ({unknown[:3]}).",
                             code="animate.no_portrait_expression")
    eyes = {}
    for side, key in (("eye_left", "gaze_left_deg"), ("eye_right", "gaze_right_deg")):
        yaw_pitch = ((record.get("fit") or {}).get("portrait_gaze_deg") or {}).get(key)
        if yaw_pitch is not None and np.isfinite(yaw_pitch).all():
            # the Take's (yaw, pitch, roll) radians, R = Rz(yaw) Rx(pitch): pitch > 0 turns −Y (ahead) down
            eyes[side] = np.radians([[yaw_pitch[0], -yaw_pitch[1], 0.0]])
    return Take(times=np.zeros(1), names=ARKIT_52, weights=values[None], fps=30.0, name="portrait_expression",
                **eyes, info={"format": "rig.json", "source": str(p)})
