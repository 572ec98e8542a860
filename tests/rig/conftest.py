"""Fixtures for the rig tests: the ICT model, face/analysis.json made by running the detectors directly, and
the Khronos glTF validator (npm `gltf-validator`, installed once into a cache folder outside the repo)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

VALIDATOR_VERSION = "2.0.0-dev.3.10"
VALIDATOR_DIR = (Path(os.environ.get("HEADFORGE_TEST_CACHE", Path.home() / ".cache" / "headforge-tests"))
                 / "gltf-validator")
_VALIDATE_JS = r"""
const fs = require('fs');
const v = require('gltf-validator');
const data = new Uint8Array(fs.readFileSync(process.argv[2]));
v.validateBytes(data, {maxIssues: 100}).then(r => {
  console.log(JSON.stringify({errors: r.issues.numErrors, warnings: r.issues.numWarnings,
    messages: r.issues.messages.slice(0, 20).map(m => [m.code, m.severity, m.pointer, m.message])}));
}).catch(e => { console.error(String(e)); process.exit(2); });
"""


@pytest.fixture(scope="session")
def ict(shared):
    from headforge.backend.headmodel import load_ict

    return load_ict(shared / "data" / "ict_facekit" / "ict_face_light.npz")


def analysis_for(image: np.ndarray) -> dict:
    """face/analysis.json as the face stage writes it, from MediaPipe (478) and dlib (68) run directly."""
    from headforge.backend.fitting.landmarks import dlib_68, mediapipe_478

    mp = mediapipe_478(image)
    l68 = dlib_68(image)
    h, w = image.shape[:2]
    face = None
    if mp is not None or l68 is not None:
        pts = mp[:, :2] if mp is not None else l68
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        face = {"bbox": [float(x0), float(y0), float(x1), float(y1)], "kps5": None,
                "landmarks_68": None if l68 is None else l68.tolist(),
                "landmarks_478": None if mp is None else mp.tolist(),
                "pose": {"yaw_deg": 0.0, "pitch_deg": 0.0, "roll_deg": 0.0}}
    return {"image_size": [w, h], "face": face}


def write_analysis(job_dir: Path, image: np.ndarray) -> dict:
    a = analysis_for(image)
    (job_dir / "face").mkdir(parents=True, exist_ok=True)
    (job_dir / "face" / "analysis.json").write_text(json.dumps(a))
    return a


@pytest.fixture(scope="session")
def gltf_validator():
    """A callable path → {errors, warnings, messages}; skips when node/npm are absent."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm not available for the Khronos glTF validator")
    pkg = VALIDATOR_DIR / "node_modules" / "gltf-validator"
    if not pkg.is_dir():
        VALIDATOR_DIR.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([npm, "install", "--silent", "--prefix", str(VALIDATOR_DIR),
                            f"gltf-validator@{VALIDATOR_VERSION}"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not pkg.is_dir():
            pytest.skip(f"could not install gltf-validator from npm: {r.stderr[-300:]}")
    script = VALIDATOR_DIR / "validate.js"
    script.write_text(_VALIDATE_JS)

    def validate(path) -> dict:
        r = subprocess.run([node, str(script), str(path)], capture_output=True, text=True, timeout=300,
                           cwd=str(VALIDATOR_DIR))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    return validate
