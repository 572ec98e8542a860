"""The CPU renderers agree: the numpy rasterizer (backend/render/raster.py, the reference) and the torch one the
mesh stage uses for large renders (backend/mesh/raster.py) give the same triangles and depths; the projections of
cameras.py, render/raster.py and mesh/raster.py are one; the one hole fill keeps what is known."""
import numpy as np
import trimesh

from headforge.backend import cameras
from headforge.backend.mesh import raster as torch_raster
from headforge.backend.render import raster
from headforge.backend.render.image import pull_push


def _head_like(seed=0):
    """An ellipsoid (head-sized, metres) with a bumpy surface: many small triangles at grazing angles too."""
    m = trimesh.creation.icosphere(subdivisions=4)
    rng = np.random.default_rng(seed)
    v = m.vertices * np.array([0.075, 0.09, 0.11]) * (1 + 0.03 * rng.standard_normal((len(m.vertices), 1)))
    return v, m.faces


def test_numpy_and_torch_rasterizers_agree():
    v, f = _head_like()
    for cam in [cameras.rig_cameras(size=96)[i] for i in (16, 20, 40, 88)]:
        xy, z = raster.project(v, cam["K"], cam["w2c"])
        tid, bary, depth = raster.rasterize(xy, z, f, 96, 96)
        frag = torch_raster.render_depth(v, f, cam["K"], cam["w2c"], 96, 96)
        t_face, t_depth = frag.face.numpy(), frag.depth.numpy()
        cover_np, cover_t = tid >= 0, t_face >= 0
        iou = (cover_np & cover_t).sum() / (cover_np | cover_t).sum()
        same = cover_np & cover_t & (tid == t_face)
        assert iou > 0.995 and same.sum() / cover_np.sum() > 0.99, (iou, same.sum() / cover_np.sum())
        # numpy interpolates depth affinely in screen space, torch perspective-correctly (1/z), both in float32:
        # on these ~1 px triangles 1.5 m away they differ by well under 0.1 mm
        assert np.abs(depth[same] - t_depth[same]).max() < 1e-4  # metres


def test_one_projection():
    v, _ = _head_like(1)
    cam = cameras.rig_cameras(size=128)[37]
    uv, z = raster.project(v, cam["K"], cam["w2c"])
    uv_c, z_c = cameras.project(v, cam)
    screen = torch_raster.project_vertices(v, cam["K"], cam["w2c"]).numpy()
    assert np.array_equal(uv, uv_c) and np.array_equal(z, z_c)
    assert np.array_equal(screen[:, :2], uv) and np.array_equal(screen[:, 2], z)
    # and it is the pinhole model: a point on the optical axis lands on the principal point
    c2w = np.linalg.inv(cam["w2c"])
    on_axis = c2w[:3, 3] + 1.5 * c2w[:3, 2]
    p, d = raster.project(on_axis[None], cam["K"], cam["w2c"])
    assert np.allclose(p[0], [cam["K"][0, 2], cam["K"][1, 2]], atol=1e-9) and np.isclose(d[0], 1.5)


def test_pull_push_keeps_known_texels_and_fills_the_rest():
    rng = np.random.default_rng(0)
    img = rng.random((64, 64, 3))
    known = rng.random((64, 64)) < 0.3
    out = pull_push(img, known)
    assert np.allclose(out[known], img[known])
    assert np.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
