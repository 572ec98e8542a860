"""Where the benchmarks find the team's data. Benchmarks are development scripts: unlike the backend (which never
looks in a development checkout), they read the shared data next to the repository, ../shared, or
$HEADFORGE_SHARED.

    from _data import SHARED, use_shared_ict   # benchmarks/ is on sys.path when a benchmark runs as a script
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEADFORGE_SHARED", REPO.parent / "shared")).expanduser()
SHARED_ICT = SHARED / "data" / "ict_facekit" / "ict_face_light.npz"
SHARED_MODELS = SHARED / "models"  # insightface/ and opencv_zoo/: the face stage's models_root option


def use_shared_ict() -> Path | None:
    """Hand the shared ICT-FaceKit Light to the backend through $HEADFORGE_ICT (inherited by subprocesses) unless
    HEADFORGE_ICT is already set or the shared file is absent (then the model store's own lookup applies, e.g.
    after `headforge models download ict-facekit`). Returns the path now in $HEADFORGE_ICT, or None."""
    if not os.environ.get("HEADFORGE_ICT") and SHARED_ICT.is_file():
        os.environ["HEADFORGE_ICT"] = str(SHARED_ICT)
    return Path(os.environ["HEADFORGE_ICT"]) if os.environ.get("HEADFORGE_ICT") else None
