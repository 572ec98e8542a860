"""Rig sanity figures for the ICT-based rig of a random person: jawOpen chin drop and cranium motion,
eyeBlinkLeft on each eye, the smallest key, jaw-bone vs jawOpen agreement, the glb's size.

    .venv/bin/python benchmarks/rig_sanity.py
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_data.py, also when loaded by path
from _data import use_shared_ict  # noqa: E402

from headforge.backend.headmodel import ARKIT_52, load_ict
from headforge.backend.rig.build import _rot, build_rig, skin_vertices


def main():
    use_shared_ict()
    m = load_ict()
    t = time.time()
    rig = build_rig(m, np.random.default_rng(3).standard_normal(40) * 0.7)
    print(f"build_rig {time.time() - t:.2f} s; jaw pivot {np.round(rig.joints[3], 4).tolist()} m, "
          f"jawOpen ≈ {np.degrees(rig.jaw_open_angle):.1f}° about +X")
    key = lambda n: rig.deltas[ARKIT_52.index(n)].astype(np.float64)  # noqa: E731
    chin = m.landmarks_68[8]
    cranium = rig.basis[:, 2] > rig.joints[4, 2] + 0.04
    jo = key("jawOpen")
    print(f"jawOpen: chin down {1000 * -jo[chin, 2]:.1f} mm, "
          f"cranium max {1000 * np.linalg.norm(jo[cranium], axis=1).max():.3f} mm")
    bl = np.linalg.norm(key("eyeBlinkLeft"), axis=1)
    x = rig.basis[:, 0]
    print(f"eyeBlinkLeft: +X side max {1000 * bl[x > 0.01].max():.2f} mm, "
          f"−X side max {1000 * bl[x < -0.01].max():.3f} mm")
    moves = np.abs(rig.deltas).reshape(52, -1).max(1)
    print(f"every key moves: smallest max displacement {1000 * moves.min():.2f} mm ({ARKIT_52[moves.argmin()]})")
    posed = skin_vertices(rig, {"jaw": _rot([1, 0, 0], rig.jaw_open_angle)})
    face = m.groups["face"]
    mv = face[np.linalg.norm(jo[face], axis=1) > 2e-3]
    err = np.linalg.norm((posed - rig.basis)[mv] - jo[mv], axis=1).mean()
    print(f"jaw bone at {np.degrees(rig.jaw_open_angle):.1f}° vs jawOpen on {len(mv)} moving face vertices: mean "
          f"difference {1000 * err:.2f} mm of mean motion {1000 * np.linalg.norm(jo[mv], axis=1).mean():.2f} mm; "
          f"chin down by the bone {1000 * -(posed - rig.basis)[chin, 2]:.1f} mm")


if __name__ == "__main__":
    main()
