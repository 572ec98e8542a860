"""`rig/rig.json`: its format version and the part every rig stage run writes (head model, frame, shape keys, bones,
jaw); the rig stage (backend/stages/rig.py) adds how the fit was made."""
from __future__ import annotations

import numpy as np

from .build import BONE_PARENTS, BONES

RIG_FORMAT = 1


def rig_record(rig, model, fit) -> dict:
    """The parts of rig/rig.json common to photo and reconstruction fits."""
    return {
        "format": RIG_FORMAT,
        "head_model": {"name": model.name, "licence": model.info.get("licence"), "identity_modes": len(fit.identity)},
        "units": "metres", "frame": "world: +Z up, face toward -Y, +X the subject's left (glb: glTF +Y up)",
        "shape_keys": list(rig.key_names),
        "bones": [{"name": n, "parent": BONES[p] if p >= 0 else None, "head": rig.joints[j].tolist()}
                  for j, (n, p) in enumerate(zip(BONES, BONE_PARENTS))],
        "jaw": {"axis": rig.jaw_axis.tolist(), "open_angle_deg": float(np.degrees(rig.jaw_open_angle))},
    }
