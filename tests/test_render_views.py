"""`headforge render-views` on the Lee Perry-Smith scan: the renders must agree with the rig's cameras."""
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from headforge.backend import cameras as rig
from tests.conftest import has_module

pytestmark = pytest.mark.skipif(not has_module("bpy"), reason="needs the bpy module")

SIZE = 256


@pytest.fixture(scope="module")
def lps_views(shared, tmp_path_factory):
    out = tmp_path_factory.mktemp("lps_views")
    asset = shared / "data/heads/lee_perry_smith/LeePerrySmith_textured.glb"
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "headforge.backend", "--json", "render-views", str(asset),
                           "-o", str(out), "--size", str(SIZE), "--samples", "4"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    wall = time.time() - t0
    print(f"\nrender-views: 96 views at {SIZE} px, 4 samples: {wall:.1f} s wall "
          f"(passes: {json.loads((out / 'cameras.json').read_text())['render']['seconds']})")
    return asset, out


def _file_mesh(asset):
    import trimesh

    mesh = trimesh.load(asset, force="mesh", process=False)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces)


def _silhouette(verts_world, faces, cam) -> np.ndarray:
    import cv2

    uv, z = rig.project(verts_world, cam)
    mask = np.zeros((cam["height"], cam["width"]), np.uint8)
    tris = np.round(uv[faces] * 16).astype(np.int32)  # 4 fractional bits; pixel centres at integers
    for tri in tris:  # one by one: fillPoly on many contours would XOR their overlaps
        cv2.fillConvexPoly(mask, tri, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def test_layout_and_cameras_json(lps_views):
    _, out = lps_views
    cams = rig.load_cameras_json(out / "cameras.json")
    assert [c["index"] for c in cams] == list(range(96))
    for c in cams[::17]:
        stem = f"{c['index']:03d}"
        img = Image.open(out / c["file"])
        assert img.mode == "RGBA" and img.size == (SIZE, SIZE)
        assert np.load(out / f"{stem}_depth.npy").shape == (SIZE, SIZE)
        assert np.load(out / f"{stem}_normal.npy").shape == (SIZE, SIZE, 3)


def test_projected_asset_matches_rendered_silhouette(lps_views):
    asset, out = lps_views
    meta = json.loads((out / "cameras.json").read_text())
    M = np.array(meta["normalisation"]["file_to_world"])
    v, f = _file_mesh(asset)
    vw = v @ M[:3, :3].T + M[:3, 3]
    ious = []
    for cam in rig.load_cameras_json(out / "cameras.json"):
        alpha = np.asarray(Image.open(out / cam["file"]))[..., 3] > 127
        sil = _silhouette(vw, f, cam)
        ious.append((alpha & sil).sum() / (alpha | sil).sum())
    ious = np.array(ious)
    print(f"\nalpha IoU per view: min {ious.min():.4f}, mean {ious.mean():.4f}")
    assert ious.min() >= 0.98


def test_nose_tip_lands_on_depth_surface(lps_views):
    asset, out = lps_views
    meta = json.loads((out / "cameras.json").read_text())
    M = np.array(meta["normalisation"]["file_to_world"])
    v, _ = _file_mesh(asset)
    nose = v[np.argmax(v[:, 2])] @ M[:3, :3].T + M[:3, 3]  # the file's front is +Z: the nose tip
    errors = {}
    for cam in rig.load_cameras_json(out / "cameras.json"):
        if abs(cam["azimuth"]) > 60:
            continue  # the nose tip is hidden or grazing
        depth = np.load(out / f"{cam['index']:03d}_depth.npy")
        (u, vv), z = (a[0] for a in rig.project(nose[None], cam))
        # Back-project a 7×7 neighbourhood of the depth map; the surface point nearest the vertex.
        ui, vi = int(round(u)), int(round(vv))
        ys, xs = np.mgrid[vi - 3: vi + 4, ui - 3: ui + 4]
        d = depth[ys, xs]
        Kinv = np.linalg.inv(cam["K"])
        pc = (np.stack([xs, ys, np.ones_like(xs)], -1).reshape(-1, 3) @ Kinv.T) * d.reshape(-1, 1)
        c2w = np.linalg.inv(cam["w2c"])
        pw = pc @ c2w[:3, :3].T + c2w[:3, 3]
        dist = np.linalg.norm(pw - nose, axis=1)
        dist[d.reshape(-1) <= 0] = np.inf
        j = int(np.argmin(dist))
        errors[cam["index"]] = float(np.hypot(xs.reshape(-1)[j] - u, ys.reshape(-1)[j] - vv))
        assert abs(d.reshape(-1)[j] - z) < 0.002, f"view {cam['index']}: depth {d.reshape(-1)[j]} vs {z}"
    print(f"\nnose-tip pixel error: max {max(errors.values()):.3f} px over {len(errors)} views")
    assert max(errors.values()) <= 1.0
