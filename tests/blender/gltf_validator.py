"""The Khronos glTF validator (npm package gltf-validator), installed once into a temp folder; tests skip, saying
why, where node/npm is missing or npm cannot install it."""
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

VERSION = "2.0.0-dev.3.10"
SCRIPT = ("const fs = require('fs'); const v = require('gltf-validator');\n"
          "v.validateBytes(new Uint8Array(fs.readFileSync(process.argv[2])), {maxIssues: 500})\n"
          "  .then(r => console.log(JSON.stringify(r))).catch(e => { console.error(e); process.exit(2); });\n")


def validator() -> Path:
    """The validating script (node SCRIPT FILE prints the report as JSON)."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node/npm not installed")
    root = Path(tempfile.gettempdir()) / "headforge-gltf-validator"
    if not (root / "node_modules" / "gltf-validator").is_dir():
        root.mkdir(exist_ok=True)
        proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", f"gltf-validator@{VERSION}"],
                              cwd=root, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            pytest.skip(f"npm could not install gltf-validator: {proc.stderr[-300:]}")
    script = root / "validate.js"
    script.write_text(SCRIPT)
    return script


def validate(path: Path) -> dict:
    """The validator's `issues` for a .glb/.gltf file."""
    proc = subprocess.run(["node", str(validator()), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["issues"]
