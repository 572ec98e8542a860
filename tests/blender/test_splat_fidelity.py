"""Fidelity: the splat imported into Blender looks like the backend rasterizer's render of the same PLY from the
same rig camera, drawn both ways: Geometry Nodes quads + splat material (every Blender), and Blender's own
Gaussian splats (5.3 and later, tested when the 3.13 venv with bpy 5.3 is there). PSNR over the head's box
proves the position, orientation, scale, colour and opacity conventions at once."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import pythons
from tests.conftest import has_module
from splat_data import head_splat

pytestmark = pytest.mark.skipif(not (has_module("bpy") and has_module("torch")), reason="needs bpy and torch")

SIZE = 128
VIEWS = (16 + 0, 48 + 5)  # ring 1 front (elevation 0, azimuth 0); ring 3 (elevation 20), azimuth 83.5
PSNR_MIN = 25.0
NATIVE_SAMPLES = 64  # Blender's splats are path traced stochastically: 8 samples leave grain (23.3 dB)


def _rasterize(ply: Path, view: int, sh_degree: int) -> tuple[np.ndarray, tuple]:
    import torch

    from headforge.backend import cameras as rig
    from headforge.backend.splat.ply import read_ply, render_args
    from headforge.backend.splat.rasterize import rasterize

    splat = read_ply(ply)
    args = render_args(splat)
    cam = {c["index"]: c for c in rig.rig_cameras(SIZE)}[view]
    rgb, alpha, _ = rasterize(args["means"], args["quats"], args["scales"], args["opacities"], args["colors"],
                              torch.tensor(cam["w2c"], dtype=torch.float32)[None],
                              torch.tensor(cam["K"], dtype=torch.float32)[None], SIZE, SIZE, sh_degree=sh_degree,
                              backend="torch")
    # The head's box: every Gaussian's 3σ extent, projected.
    reach = 3.0 * np.exp(splat["log_scales"]).max(1, keepdims=True)
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).T.reshape(-1, 3)  # [8, 3]
    corners = (splat["means"][:, None, :] + reach[:, None, :] * signs[None]).reshape(-1, 3)
    uv, _ = rig.project(corners, cam)
    lo = np.clip(np.floor(uv.min(0)).astype(int), 0, SIZE)
    hi = np.clip(np.ceil(uv.max(0)).astype(int) + 1, 0, SIZE)
    return rgb[0].clamp(0, 1).numpy(), (lo[0], hi[0], lo[1], hi[1])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


@pytest.fixture(scope="module", params=pythons.params())
def renders(request, tmp_path_factory):
    """One Blender process: with quads, Cycles (view-dependent colour) from two rig views, Cycles of the SH grid,
    and EEVEE (the default dithered material, base colour) from the front; the same with native splats where
    Blender has them (colour always view-dependent there)."""
    from headforge.backend.splat.ply import write_ply

    tmp = tmp_path_factory.mktemp("fidelity")
    ply = tmp / "head.ply"
    write_ply(ply, head_splat(n=600, seed=3, sh_degree=3, sh_rest_std=0.08, dc_amplitude=0.3))
    write_ply(tmp / "grid.ply", sh_grid())
    jobs = []
    for method, cycles_samples in (("quads", 8), ("native", NATIVE_SAMPLES)):
        common = {"method": method.upper(), "engine": "CYCLES", "colour": "SH", "samples": cycles_samples}
        jobs += [{**common, "ply": str(ply), "out": str(tmp / f"{method}_cycles_{v:03d}.png"), "view": v}
                 for v in VIEWS]
        jobs.append({**common, "ply": str(tmp / "grid.ply"), "out": str(tmp / f"{method}_grid.png"),
                     "samples": 2 if method == "quads" else 16, "view": VIEWS[0]})
        jobs.append({"method": method.upper(), "ply": str(ply), "out": str(tmp / f"{method}_eevee_{VIEWS[0]:03d}.png"),
                     "engine": "BLENDER_EEVEE", "colour": "SH0", "samples": 16, "view": VIEWS[0]})
    (tmp / "spec.json").write_text(json.dumps({"size": SIZE, "renders": jobs}))
    proc = subprocess.run([request.param, str(Path(__file__).with_name("render_splat.py")), str(tmp / "spec.json")],
                          capture_output=True, text=True, env=pythons.env(tmp), timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    facts = json.loads(lines[-1][6:])
    return tmp, ply, {Path(r["out"]).stem: r for r in facts["renders"]}, facts


def _method(facts, method):
    if method == "native" and not facts["native"]:
        pytest.skip(f"Blender {facts['blender']} has no native Gaussian splats")


def _read16(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, f"{path} was not rendered"
    return img[..., ::-1].astype(np.float64) / 65535.0


def sh_grid() -> dict:
    """16 flat, nearly opaque Gaussians facing the front camera; Gaussian i has only SH coefficient i (red)."""
    n = 16
    xz = np.array([(x, z) for z in (-0.075, -0.025, 0.025, 0.075) for x in (-0.075, -0.025, 0.025, 0.075)])
    sh = np.zeros((n, 16, 3), np.float32)
    sh[np.arange(1, n), np.arange(1, n), 0] = 0.6
    return {"means": np.stack([xz[:, 0], np.zeros(n), xz[:, 1]], 1).astype(np.float32),
            "quats": np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)).astype(np.float32),
            "log_scales": np.log(np.tile([0.008, 0.0005, 0.008], (n, 1))).astype(np.float32),
            "opacity_logits": np.full(n, 5.0, np.float32), "sh": sh}


@pytest.mark.parametrize("method", ["quads", "native"])
def test_every_sh_basis_function_matches(renders, method):
    """Each of the 15 higher SH basis functions, alone, gives the rasterizer's colour at its Gaussian's centre."""
    from headforge.backend import cameras as rig

    tmp, _, _, facts = renders
    _method(facts, method)
    blender = _read16(tmp / f"{method}_grid.png")
    ref, _ = _rasterize(tmp / "grid.ply", VIEWS[0], sh_degree=3)
    cam = {c["index"]: c for c in rig.rig_cameras(SIZE)}[VIEWS[0]]
    uv, _ = rig.project(sh_grid()["means"], cam)
    u, v = np.round(uv).astype(int).T
    err = np.abs(blender[v, u] - ref[v, u])
    spread = np.ptp(ref[v, u, 0])
    print(f"Blender {facts['blender']} {method} SH grid: max colour error {err.max():.4f}, "
          f"red spread across bases {spread:.3f}")
    assert spread > 0.5  # the bases really change the colour
    assert err.max() < (0.01 if method == "quads" else 0.02)  # native: 16 samples of path-traced grain


@pytest.mark.parametrize("method", ["quads", "native"])
@pytest.mark.parametrize("engine, view, sh_degree", [("cycles", VIEWS[0], 3), ("cycles", VIEWS[1], 3),
                                                      ("eevee", VIEWS[0], 0)])
def test_blender_render_matches_rasterizer(renders, method, engine, view, sh_degree, artifacts):
    from PIL import Image

    tmp, ply, renders_by_name, facts = renders
    _method(facts, method)
    if method == "native":
        sh_degree = 3  # Blender's splats always evaluate the file's SH
    name = f"{method}_{engine}_{view:03d}"
    blender = _read16(tmp / f"{name}.png")
    ref, (x0, x1, y0, y1) = _rasterize(ply, view, sh_degree=sh_degree)
    assert x1 - x0 > 30 and y1 - y0 > 30  # the head fills a real part of the frame
    psnr = _psnr(blender[y0:y1, x0:x1], ref[y0:y1, x0:x1])
    coverage = float((ref[y0:y1, x0:x1].max(-1) > 0.05).mean())
    tag = f"{facts['blender']}_{name}"
    Image.fromarray((blender * 255 + 0.5).astype(np.uint8)).save(artifacts / f"splat_fidelity_{tag}_blender.png")
    Image.fromarray((ref * 255 + 0.5).astype(np.uint8)).save(artifacts / f"splat_fidelity_{tag}_rasterizer.png")
    r = renders_by_name[name]
    print(f"Blender {facts['blender']} {method} {engine} view {view}: PSNR {psnr:.2f} dB over box x[{x0},{x1}) "
          f"y[{y0},{y1}), coverage {coverage:.2f}, import {r['import_s']} s, render {r['render_s']} s")
    assert coverage > 0.4
    assert psnr >= PSNR_MIN, psnr
