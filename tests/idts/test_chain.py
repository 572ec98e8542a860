"""The full pipeline's stages chained on a real photo, through `run_job`: face → multiview (small random-weight
ID-TS models, so the views are noise, but real files, cameras and ring choice) → splat → mesh, on the CPU."""
import json

import numpy as np
from PIL import Image

from headforge.backend import cameras as rig



def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-12)))


def test_photo_to_mesh_through_every_stage(shared, tmp_path, small_models):
    import torch

    from headforge.backend.job import run_job
    from headforge.backend.splat.ply import read_ply, render_args
    from headforge.backend.splat.rasterize import rasterize
    from headforge.backend.stages.splat import load_views

    photo = shared / "fixtures/idts/framing/0002.png"  # the reference's own frontal example
    options = {"face": {"models_root": str(shared / "models")},
               "multiview": {"models_dir": str(small_models), "steps": 2, "other_rings": "none", "matte": "white",
                             "device": "cpu"},
               "splat": {"steps": 150, "init_points": 3000, "sh_degree": 1, "holdout_every": 0, "device": "cpu"},
               "mesh": {"voxel_size": 0.006, "depth_size": 64, "texture_size": 256, "target_triangles": 5000,
                        "device": "cpu"}}
    record = run_job(tmp_path / "job", inputs={"photo": str(photo)}, options=options, mode="full", until="mesh")
    job = tmp_path / "job"
    assert [s for s in ("input", "face", "multiview", "splat", "mesh") if record["stages"][s]["status"] == "done"] \
        == ["input", "face", "multiview", "splat", "mesh"], {k: v.get("error") for k, v in record["stages"].items()}

    # multiview: the portrait reads level, so the input ring is the 0° ring, turned by the head's yaw
    pose = json.loads((job / "face/analysis.json").read_text())["face"]["pose"]
    mv = record["stages"]["multiview"]["metrics"]
    assert mv["input_ring"] == rig.INPUT_RING and mv["views"] == 16 and mv["size"] == 64
    cams = json.loads((job / "views/cameras.json").read_text())["views"]
    assert [c["file"] for c in cams] == [f"{i:03d}.png" for i in range(16, 32)]
    eyes = np.stack([np.linalg.inv(np.array(c["w2c"]))[:3, 3] for c in cams])
    assert np.allclose(np.linalg.norm(eyes, axis=1), rig.RADIUS_M) and np.allclose(eyes[:, 2], 0.0, atol=1e-9)
    azimuths = np.degrees(np.arctan2(eyes[:, 0], -eyes[:, 1]))
    expected = (rig.eased_azimuths() - pose["yaw_deg"] + 180) % 360 - 180
    assert np.allclose((azimuths - expected + 180) % 360 - 180, 0.0, atol=1e-6)

    # splat: head.ply, rendered here from cameras.json, reproduces the views it was fitted to as well as the fit
    # itself reported (file, frame and cameras agree), better than each view's flat mean colour and than the
    # neighbouring view (the random-weight views are noise: 150 steps fit them only a little, 16.7 dB against
    # 16.1 and 16.0 when measured)
    views, viewmats, Ks, _ = load_views(job / "views")
    target = views[..., :3].numpy()
    args = render_args(read_ply(job / "splat/head.ply"))
    with torch.no_grad():
        rgb, _, _ = rasterize(args["means"], args["quats"], args["scales"], args["opacities"], args["colors"],
                              viewmats, Ks, 64, 64, sh_degree=args["sh_degree"], backgrounds=torch.ones(3))
    rgb = rgb.clamp(0, 1).numpy()
    psnr = np.mean([_psnr(r, t) for r, t in zip(rgb, target)])
    shifted = np.mean([_psnr(r, t) for r, t in zip(rgb, np.roll(target, 1, axis=0))])
    flat = np.mean([_psnr(np.broadcast_to(t.mean((0, 1)), t.shape), t) for t in target])
    fit = record["stages"]["splat"]["metrics"]
    mesh = record["stages"]["mesh"]["metrics"]
    print(f"chain: pose {pose['yaw_deg']:.1f}/{pose['pitch_deg']:.1f}°, splat PSNR {psnr:.2f} dB (fit says "
          f"{fit['train_psnr']:.2f}, flat colour {flat:.2f}, neighbouring view {shifted:.2f}), mesh "
          f"{mesh['triangles']} triangles, {mesh['volume_m3']} m³")
    assert fit["n_train_views"] == 16 and abs(psnr - fit["train_psnr"]) < 0.3
    assert psnr > flat + 0.3 and psnr > shifted + 0.4

    # mesh: a closed surface inside the rig's object box, its texture baked from the views
    assert mesh["watertight"] and mesh["triangles"] > 1000 and 0 < mesh["volume_m3"] < 0.4 ** 3
    import trimesh

    glb = trimesh.load(job / "mesh/head.glb", force="mesh")
    assert len(glb.faces) == mesh["triangles"] and np.abs(glb.vertices).max() < 0.25
    albedo = np.asarray(Image.open(job / "mesh/head_albedo.png").convert("RGB"), np.float32)
    assert albedo.std() > 5.0  # baked from the (noisy) views, not a flat fill
