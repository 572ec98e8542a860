"""Views/full-mode rig benchmark: how much the rigged neutral head looks like the reconstruction it was made from.

    .venv/bin/python benchmarks/views_rig.py [--size 256] [--texture 512] [--out DIR]
    .venv/bin/python benchmarks/views_rig.py --job JOB   # a views-mode job: rig vs splat on held-out views

The Lee Perry-Smith scan (real size: 5 cm per file unit, textured) stands in for mesh/head.glb; the rig stage's
path for a reconstructed mesh (rig/mesh_rig.rig_from_mesh: landmarks on renders of the mesh, head-model fit,
non-rigid registration, expression shapes carried over, texture from the mesh) makes the rig. Measured:

- masked PSNR of the rigged neutral head (unlit: its skin atlas) against unlit renders of the scan (our
  rasterizer) from 9 views around the head that the fit never rendered (elevations −10…10°, azimuths
  0, ±33, ±56, ±84, 146, 180°), over the scan's pixels above the chin (the rig has no shoulders);
- face-region Chamfer distance (mm, real size) between the rig's face and the scan's face surface that a
  camera of the 96-view rig can see (DTU-style observation mask: the scan's inner shells around the eyes and
  mouth cannot be reconstructed from views);
- expressions still deform: jawOpen moves the chin, eyeBlink moves the upper lids, each in mm;
- the figures at 1 and 4 BLAS/OpenMP threads must agree (each in a fresh process).

Before the registration (commit 4771d1a: the fitted model moved at most 6 mm toward the surface), measured with
this script at 1 thread: PSNR 18.42 dB mean (19.17 front; eyes open on the closed-eyed scan, neck, skull and
ears off), face Chamfer 0.87 mm (accuracy 0.95, completeness 0.79). After it (registration with the reverse
term at weight 3, lips' and lids' margins left to the model): PSNR 35.19 dB mean (front 30.07, back 31.28,
33.3-37.9 between; what is left: ear rims and a small dark spot at the inner corner of the left closed eye), face
Chamfer 0.07 mm, jawOpen 35 mm at the chin, blink lowers the upper lids ≈ 5-7 mm; identical figures at 1 and 4
threads; 27 s for the rig (60 s when the shared machine is loaded). The scan stands in for a reconstructed mesh
here, so these figures measure the registration and texture transfer, not the splat → mesh step. Looked at
(512 px renders): jawOpen 0.5 opens a clean mouth, a full smile keeps the lips closed (with one-ring rotations
it parted them and showed the teeth).

`--job`, on a real views-mode job (render-views of the scan at 128 px, Cycles 4 samples; splat 300 CPU steps at
128 px; mesh 20k triangles, 512 texture), 12 held-out views (index % 8 == 0), their masks above the rig's chin:
splat 28.64 dB; rig before 22.81 dB; now 27.63 dB with the skin from the mesh's texture and 27.52 dB with it
baked from the 84 training views (1.0 and 1.1 dB below the splat; the goal is within 1.5 dB), reverse weight 1;
27.66 dB at weight 3 (mesh texture); as committed (weight 3, margins left to the model) 27.64 and 27.53 dB.
On that coarse mesh the neutral shows a sliver of teeth between the lips
(jawOpen opens cleanly) and the eyeballs had to be set 16 mm back behind the closed lids. Not measured yet: a
full-size job (512 px views, 3000 GPU steps, the splat's 36.9 dB).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_data.py, also when loaded by path
from _data import SHARED, use_shared_ict  # noqa: E402

LPS = SHARED / "data/heads/lee_perry_smith/LeePerrySmith_textured.glb"
LPS_UNIT_M = 0.05
HELD_OUT = ((0, 0), (0, 33), (0, -33), (10, 56), (-10, -56), (0, 84), (0, -84), (10, 146), (0, 180))
RADIUS_M, FOVY_DEG = 2.4, 12.0


def lps_scan():
    """The scan in the world frame at real size, top of the head at z = 0.12 m: a ReferenceHead (vertices, faces,
    uv (glTF, per vertex), texture)."""
    from headforge.backend.headmodel.frames import YUP_TO_WORLD
    from headforge.backend.mesh.metrics import load_reference_head

    T = np.eye(4)
    T[:3, :3] = LPS_UNIT_M * YUP_TO_WORLD
    ref = load_reference_head(LPS, T)
    ref.vertices[:] -= [0.0, 0.0, ref.vertices[:, 2].max() - 0.12]
    return ref


def rig_in_world(rig, fit):
    """A copy of the Rig carried from the head model's frame into the reconstruction's (fit's similarity)."""
    from dataclasses import replace

    return replace(rig, basis=fit.transform(rig.basis.astype(np.float64)).astype(np.float32),
                   deltas=(fit.scale * rig.deltas.astype(np.float64) @ fit.R.T).astype(np.float32),
                   joints=fit.transform(rig.joints))


def held_out_psnr(rig_w, atlas, ref, chin_z: float, size: int = 256, views=HELD_OUT):
    """Masked PSNR (dB) per view of the rig (world frame) against the scan, over scan pixels above `chin_z`,
    and the (scan | rig) image pairs."""
    from headforge.backend import cameras
    from headforge.backend.mesh.raster import render_depth
    from headforge.backend.mesh.texture import render_textured
    from headforge.backend.rig.render import masked_psnr, render_rig

    K = cameras.intrinsics(size, FOVY_DEG)
    out, pairs = [], []
    for el, az in views:
        w2c = np.linalg.inv(cameras.orbit_c2w_opencv(el, az, radius=RADIUS_M))
        gt, m = render_textured(ref.vertices, ref.faces, ref.uv, ref.texture, K, w2c, size, size, background=1.0)
        fr = render_depth(ref.vertices, ref.faces, K, w2c, size, size)
        f, b = fr.face.numpy(), fr.bary.numpy()
        z = np.full((size, size), -np.inf)
        z[m] = np.einsum("nk,nk->n", b[m], ref.vertices[ref.faces[f[m]]][:, :, 2])
        img, _ = render_rig(rig_w, atlas, K, w2c, (size, size), background=1.0)
        out.append(masked_psnr(img, gt.astype(np.float32), m & (z > chin_z)))
        pairs.append((gt, img))
    return out, pairs


def observed_scan_points(ref, count: int = 60000, size: int = 192):
    """Area-uniform points of the scan that a camera of the 96-view rig (at our radius) sees (N, 3)."""
    from headforge.backend import cameras
    from headforge.backend.fitting.fit3d import sample_surface
    from headforge.backend.mesh.metrics import observed_points

    pts, _ = sample_surface(ref.vertices, ref.faces, count, np.random.default_rng(0))
    cams = [{"K": cameras.intrinsics(size, FOVY_DEG), "width": size, "height": size,
             "w2c": np.linalg.inv(cameras.orbit_c2w_opencv(el, az, radius=RADIUS_M))}
            for el in cameras.ELEVATIONS_DEG for az in cameras.eased_azimuths()]
    return pts[observed_points(pts, ref.vertices, ref.faces, cams, 0.001)]


def face_chamfer_mm(model, rig_w, fit, ref, observed: np.ndarray) -> dict:
    """Face-region Chamfer (mm, real size: world distances / the fit's scale): rig face vertices → scan, and
    observed scan points whose closest rig skin point lies on the face region → rig."""
    from headforge.backend.fitting.geometry import SurfaceQuery
    from headforge.backend.rig.texture import skin_faces

    face = np.zeros(model.n_vertices, bool)
    face[model.face_region()] = True
    basis = rig_w.basis.astype(np.float64)
    skin = model.faces[skin_faces(model)]
    fv = np.unique(skin[face[skin].all(1)])
    acc = SurfaceQuery(ref.vertices, ref.faces).closest(basis[fv])[1]
    _, d, ti = SurfaceQuery(basis, skin).closest(observed)
    comp = d[face[skin[ti]].all(1)]
    k = 1000.0 / fit.scale
    return {"chamfer_mm": float(k * (acc.mean() + comp.mean()) / 2), "accuracy_mm": float(k * acc.mean()),
            "completeness_mm": float(k * comp.mean())}


def expression_motion_mm(model, rig) -> dict:
    """How far (mm, model frame) jawOpen moves the chin and eyeBlink the upper lids, against the forehead."""
    names = list(rig.key_names)
    move = {k: 1000 * np.linalg.norm(rig.deltas[names.index(k)], axis=1) for k in ("jawOpen", "eyeBlinkLeft",
                                                                                   "eyeBlinkRight")}
    chin = model.landmarks_68[6:11]
    lids = {"eyeBlinkLeft": model.landmarks_68[43:45], "eyeBlinkRight": model.landmarks_68[37:39]}  # upper lids
    brow = model.landmarks_68[17:27]
    dz = {k: float(1000 * rig.deltas[names.index(k)][v, 2].mean()) for k, v in lids.items()}
    return {"jaw_chin_mm": float(move["jawOpen"][chin].mean()), "jaw_brow_mm": float(move["jawOpen"][brow].max()),
            "blink_lid_mm": {k: float(move[k][v].mean()) for k, v in lids.items()}, "blink_lid_dz_mm": dz,
            "blink_chin_mm": float(max(move[k][chin].max() for k in lids))}


def measure(size: int, texture: int) -> dict:
    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.mesh_rig import TexturedMesh, rig_from_mesh

    ref = lps_scan()
    model = load_ict()
    t0 = time.time()
    rig, atlas, fit, _, info = rig_from_mesh(model, TexturedMesh(ref.vertices, ref.faces, ref.uv[ref.faces],
                                                                 ref.texture), texture_size=texture)
    seconds = time.time() - t0
    rig_w = rig_in_world(rig, fit)
    chin_z = float(rig_w.basis[model.landmarks_68[8], 2])
    psnr, pairs = held_out_psnr(rig_w, atlas, ref, chin_z, size)
    return {"psnr_db": [round(p, 2) for p in psnr], "psnr_mean_db": round(float(np.mean(psnr)), 3),
            **{k: round(v, 4) for k, v in face_chamfer_mm(model, rig_w, fit, ref, observed_scan_points(ref)).items()},
            "expressions": expression_motion_mm(model, rig), "rig_seconds": round(seconds, 1),
            "registration": info.get("registration"), "basis_sum": float(np.abs(rig.basis).sum()),
            "_pairs": pairs}


def splat_renders(ply, views):
    """Renders (straight colour over white (H, W, 3), alpha (H, W)) of a 3DGS PLY at the views' cameras."""
    import torch

    from headforge.backend.splat.optimize import render_views
    from headforge.backend.splat.ply import read_ply, sh_degree_of

    s = read_ply(ply)
    t = {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in s.items() if k != "extra"}
    params = {"means": t["means"], "quats": t["quats"], "scales": t["log_scales"], "opacities": t["opacity_logits"],
              "sh0": t["sh"][:, :1], "shN": t["sh"][:, 1:]}
    out = []
    for v in views:
        h, w = v.image.shape[:2]
        rgb, a = render_views(params, torch.as_tensor(v.w2c, dtype=torch.float32)[None],
                              torch.as_tensor(v.K, dtype=torch.float32)[None], w, h, sh_degree_of(s), [0])
        a = a[0, ..., 0].numpy()
        out.append((rgb[0].numpy() * a[..., None] + (1 - a[..., None]), a))
    return out


def job_figures(job: Path, texture: int) -> dict:
    """A views/full-mode job folder (views/, splat/head.ply, mesh/head.glb): the rig made from its mesh with the
    skin baked from the training views (index % 8 != 0), rig and splat compared with the held-out views
    (index % 8 == 0, which the splat fit never saw; note: the mesh stage's own texture did see them) over the
    views' masks above the rig's chin."""
    from headforge.backend.headmodel import load_ict
    from headforge.backend.mesh.raster import render_depth
    from headforge.backend.rig.bake import load_bake_views
    from headforge.backend.rig.mesh_rig import load_textured_glb, rig_from_mesh
    from headforge.backend.rig.render import masked_psnr, render_rig

    views = load_bake_views(job / "views")
    held = [v for v in views if v.camera_index % 8 == 0]
    train = [v for v in views if v.camera_index % 8 != 0]
    mesh = load_textured_glb(job / "mesh" / "head.glb")
    model = load_ict()
    out = {}
    for name, bake in (("mesh_texture", None), ("baked_from_views", train)):
        rig, atlas, fit, _, info = rig_from_mesh(model, mesh, texture_size=texture, views=bake)
        rig_w = rig_in_world(rig, fit)
        chin_z = float(rig_w.basis[model.landmarks_68[8], 2])
        rows = []
        for v, (splat_img, _) in zip(held, splat_renders(job / "splat" / "head.ply", held)):
            h, w = v.image.shape[:2]
            a = v.alpha if v.alpha is not None else np.ones((h, w), np.float32)
            gt = v.image * a[..., None] + (1 - a[..., None])
            fr = render_depth(mesh.verts, mesh.faces, v.K, v.w2c, h, w)
            f, b, hit = fr.face.numpy(), fr.bary.numpy(), fr.mask.numpy()
            z = np.full((h, w), -np.inf)
            z[hit] = np.einsum("nk,nk->n", b[hit], mesh.verts[mesh.faces[f[hit]]][:, :, 2])
            m = (a > 0.5) & (z > chin_z)
            img, _ = render_rig(rig_w, atlas, v.K, v.w2c, (w, h), background=1.0)
            rows.append((masked_psnr(img, gt, m), masked_psnr(splat_img.astype(np.float32), gt, m)))
        rows = np.array(rows)
        out[name] = {"rig_psnr_db": round(float(rows[:, 0].mean()), 3),
                     "splat_psnr_db": round(float(rows[:, 1].mean()), 3),
                     "views": len(rows), "seen_fraction": info.get("registration", {}).get("seen_fraction")}
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--texture", type=int, default=512)
    p.add_argument("--threads", default="1,4")
    p.add_argument("--out", type=Path, default=Path("/tmp/headforge-views-rig"))
    p.add_argument("--job", type=Path, help="a views/full-mode job folder to measure instead of the scan")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    use_shared_ict()
    if a.job:
        print(json.dumps(job_figures(a.job, a.texture)))
        return 0
    if a.child:
        from PIL import Image

        r = measure(a.size, a.texture)
        pairs = r.pop("_pairs")
        a.out.mkdir(parents=True, exist_ok=True)
        sheet = np.concatenate([np.concatenate(pr, 0) for pr in pairs], 1)
        Image.fromarray(np.clip(sheet * 255 + 0.5, 0, 255).astype(np.uint8)).save(a.out / "scan_vs_rig.png")
        print(json.dumps(r))
        return 0
    results = {}
    for n in [int(x) for x in a.threads.split(",")]:
        env = dict(os.environ, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n))
        r = subprocess.run([sys.executable, __file__, "--child", "--size", str(a.size), "--texture",
                            str(a.texture), "--out", str(a.out)], env=env, capture_output=True, text=True)
        if r.returncode:
            print(r.stderr[-3000:])
            return 1
        results[n] = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"threads {n}: {json.dumps(results[n])}")
    sums = [r["basis_sum"] for r in results.values()]
    same = max(sums) - min(sums) < 1e-6
    print(f"identical across thread counts: {same}; contact sheet (scan above, rig below): {a.out / 'scan_vs_rig.png'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
