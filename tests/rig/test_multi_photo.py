"""Several photos of one person (issue 16 part 5): the Lee Perry-Smith scan photographed at yaw 0 and ±60° under a
room light (benchmarks/complete_head.py's scene, small). One identity is fitted to the three, each photo keeps its
own pose, and the texture fused from them matches the scan's albedo at the sides better than one photo's
texture does; photos of two different people are refused with the identity distance in the message."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_benchmark

SIZE = 256
YAWS = (0, 60, -60)


@pytest.fixture(scope="module")
def scene(shared):
    """(benchmark module, scan, [(photo uint8, analysis, matte, w2c)] at YAWS, K)."""
    bench = load_benchmark("complete_head")
    lps = bench.load_lps()
    shots, K = _photograph(bench, lps, SIZE)
    return bench, lps, shots, K


def _photograph(bench, head, size: int):
    """[(photo uint8, analysis, matte, w2c)] of `head` (the benchmark's format) at YAWS, and K."""
    from headforge.backend.face.matte import mediapipe_matte
    from headforge.backend.fitting.landmarks import mediapipe_478

    shots = []
    for yaw in YAWS:
        photo, _, K, w2c = bench.make_photo(head, size, yaw)
        photo8 = (photo * 255).round().astype(np.uint8)
        mp = mediapipe_478(photo8)
        assert mp is not None, f"MediaPipe finds no face in the head's render at yaw {yaw}"
        pts = mp[:, :2]
        bbox = np.array([*pts.min(axis=0), *pts.max(axis=0)])
        analysis = {"image_size": [size, size], "face": {"bbox": bbox.tolist(), "landmarks_478": mp.tolist(),
                                                         "landmarks_68": None}}
        shots.append((photo8, analysis, mediapipe_matte(photo8, bbox), w2c))
    return shots, K


@pytest.fixture(scope="module")
def results(scene, ict):
    from headforge.backend.rig.photo_rig import rig_from_photo, rig_from_photos

    bench, lps, shots, K = scene
    one = rig_from_photo(ict, shots[0][0], shots[0][1], texture_size=256, matte=shots[0][2])
    three = rig_from_photos(ict, [s[:3] for s in shots], texture_size=256)
    return one, three


def _novel_psnr(scene, rig, atlas, fit, degs):
    """Masked PSNR of the rig against the scan, both turned by each of `degs` (benchmarks/complete_head)."""
    bench, lps, shots, K = scene
    rows, _ = bench.turned_views(lps, rig, atlas, fit.K, fit.w2c, K, shots[0][3], SIZE, degs)
    return np.array([r[1] for r in rows])


def test_three_photos_fit_one_identity_with_each_pose(scene, results):
    one, three = results
    rig, atlas, fit, lm, info = three
    photos = info["photos"]
    yaws = [p["yaw_deg"] for p in photos]
    errors = [p["reprojection_error_iod"] for p in photos]
    print(f"fitted yaws {yaws} (photographed at {YAWS}); landmark error {errors} of the eye distance "
          f"(each photo fitted alone: {[p['single_photo_error_iod'] for p in photos]})")
    for y, azimuth in zip(yaws, YAWS):  # MediaPipe's turned-face landmarks make ±60° look like ±52°
        assert abs(y + azimuth) < 10.0  # the face stage's yaw: a camera at azimuth +60° sees yaw −60°
    # one identity explains all three photos about as well as each photo's own identity
    assert max(errors) < 0.1
    assert np.mean(errors) < 1.15 * np.mean([p["single_photo_error_iod"] for p in photos])
    tex = info["texture"]
    t1 = one[4]["texture"]
    print(f"texels by photo {tex['by_photo']}, mirrored {tex['mirrored']:.3f}, completed {tex['completed']:.3f} "
          f"(one photo: seen {t1['from_photo']:.3f}, mirrored {t1['mirrored']:.3f}, completed {t1['completed']:.3f})")
    assert min(tex["by_photo"][1:]) > 0.05  # the side photos do texture the sides
    # the three photos see more of the skin than one; what they see but their light does not explain (a fold's
    # shading, a misfit's edges: texture.variation_trust) is left to the completion (untrusted); the side photos
    # colour only what they see within texture.MORE_SEEN_DEG (measured: 0.239 + 0.052 against one photo's 0.267)
    print(f"three photos: from the photos {tex['from_photo']:.3f}, seen but untrusted {tex['untrusted']:.3f}")
    assert tex["from_photo"] + tex["untrusted"] > t1["from_photo"] + 0.015
    assert tex["completed"] - tex["untrusted"] < t1["completed"]


def test_three_photos_beat_one_at_the_sides(scene, results):
    one, three = results
    degs = (75, -75, 90, -90)
    p1 = _novel_psnr(scene, one[0], one[1], one[2], degs)
    p3 = _novel_psnr(scene, three[0], three[1], three[2], degs)
    print(f"masked PSNR at {degs}: three photos {np.round(p3, 2)} dB, one photo {np.round(p1, 2)} dB")
    assert p3.mean() > p1.mean() + 1.0
    assert p3.min() > p1.min()


def test_three_photos_beat_one_on_a_known_albedo(ict):
    """The ICT head of benchmarks/complete_head.py --ict-several (a sampled identity with a painted albedo, known
    exactly; its albedo at 256 px, the photos at the default 384 px, a 512 texture): the three photos' texture
    against the yaw-0 photo's alone, masked PSNR and SSIM against the albedo at ±30°, ±90°, 180°. Each photo's
    skin weighs by how little its de-lit colour varies locally (texture.variation_trust: shading the light model
    cannot take out, a misfitted brow's or eye's edge), so the fused texture is at least as good as one photo's
    at every angle. Measured (one photo; three photos before -> after): SSIM +30° 0.713; 0.672 -> 0.720,
    -30° 0.732; 0.691 -> 0.742, +90° 0.774; 0.764 -> 0.803, -90° 0.795; 0.778 -> 0.819, 180° 0.825;
    0.833 -> 0.836 (mean 0.768; 0.748 -> 0.784); PSNR mean 19.82 dB; 21.31 -> 21.81. The old fusion fails both
    SSIM assertions."""
    from headforge.backend.rig.photo_rig import rig_from_photo, rig_from_photos

    size, degs = 384, (30, -30, 90, -90, 180)
    bench = load_benchmark("complete_head")
    head = bench.load_ict_head(res=256)
    shots, K = _photograph(bench, head, size)
    one = rig_from_photo(ict, shots[0][0], shots[0][1], texture_size=512, matte=shots[0][2])
    three = rig_from_photos(ict, [s[:3] for s in shots], texture_size=512)
    got = {}
    for name, (rig, atlas, fit, _, _) in (("one", one), ("three", three)):
        rows, _ = bench.turned_views(head, rig, atlas, fit.K, fit.w2c, K, shots[0][3], size, degs)
        got[name] = np.array([(r[1], r[2]) for r in rows])
    print(f"views {degs}: PSNR one {np.round(got['one'][:, 0], 2)}, three {np.round(got['three'][:, 0], 2)} dB; "
          f"SSIM one {np.round(got['one'][:, 1], 3)}, three {np.round(got['three'][:, 1], 3)}")
    gain = got["three"] - got["one"]
    assert (gain[:, 0] > 0.0).all() and gain[:, 0].mean() > 1.0  # PSNR: better at every angle
    assert (gain[:, 1] >= 0.0).all()  # SSIM: no angle worse (old fusion: -0.041 at +30°)
    assert gain[:, 1].mean() > 0.008  # (old fusion: -0.020)


@pytest.fixture(scope="module")
def photo_files(scene, tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for yaw, shot in zip(YAWS, scene[2]):
        paths.append(folder / f"lps_{yaw:+d}.png")
        Image.fromarray(shot[0]).save(paths[-1])
    return paths


def test_job_with_three_photos_records_them_and_resumes(photo_files, tmp_path):
    """`headforge run a.png b.png c.png --mode instant`: job.json keeps the photos, the face stage checks they
    show one person, rig.json has each photo's pose; a second run changes nothing."""
    from headforge.backend.cli import main

    job = tmp_path / "job"
    argv = ["run", *map(str, photo_files), "-o", str(job), "--mode", "instant", "--set", "rig.texture_size=256"]
    assert main(argv) == 0
    record = json.loads((job / "job.json").read_text())
    assert record["inputs"]["photos"] == [str(p) for p in photo_files]
    analysis = json.loads((job / "face" / "analysis.json").read_text())
    checks = analysis["more_photos"]
    print(f"identity distances to photo 1: {[(c['distance'], c['threshold']) for c in checks]}")
    assert [c["name"] for c in checks] == ["02", "03"]
    assert all(c["distance"] < c["threshold"] for c in checks)
    rig = json.loads((job / "rig" / "rig.json").read_text())
    assert [round(p["yaw_deg"] / 10) for p in rig["photos"]] == [0, -5, 5]  # the face stage's sign: −azimuth
    stamps = {s: record["stages"][s]["finished"] for s in ("input", "face", "rig")}
    assert main(argv) == 0  # resume: nothing re-runs
    again = json.loads((job / "job.json").read_text())
    assert {s: again["stages"][s]["finished"] for s in stamps} == stamps


def test_photos_of_different_people_are_refused(photo_files, astronaut_path, tmp_path):
    from headforge.backend.errors import FaceError
    from headforge.backend.job import run_job

    job = tmp_path / "job"
    photos = [str(photo_files[0]), str(astronaut_path)]
    with pytest.raises(FaceError) as e:
        run_job(job, inputs={"photo": photos[0], "photos": photos}, mode="instant")
    print(e.value.message)
    assert e.value.code == "face.different_people"
    dist = float(re.search(r"faces are ([0-9.]+) apart", e.value.message).group(1))
    assert dist > 0.7  # the figure is in the message: the scan's man and the astronaut are far apart
    assert not (job / "rig" / "rig.json").exists() and not (job / "face" / "analysis.json").exists()


_PANEL_DRIVER = r'''
import json, sys
from pathlib import Path
import bpy
sys.path.insert(0, sys.argv[1] + "/tests/blender")
import extension_setup

repo, jobs_root, photos = sys.argv[1], sys.argv[2], sys.argv[3:]
module = extension_setup.install(Path(repo))
extension_setup.enable(module)
bpy.context.preferences.addons[module].preferences.jobs_root = jobs_root
s = bpy.context.scene.headforge
s.photo = photos[0]
facts = {"add": list(bpy.ops.headforge.photo_add(filepath=photos[1]))}
bpy.ops.headforge.photo_add(directory=str(Path(photos[2]).parent), files=[{"name": Path(photos[2]).name},
                                                                        {"name": Path(photos[0]).name}])
facts["listed"] = [p.path for p in s.more_photos]
s.more_photos_index = 0
bpy.ops.headforge.photo_remove()
facts["after_remove"] = [p.path for p in s.more_photos]
bpy.ops.headforge.photo_add(filepath=photos[1])
facts["relisted"] = [p.path for p in s.more_photos]
s.mode, s.until = "instant", "face"
facts["generate"] = list(bpy.ops.headforge.generate())
st = bpy.context.window_manager.headforge
facts["job_dir"], facts["error"] = st.job_dir, st.error
s.more_photos.add().path = photos[1] + ".missing.png"
try:
    facts["missing"] = list(bpy.ops.headforge.generate())
except RuntimeError as e:
    facts["missing"] = ["RuntimeError", str(e)]
facts["missing_error"] = st.error_code
print("FACTS " + json.dumps(facts))
'''


@pytest.mark.blender
def test_panel_photo_list_runs_the_photos(photo_files, tmp_path):
    """The panel's More photos list (add several at once, the main photo not twice, remove) and Generate: the job
    records every photo and the face stage checks them; a listed file that is gone is refused before the job."""
    import os
    import subprocess
    import sys

    script = tmp_path / "drive.py"
    script.write_text(_PANEL_DRIVER)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender")}
    proc = subprocess.run([sys.executable, str(script), str(repo), str(tmp_path / "jobs"), *map(str, photo_files)],
                          capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("FACTS ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    facts = json.loads(lines[-1][6:])
    a, b, c = map(str, photo_files)
    assert facts["add"] == ["FINISHED"]
    assert facts["listed"] == [b, c]  # the main photo is not listed again
    assert facts["after_remove"] == [c] and facts["relisted"] == [c, b]
    assert facts["generate"] == ["FINISHED"] and facts["error"] == ""
    job = Path(facts["job_dir"])
    assert json.loads((job / "job.json").read_text())["inputs"]["photos"] == [a, c, b]
    assert [m["name"] for m in json.loads((job / "face" / "analysis.json").read_text())["more_photos"]] == ["02", "03"]
    assert facts["missing_error"] == "input.not_found"


def test_side_photos_colour_only_what_they_see_well(ict):
    """The texture baker alone on exact geometry: the ICT dataset head of benchmarks/complete_head.py --ict-several
    (painted albedo, known texel by texel in the skin atlas's layout) photographed at yaw 0 and ±60° (256 px, the
    room light), each photo labelled from the head's own triangles (skin, the eyes and mouth kept out), baked into
    a 256 texture with the true head and cameras. The side photos colour only the skin they see within 45° of
    head-on (texture.MORE_SEEN_DEG): their glancing reads (foreshortened, lit by their light's extrapolation) gave
    the texture structure the albedo does not have. The albedo's overall exposure cannot be known from photos, so
    the atlas is compared with it after the best single gain. Measured: mean |error| 12.29 -> 8.91 of 255, texel
    SSIM 0.8615 -> 0.8654 (today's code, every read kept, fails both)."""
    import dataclasses

    from skimage.metrics import structural_similarity

    from headforge.backend.dataset.ict_heads import head_mesh, head_vertices, sample_heads
    from headforge.backend.headmodel.parts import visible_faces
    from headforge.backend.render.raster import project, rasterize
    from headforge.backend.rig.photo_parse import SKIN, PhotoParse
    from headforge.backend.rig.texture import PhotoView, bake_photo_texture, skin_faces, texel_surface

    res = size = 256
    bench = load_benchmark("complete_head")
    head = bench.load_ict_head(res=res)  # the same sampled head as below, in the benchmark's frame
    h = dataclasses.replace(next(x for x in sample_heads(40, 0) if x.bald), expression={})
    verts = head_vertices(ict, h)
    verts = verts - [0.0, 0.0, head_mesh(ict, verts, res)[0][:, 2].max() - 0.12]
    skin = np.zeros(len(ict.faces), bool)
    skin[skin_faces(ict)] = True
    vis = visible_faces(ict)
    views = []
    for yaw in YAWS:
        photo, _, K, w2c = bench.make_photo(head, size, yaw)
        xy, z = project(verts, K, w2c)
        tid = rasterize(xy, z, ict.faces[vis], size, size, cull_backfaces=True)[0]
        on = tid >= 0
        is_skin = np.zeros_like(on)
        is_skin[on] = skin[vis[tid[on]]]
        parse = PhotoParse(np.where(is_skin, SKIN, 0).astype(np.uint8), np.array([0.8, 0.6, 0.5]), None, 0.0,
                           np.zeros(2), np.eye(2))
        views.append(PhotoView(verts, K, w2c, (photo * 255).round().astype(np.uint8), on & ~is_skin, parse))
    v0 = views[0]
    atlas, stats = bake_photo_texture(ict, verts, v0.K, v0.w2c, v0.photo, res=res, exclude=v0.exclude,
                                      parse=v0.parse, more=views[1:])
    mask = texel_surface(ict, ict.neutral, skin_faces(ict), res)[0]
    truth = head[3][:res, :2 * res].astype(np.float64)
    a, t = atlas.astype(np.float64)[mask], truth[mask]
    gain = (a * t).sum() / (a * a).sum()
    err = float(np.abs(a * gain - t).mean())
    _, ssim = structural_similarity(atlas.astype(np.float32) / 255, (truth / 255).astype(np.float32),
                                    channel_axis=2, data_range=1.0, full=True)
    ssim = float(ssim.mean(axis=2)[mask].mean())
    print(f"atlas vs albedo: mean |error| {err:.2f} of 255 after the best gain ({gain:.3f}), texel SSIM {ssim:.4f}; "
          f"texels by photo {stats['by_photo']}")
    assert min(stats["by_photo"][1:]) > 0.1  # the side photos still texture the sides
    assert err < 10.5  # (every side read kept: 12.29)
    assert ssim > 0.8635  # (every side read kept: 0.8615)
