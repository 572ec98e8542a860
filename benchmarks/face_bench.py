"""Face stage figures: warm detection + landmarks + matte + crop time on the astronaut (target <= 2 s), dlib
identity distances (mirrored astronaut < 0.4, different people in t1 > 0.6), and the bad-photo catalogue's
outcome per case.

    .venv/bin/python benchmarks/face_bench.py [--models ../shared/models] [--runs 5]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_data.py, also when loaded by path
from _data import SHARED_MODELS, use_shared_ict  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default=str(SHARED_MODELS))
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    use_shared_ict()  # the face stage's pose reads ICT-FaceKit

    from face.catalogue import CASES, astronaut, group_t1  # tests/face/catalogue.py

    from headforge.backend.errors import HeadForgeError
    from headforge.backend.face.identity import identity_distance
    from headforge.backend.face.analysis import FaceOptions, analyse

    opts = FaceOptions(models_root=args.models)
    img = astronaut()
    t0 = time.perf_counter()
    analyse(img, opts)
    print(f"first call (loads models): {time.perf_counter() - t0:.2f} s")
    core, total = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        r = analyse(img, opts)
        total.append(time.perf_counter() - t0)
        core.append(sum(r.timings[k] for k in ("detect", "landmarks", "matte", "crop")))
    print(f"astronaut, warm, median of {args.runs}: detection+landmarks+matte+crop {statistics.median(core):.3f} s "
          f"(target <= 2 s); whole analysis incl. identity and quality {statistics.median(total):.3f} s; "
          f"parts {({k: round(v, 3) for k, v in r.timings.items()})}")

    mirrored = analyse(np.ascontiguousarray(img[:, ::-1]), opts)
    print(f"dlib distance astronaut vs mirrored: {identity_distance(r.identity, mirrored.identity):.4f} (target < 0.4)")
    t1 = group_t1()
    embs = [analyse(t1, FaceOptions(models_root=args.models, face=i)).identity for i in range(6)]
    d = [identity_distance(embs[i], embs[j]) for i in range(6) for j in range(i + 1, 6)]
    print(f"dlib distance, different people in t1 (15 pairs): min {min(d):.4f} mean {np.mean(d):.4f} (target > 0.6)")

    print("\ncatalogue:")
    for name, (build, expected) in CASES.items():
        try:
            a = analyse(build(), opts).analysis
            got = f"ok: {len(a['faces'])} face(s), chose {a['chosen']}, warnings " + \
                  ", ".join(w["code"] for w in a["warnings"])
            exp_ok = "error" not in expected and expected.get("warn", set()) <= {w["code"] for w in a["warnings"]}
        except HeadForgeError as e:
            got, exp_ok = f"refused: {e.code}", expected.get("error") == e.code
        want = f"error {expected['error']}" if "error" in expected else \
            f"ok, must warn {sorted(expected.get('warn', set()))}"
        print(f"  {'PASS' if exp_ok else 'FAIL'}  {name:24s} {got}   [expected: {want}]")


if __name__ == "__main__":
    main()
