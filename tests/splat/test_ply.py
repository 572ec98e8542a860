"""3DGS PLY writer/reader: exact round trips, interoperability with gsplat's exporter, typed errors."""
import numpy as np
import pytest
import torch

from headforge.backend.splat.ply import SplatFileError, read_ply, render_args, write_ply


def _splat(n=50, k=16, seed=0):
    rng = np.random.default_rng(seed)
    return {"means": rng.normal(size=(n, 3)).astype(np.float32),
            "quats": rng.normal(size=(n, 4)).astype(np.float32),
            "log_scales": rng.normal(-5, 1, size=(n, 3)).astype(np.float32),
            "opacity_logits": rng.normal(size=n).astype(np.float32),
            "sh": rng.normal(size=(n, k, 3)).astype(np.float32)}


@pytest.mark.parametrize("k", [1, 4, 16])
def test_round_trip_is_exact(tmp_path, k):
    splat = _splat(k=k)
    write_ply(tmp_path / "a.ply", splat)
    back = read_ply(tmp_path / "a.ply")
    for key in splat:
        assert back[key].dtype == np.float32
        np.testing.assert_array_equal(back[key], splat[key], err_msg=key)
    write_ply(tmp_path / "b.ply", back)
    assert (tmp_path / "a.ply").read_bytes() == (tmp_path / "b.ply").read_bytes()


def test_same_bytes_as_gsplat_exporter(tmp_path):
    from gsplat.exporter import export_splats

    splat = _splat(n=40, k=9)
    t = {k: torch.from_numpy(v) for k, v in splat.items()}
    theirs = export_splats(t["means"], t["log_scales"], t["quats"], t["opacity_logits"], t["sh"][:, :1],
                           t["sh"][:, 1:], format="ply")
    (tmp_path / "gsplat.ply").write_bytes(theirs)
    back = read_ply(tmp_path / "gsplat.ply")
    for key in splat:
        np.testing.assert_array_equal(back[key], splat[key], err_msg=key)
    write_ply(tmp_path / "ours.ply", splat)
    assert (tmp_path / "ours.ply").read_bytes() == theirs


def test_original_3dgs_normals_are_kept(tmp_path):
    splat = _splat(n=7, k=4)
    splat["extra"] = {"nx": np.zeros(7, np.float32), "ny": np.zeros(7, np.float32), "nz": np.ones(7, np.float32)}
    write_ply(tmp_path / "n.ply", splat)
    header = (tmp_path / "n.ply").read_bytes().split(b"end_header")[0].decode()
    assert header.index("property float z") < header.index("property float nx") < header.index("f_dc_0")
    back = read_ply(tmp_path / "n.ply")
    np.testing.assert_array_equal(back["extra"]["nz"], 1.0)
    write_ply(tmp_path / "m.ply", back)
    assert (tmp_path / "m.ply").read_bytes() == (tmp_path / "n.ply").read_bytes()


def test_render_args_activate(tmp_path):
    splat = _splat(n=5, k=16)
    args = render_args(splat)
    assert args["sh_degree"] == 3
    assert torch.allclose(args["quats"].norm(dim=-1), torch.ones(5))
    assert torch.allclose(args["scales"], torch.exp(torch.from_numpy(splat["log_scales"])))
    assert torch.allclose(args["opacities"], torch.sigmoid(torch.from_numpy(splat["opacity_logits"])))


def test_bad_files_raise_typed_errors(tmp_path):
    write_ply(tmp_path / "ok.ply", _splat(n=20))
    data = (tmp_path / "ok.ply").read_bytes()
    (tmp_path / "trunc.ply").write_bytes(data[:-10])
    with pytest.raises(SplatFileError) as e:
        read_ply(tmp_path / "trunc.ply")
    assert e.value.code == "splat.ply_truncated"
    (tmp_path / "text.ply").write_bytes(b"hello")
    with pytest.raises(SplatFileError):
        read_ply(tmp_path / "text.ply")
    mesh = b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\n" \
           b"property float z\nend_header\n" + np.zeros(3, np.float32).tobytes()
    (tmp_path / "mesh.ply").write_bytes(mesh)
    with pytest.raises(SplatFileError) as e:
        read_ply(tmp_path / "mesh.ply")
    assert e.value.code == "splat.not_gaussians"
    with pytest.raises(SplatFileError) as e:
        read_ply(tmp_path / "absent.ply")
    assert e.value.code == "splat.ply_missing"
