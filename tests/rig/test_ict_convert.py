"""The upstream ICT-FaceKit OBJs → .npz converter, on OBJs written back from the shared archive (a round trip:
quads rebuilt from its triangle pairs, usemtl sections, 2 identity and 3 expression shapes)."""
import json

import numpy as np


def _write_obj(path, v, uv, polys, mats):
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v] + [f"vt {a:.6f} {b:.6f}" for a, b in uv]
    cur = None
    for (vi, ti), mat in zip(polys, mats):
        if mat != cur:
            lines.append(f"usemtl {mat}")
            cur = mat
        lines.append("f " + " ".join(f"{a + 1}/{b + 1}" for a, b in zip(vi, ti)))
    path.write_text("\n".join(lines) + "\n")


def test_convert_round_trip(tmp_path, shared):
    from headforge.backend.headmodel.ict import load_ict
    from headforge.backend.headmodel.ict_convert import convert_ict

    z = np.load(shared / "data" / "ict_facekit" / "ict_face_light.npz")
    F, FU, t2p, mat = z["faces"], z["face_uv"], z["tri_to_poly"], z["tri_material"]
    polys, pmats = [], []
    k = 0
    while k < len(F):
        if k + 1 < len(F) and t2p[k + 1] == t2p[k]:
            polys.append(((F[k, 0], F[k, 1], F[k, 2], F[k + 1, 2]), (FU[k, 0], FU[k, 1], FU[k, 2], FU[k + 1, 2])))
            k += 2
        else:
            polys.append((tuple(F[k]), tuple(FU[k])))
            k += 1
        pmats.append(str(z["material_names"][mat[k - 1]]))
    up = tmp_path / "FaceXModel"
    up.mkdir()
    _write_obj(up / "generic_neutral_mesh.obj", z["neutral"], z["uv"], polys, pmats)
    for i in range(2):
        _write_obj(up / f"identity{i:03d}.obj", z["neutral"] + z["identity_basis"][i], z["uv"], polys, pmats)
    names = list(z["expression_names"])
    for n in ("jawOpen", "eyeBlink_L", "mouthSmile_R"):
        _write_obj(up / f"{n}.obj", z["neutral"] + z["expression_basis"][names.index(n)], z["uv"], polys, pmats)
    (up / "vertex_indices.json").write_text(json.dumps({"idx_to_landmark_verts": z["landmarks_68"].tolist(),
                                                         "idx_to_fitting_verts": z["fitting_vertices"].tolist()}))
    out = tmp_path / "ict_face_light.npz"
    summary = convert_ict(up, out, n_identity=2, require_all=False)
    assert summary == {"vertices": 26719, "triangles": 52220, "identity": 2, "expressions": 3}
    c = np.load(out)
    assert np.array_equal(c["faces"], F) and np.array_equal(c["face_uv"], FU) and np.array_equal(c["tri_to_poly"], t2p)
    assert np.abs(c["neutral"] - z["neutral"]).max() < 1e-5
    assert np.abs(c["expression_basis"][0] - z["expression_basis"][names.index("eyeBlink_L")]).max() < 2e-5
    assert list(c["group_names"]) == list(z["group_names"]) and np.array_equal(c["group_ranges"], z["group_ranges"])
    assert [str(n) for n in c["material_names"]] == [str(n) for n in z["material_names"]]
    assert np.array_equal(c["tri_material"], mat)
    m = load_ict(out, n_identity=2)
    assert m.expression_names == ["eyeBlink_L", "jawOpen", "mouthSmile_R"]
