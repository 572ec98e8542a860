"""Rig-fitting benchmark: synthetic ICT heads and the Lee Perry-Smith scan. Prints the measured figures.

    .venv/bin/python benchmarks/rig_fit.py [--trials 5] [--skip-lps] [--skip-synthetic] [--threads 1,2,8]

Each figure is measured once per BLAS/OpenMP thread count, each run in a fresh process (the thread count is
fixed when the BLAS library loads); the runs must agree to 0.05 mm (exit status 1 otherwise).

Synthetic: random identity (100 modes, N(0, 1)), random sparse expression (4 of 53 in [0.2, 1]), random
similarity (scale 0.8–1.25, any small rotation, translation); targets are the 68 landmark positions and 6000
surface samples of the face region (no vertex correspondence). Reported: face-region RMS vertex error (mm at
real size), mean |expression error| over the 53 coefficients.

Lee Perry-Smith: the textured scan, scaled to real size (5 cm per file unit, see ../shared/data/heads/README),
rendered from 4 views with our rasterizer; MediaPipe (478) and dlib (68) detections are cast onto the surface
and averaged (3D landmarks); the model is fitted to both landmark sets (MediaPipe's face oval and dlib's jaw
line excluded: silhouette points slide with the view) plus surface samples, each detector's set carrying the
same total weight whatever its point count. Reported: face-region Chamfer distance to the scan (mm) and the
68-landmark error against dlib's points cast onto the scan, where dlib's placement on the model comes from
renders of the model (`ict_dlib68.npz`). The 51 inner points are compared in 3D; the 17 jaw-line points are
silhouette (contour) points with no defined depth along the viewing ray, so they are compared across the
frontal viewing direction (X and Z). The plain 3D mean over all 68 is printed too.
"Infinite, 3D Head Scan" by Lee Perry-Smith / Infinite-Realities, CC BY 3.0 (via the three.js examples).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HEADFORGE_SHARED", REPO.parent / "shared"))
LPS_UNIT_M = 0.05


def ict_path():
    """$HEADFORGE_ICT when set (None: the model store's lookup), else the shared data's ICT-FaceKit Light."""
    return None if os.environ.get("HEADFORGE_ICT") else SHARED / "data" / "ict_facekit" / "ict_face_light.npz"


def synthetic(trials: int, seed: int = 0, samples: int = 6000, iterations: int = 20):
    from scipy.spatial.transform import Rotation

    from headforge.backend.fitting.fit3d import fit_3d, sample_surface
    from headforge.backend.fitting.photo import vertex_landmarks
    from headforge.backend.headmodel import load_ict

    m = load_ict(ict_path())
    rng = np.random.default_rng(seed)
    face = m.face_region()
    inside = np.zeros(m.n_vertices, bool)
    inside[face] = True
    ff = np.nonzero(np.all(inside[m.faces], axis=1))[0]
    tri, bary = vertex_landmarks(m.landmarks_68, m)
    rms_all, expr_all = [], []
    for k in range(trials):
        a = rng.standard_normal(100)
        b = np.zeros(m.n_expression)
        b[rng.choice(m.n_expression, 4, replace=False)] = rng.uniform(0.2, 1.0, 4)
        s = rng.uniform(0.8, 1.25)
        R = Rotation.from_rotvec(rng.normal(0, 0.3, 3)).as_matrix()
        t = rng.normal(0, 0.1, 3)
        T = s * m.vertices(a, b) @ R.T + t
        pts, nrm = sample_surface(T, m.faces[ff], samples, rng)
        t0 = time.time()
        fit = fit_3d(m, landmarks=T[m.landmarks_68], landmark_tri=tri, landmark_bary=bary, surface=pts,
                     surface_normals=nrm, iterations=iterations)
        Vf = fit.transform(m.vertices(fit.identity, fit.expression))
        rms = float(np.sqrt(((Vf[face] - T[face]) ** 2).sum(1).mean()) / s)
        err = float(np.abs(fit.expression - b).mean())
        rms_all.append(rms)
        expr_all.append(err)
        print(f"  synthetic head {k}: face RMS {1000 * rms:.3f} mm, expression error {err:.4f} "
              f"({fit.stats['iterations']} iterations, {'converged' if fit.stats['converged'] else 'NOT converged'}, "
              f"{time.time() - t0:.1f} s)")
    print(f"synthetic ICT heads ({trials}): face-region RMS vertex error mean {1000 * np.mean(rms_all):.3f} mm "
          f"(max {1000 * np.max(rms_all):.3f}); expression-coefficient error mean {np.mean(expr_all):.4f} "
          f"(max {np.max(expr_all):.4f})")
    return rms_all, expr_all


def load_lps():
    """Lee Perry-Smith in the world frame (metres): verts (V, 3), faces, per-corner uv (F, 3, 2), texture."""
    import trimesh

    from headforge.backend.headmodel.frames import yup_to_world

    mesh = trimesh.load(SHARED / "data" / "heads" / "lee_perry_smith" / "LeePerrySmith_textured.glb", force="mesh",
                        process=False)
    v = yup_to_world(np.asarray(mesh.vertices), LPS_UNIT_M).astype(np.float64)
    f = np.asarray(mesh.faces, np.int64)
    uv = np.asarray(mesh.visual.uv, np.float64)  # trimesh flips glTF v to OpenGL (v up)
    uv_corner = np.stack([uv[f][..., 0], 1.0 - uv[f][..., 1]], axis=-1)  # back to glTF (v down)
    tex = np.asarray(mesh.visual.material.baseColorTexture.convert("RGB"))
    return v, f, uv_corner, tex


def lps(iterations: int = 15, samples: int = 8000):
    from headforge.backend.fitting.correspondence import load_mediapipe_correspondence
    from headforge.backend.fitting.fit3d import fit_3d, sample_surface
    from headforge.backend.fitting.geometry import SurfaceQuery
    from headforge.backend.fitting.landmarks import dlib_68, mediapipe_478
    from headforge.backend.fitting.multiview import landmarks_on_mesh
    from headforge.backend.headmodel import load_ict
    from headforge.backend.fitting.landmarks import MP_FACE_OVAL

    m = load_ict(ict_path())
    v, f, uvc, tex = load_lps()
    # centre the head at the origin (landmark centroid of a first frontal detection is refined below)
    centre = np.array([0.0, 0.0, v[:, 2].max() - 0.12])
    v = v - centre
    t0 = time.time()
    mp3, mp_hits = landmarks_on_mesh(v, f, uvc, tex, mediapipe_478, 478)
    l68, l68_hits = landmarks_on_mesh(v, f, uvc, tex, dlib_68, 68, views=((0, 0), (0, -8), (0, 8), (-8, 0), (8, 0)))
    print(f"  LPS 3D landmarks: MediaPipe {int((mp_hits > 0).sum())}/478, dlib {int((l68_hits > 0).sum())}/68 "
          f"({time.time() - t0:.1f} s)")
    tri, bary = load_mediapipe_correspondence(m)
    use = (mp_hits > 0)
    use[list(MP_FACE_OVAL)] = False
    rng = np.random.default_rng(0)
    pts, nrm = sample_surface(v, f, samples, rng)
    front = pts[:, 1] < np.nanmean(mp3[use], axis=0)[1] + 0.06  # the front half of the head
    from headforge.backend.fitting.correspondence import landmark_points, load_dlib68_correspondence

    dtri, dbary = load_dlib68_correspondence(m)
    use68 = l68_hits > 0
    use68[:17] = False  # the jaw line slides with the view: not a fixed 3D point
    # each detector's set weighs the same in total (0.5 of the landmark term's 1.0 between them)
    n_mp, n_dl = int(use.sum()), int(use68.sum())
    weight = (n_mp + n_dl) * np.concatenate([np.full(n_mp, 0.25 / n_mp), np.full(n_dl, 0.25 / n_dl)])
    t0 = time.time()
    fit = fit_3d(m, landmarks=np.concatenate([mp3[use], l68[use68]]),
                 landmark_tri=np.concatenate([tri[use], dtri[use68]]),
                 landmark_bary=np.concatenate([bary[use], dbary[use68]]), surface=pts[front],
                 surface_normals=nrm[front], iterations=iterations, landmark_weight=weight)
    print(f"  LPS fit {time.time() - t0:.1f} s; scale {fit.scale:.3f}")
    Vf = fit.transform(m.vertices(fit.identity, fit.expression))
    # face-region Chamfer: model face samples → scan, scan points over the model face → model
    inside = np.zeros(m.n_vertices, bool)
    inside[m.face_region()] = True
    ff = np.nonzero(np.all(inside[m.faces], axis=1))[0]
    mpts, _ = sample_surface(Vf, m.faces[ff], 20000, rng)
    d_ms = SurfaceQuery(v, f).closest(mpts)[1]
    spts, _ = sample_surface(v, f, 60000, rng)
    q = SurfaceQuery(Vf, m.faces)
    cp, d_sm, ti = q.closest(spts)
    on_face = np.isin(ti, ff)
    # scan points whose nearest model point is on the face region, minus its rim (within 3 mm of the rim)
    rim = SurfaceQuery(Vf, m.faces[~np.isin(np.arange(len(m.faces)), ff)]).closest(cp[on_face])[1] > 0.003
    d_sm = d_sm[on_face][rim]
    chamfer = 0.5 * (d_ms.mean() + d_sm.mean())
    diff = landmark_points(m, Vf, dtri, dbary) - l68
    lm_err_3d = np.linalg.norm(diff, axis=1)
    lm_err = lm_err_3d.copy()
    lm_err[:17] = np.linalg.norm(diff[:17][:, [0, 2]], axis=1)  # jaw line: across the frontal viewing ray (−Y)
    lm_err_ict = np.linalg.norm(Vf[m.landmarks_68] - l68, axis=1)
    ok = np.isfinite(lm_err)
    print(f"  (against ICT's own Multi-PIE landmark vertices instead of dlib's placement on the model: "
          f"{1000 * lm_err_ict[ok].mean():.3f} mm; all 68 in plain 3D: {1000 * lm_err_3d[ok].mean():.3f} mm)")
    print(f"Lee Perry-Smith: face-region Chamfer {1000 * chamfer:.3f} mm (model→scan {1000 * d_ms.mean():.3f}, "
          f"scan→model {1000 * d_sm.mean():.3f}); 68-landmark error mean {1000 * lm_err[ok].mean():.3f} mm "
          f"(inner 51 {1000 * lm_err[17:][ok[17:]].mean():.3f} mm, jaw line across the view "
          f"{1000 * lm_err[:17][ok[:17]].mean():.3f} mm; {int(ok.sum())} of 68 points landed on the scan)")
    return chamfer, lm_err


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CHILD_ENV = "HEADFORGE_RIG_FIT_CHILD"


def blas_threads() -> list[int]:
    """Thread counts the OpenBLAS libraries loaded in this process report (numpy's, scipy's; Linux), [] when
    none says. OpenBLAS caps a requested count at the machine's cores."""
    import ctypes

    import numpy.linalg  # noqa: F401  (loads numpy's BLAS)
    import scipy.linalg  # noqa: F401

    try:
        with open("/proc/self/maps") as fh:
            libs = sorted({line.split()[-1] for line in fh if "openblas" in line.lower()})
    except OSError:
        return []
    out = []
    for lib in libs:
        for sym in ("openblas_get_num_threads64_", "openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
                    "scipy_openblas_get_num_threads"):
            try:
                out.append(int(getattr(ctypes.CDLL(lib), sym)()))
                break
            except (AttributeError, OSError):
                continue
    return out


def run(args) -> dict:
    """The benchmark in this process → its figures (metres, coefficients) for the thread-count comparison."""
    out = {}
    if not args.skip_synthetic:
        rms, expr = synthetic(args.trials)
        out["synthetic face RMS (mm)"] = [1000 * r for r in rms]
        out["synthetic expression error"] = expr
    if not args.skip_lps:
        chamfer, lm_err = lps()
        out["LPS face Chamfer (mm)"] = [1000 * chamfer]
        out["LPS 68-landmark error (mm)"] = [1000 * float(np.nanmean(lm_err))]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--skip-lps", action="store_true")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--threads", default="1,2,8",
                   help="BLAS/OpenMP thread counts, comma-separated: the benchmark runs once per count in a fresh "
                        "process (OMP/OPENBLAS/MKL_NUM_THREADS set) and the figures are compared (default 1,2,8)")
    args = p.parse_args(argv)
    counts = [int(c) for c in args.threads.split(",") if c.strip()]
    if os.environ.get(CHILD_ENV):
        print(f"  (OpenBLAS reports {blas_threads() or 'no'} thread count(s))", flush=True)
        print("RESULT " + json.dumps(run(args)), flush=True)
        return 0
    results = {}
    for n in counts:
        print(f"== {n} thread{'s' if n > 1 else ''} (OMP/OPENBLAS/MKL_NUM_THREADS={n})", flush=True)
        env = dict(os.environ, **{v: str(n) for v in THREAD_VARS}, **{CHILD_ENV: "1"})
        cmd = [sys.executable, str(Path(__file__).resolve()), "--trials", str(args.trials)]
        cmd += ["--skip-lps"] * args.skip_lps + ["--skip-synthetic"] * args.skip_synthetic
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=REPO)
        for line in proc.stdout:
            if line.startswith("RESULT "):
                results[n] = json.loads(line[len("RESULT "):])
            else:
                print(line, end="", flush=True)
        if proc.wait() != 0 or n not in results:
            print(f"the run with {n} threads failed (exit status {proc.returncode})")
            return 1
    if len(results) < 2:
        return 0
    print(f"== thread counts {', '.join(map(str, counts))}: largest difference between runs")
    worst_mm = 0.0
    for key in results[counts[0]]:
        runs = np.array([results[n][key] for n in counts])  # (threads, trials)
        spread = float((runs.max(axis=0) - runs.min(axis=0)).max())
        means = " / ".join(f"{np.mean(r):.4f}" for r in runs)
        print(f"  {key}: mean per thread count {means}; largest difference {spread:.2g}")
        if "(mm)" in key:
            worst_mm = max(worst_mm, spread)
    same = worst_mm <= 0.05
    print(f"figures agree across thread counts to 0.05 mm: {'yes' if same else 'NO'} (largest {worst_mm:.2g} mm)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
