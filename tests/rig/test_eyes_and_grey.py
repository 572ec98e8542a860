"""Issue 16's eyes and greyscale photos, measured: the iris of a small face of insightface's group photo rendered
where and in the colour the photo shows it (per eye ΔE2000), the eyelid points on the model's lid margins, the
portrait gaze read back from a projection, and scikit-image's greyscale cameraman without a white smear for lips or
a two-tone scalp."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_benchmark

def _bench():
    return load_benchmark("complete_head")


def _instant(job: Path, photo: np.ndarray) -> Path:
    from headforge.backend.job import run_job

    job.mkdir(parents=True, exist_ok=True)
    path = job.parent / f"{job.name}.png"
    Image.fromarray(photo).save(path)
    record = run_job(job, inputs={"photo": str(path)}, mode="instant")
    assert record["stages"]["rig"]["status"] == "done"
    return job


def iris_delta_e_per_eye(job: Path, bench) -> list[tuple[float, float, int]]:
    """Per eye (the subject's right, left): (CIEDE2000 between the photo's and the render's median colour over
    the iris ring (0.4-0.9 of MediaPipe's iris radius, inside the eye's outline; the benchmark's ring, one eye
    at a time), the iris radius in px, the ring's pixels)."""
    import cv2
    from skimage.color import deltaE_ciede2000, rgb2lab

    from headforge.backend.fitting.landmarks import MP_EYE_L, MP_EYE_R
    from headforge.backend.rig.build import eye_rotations
    from headforge.backend.rig.render import render_rig

    rig, atlas, rec = bench.load_rig(job)
    photo = np.asarray(Image.open(job / "input" / "portrait.png").convert("RGB")).astype(np.float32) / 255
    pts = np.asarray(json.loads((job / "face" / "analysis.json").read_text())["face"]["landmarks_478"])[:, :2]
    K, w2c = np.array(rec["fit"]["camera"]["K"]), np.array(rec["fit"]["camera"]["w2c"])
    img, _ = render_rig(rig, atlas, K, w2c, photo.shape[1::-1], shape_keys=rec["fit"]["portrait_expression_arkit"],
                        rotations=eye_rotations(rec["fit"].get("portrait_gaze_deg")))  # the photo's gaze
    ys, xs = np.mgrid[0:photo.shape[0], 0:photo.shape[1]]
    out = []
    for outline, c, edge in ((MP_EYE_R, 468, slice(469, 473)), (MP_EYE_L, 473, slice(474, 478))):
        m = np.zeros(photo.shape[:2], np.uint8)
        cv2.fillPoly(m, [np.round(pts[list(outline)]).astype(np.int32)], 1)
        r = float(np.linalg.norm(pts[edge] - pts[c], axis=1).mean())
        d = np.hypot(xs - pts[c][0], ys - pts[c][1])
        ring = m.astype(bool) & (d > 0.4 * r) & (d < 0.9 * r)
        a = rgb2lab(np.median(photo[ring], axis=0)[None, None])
        b = rgb2lab(np.median(img[ring], axis=0)[None, None])
        out.append((float(deltaE_ciede2000(a, b)[0, 0]), r, int(ring.sum())))
    return out


@pytest.fixture(scope="module")
def group_face_job(tmp_path_factory):
    """The woman laughing at the right of insightface's t1 (the benchmark's crop 3, upscaled twice): eyes
    narrowed to 2-3 px slits, iris radius 3.6 px in the original photo."""
    get_image = pytest.importorskip("insightface.data").get_image
    bench = _bench()
    group = np.ascontiguousarray(get_image("t1", to_rgb=True))
    h, w = group.shape[:2]
    x0, y0, x1, y1 = bench.GROUP_CROPS[3]
    crop = group[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
    photo = np.asarray(Image.fromarray(crop).resize((crop.shape[1] * 2, crop.shape[0] * 2), Image.LANCZOS))
    return _instant(tmp_path_factory.mktemp("group") / "t1_3", photo), bench


def test_small_group_face_iris_is_the_photos_where_the_photo_shows_it(group_face_job):
    from skimage.color import rgb2lab

    job, bench = group_face_job
    eyes = iris_delta_e_per_eye(job, bench)
    combined = bench.iris_delta_e(job)
    rec = json.loads((job / "rig" / "rig.json").read_text())
    print(f"group t1 face 3: iris ΔE2000 per eye {[round(e[0], 1) for e in eyes]} (radius "
          f"{[round(e[1], 1) for e in eyes]} px, ring {[e[2] for e in eyes]} px), benchmark {combined:.1f}; "
          f"{rec['eyes']}")
    for de, radius, n in eyes:
        assert radius >= 6.0 and n >= 15  # measurable: ≥ 3 px in the original photo
        assert de < 10.0  # before: 45.2 / 43.7 (the rig's lids over the photo's iris, its iris looking ahead)
    assert combined < 5.0  # before 43.9
    iris, sclera = np.array(rec["eyes"]["iris_rgb"]), np.array(rec["eyes"]["sclera_rgb"])
    assert iris.sum() < sclera.sum()  # a dark iris
    # an eye white, not the lids and lashes sampled from a 5 px slit (before: L* 41.6, chroma 31.4, browner
    # than her skin); the photo's skin (chroma 18) bounds it
    lab = rgb2lab(sclera[None, None])[0, 0]
    print(f"  sclera L* {lab[0]:.1f}, chroma {np.hypot(*lab[1:]):.1f}")
    assert lab[0] > 60 and np.hypot(*lab[1:]) < 20
    for key in ("gaze_right_deg", "gaze_left_deg"):  # the photo's gaze, posed on eyes that rest looking ahead
        assert all(abs(a) <= 30 for a in rec["fit"]["portrait_gaze_deg"][key])


def test_eyelid_points_sit_on_the_models_lid_margins(ict):
    """On a frontal render of the mean face, MediaPipe's eyelid points (the corrected correspondence) lie on the
    edge of the eye opening; the stored one had the lower lid's 2-5 mm below it. The instant fit moves the lower
    lid's only (photo_rig.LIDS)."""
    from headforge.backend.fitting.correspondence import load_mediapipe_correspondence
    from headforge.backend.fitting.landmarks import MP_EYE_L, MP_EYE_R
    from headforge.backend.headmodel.parts import eye_centre, visible_faces
    from headforge.backend.render.raster import project, rasterize
    from headforge.backend.rig.photo_rig import lid_margin_correspondence

    stored = load_mediapipe_correspondence(ict)
    fixed = lid_margin_correspondence(ict, *stored, lids=("upper", "lower"))
    default = lid_margin_correspondence(ict, *stored)  # the instant fit's: the lower lid only (LIDS)
    v = ict.neutral.astype(np.float64)
    F = ict.faces[visible_faces(ict)]
    eyeball = np.zeros(ict.n_vertices, bool)
    eyeball[np.concatenate([ict.groups["eyeball_right"], ict.groups["eyeball_left"]])] = True
    on_eye = np.all(eyeball[F], axis=1)
    px_per_mm = 20.0  # a different scale and framing from the function's own render
    for outline, group in ((MP_EYE_R, "eyeball_right"), (MP_EYE_L, "eyeball_left")):
        c = eye_centre(v[ict.groups[group]])
        w2c = np.eye(4)
        w2c[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
        w2c[:3, 3] = -w2c[:3, :3] @ (c + [0.0, -1.0, 0.0])
        K = np.array([[px_per_mm * 1000, 0, 400], [0, px_per_mm * 1000, 300], [0, 0, 1]])
        xy, z = project(v, K, w2c)
        tid, _, _ = rasterize(xy, z, F, 600, 800, cull_backfaces=True)
        opening = (tid >= 0) & on_eye[np.maximum(tid, 0)]
        ids = list(outline)
        gaps = {}
        for name, (tri, bary) in (("stored", stored), ("fixed", fixed), ("default", default)):
            P = project(np.einsum("nk,nkc->nc", bary[ids], v[ict.faces[tri[ids]]]), K, w2c)[0]
            gap = []
            for k in list(range(2, 7)) + list(range(10, 15)):  # the lids' middle points, upper then lower
                rows = np.nonzero(opening[:, int(round(P[k, 0]))])[0]
                edge = rows.min() if k < 8 else rows.max()
                gap.append(abs(P[k, 1] - edge) / px_per_mm)
            gaps[name] = np.array(gap)
        print(f"{group}: lid points to the opening's edge, mm: stored {gaps['stored'].round(1)}, "
              f"fixed {gaps['fixed'].round(2)}")
        assert gaps["fixed"].max() < 0.25
        assert gaps["stored"][5:].mean() > 2.0  # the stored lower lid: the bias this corrects
        assert gaps["default"][5:].max() < 0.25 and np.allclose(gaps["default"][:5], gaps["stored"][:5])


def test_portrait_gaze_turns_the_eye_bones_where_photo_gaze_reads_it(ict):
    """The rig's irises rest looking ahead (−Y); build.eye_rotations turns the eye bones to a gaze, which puts
    the iris cap's centre on that direction, and photo_gaze reads it back from where the iris centre projects."""
    from headforge.backend.headmodel.parts import eye_centre
    from headforge.backend.render.raster import project
    from headforge.backend.rig.build import build_rig, eye_rotations, gaze_direction, skin_vertices
    from headforge.backend.rig.photo_rig import photo_gaze

    gaze = {"gaze_right_deg": (12.0, -9.0), "gaze_left_deg": (-6.0, 4.0)}
    rig = build_rig(ict, np.zeros(1), iris_rgb=(0, 1, 0), sclera_rgb=(1, 1, 1), iris_deg=25.0)
    posed = skin_vertices(rig, eye_rotations(gaze))
    eyes = next(p for p in rig.primitives if p.name == "eyes")
    f = 2000.0
    K = np.array([[f, 0, 256], [0, f, 256], [0, 0, 1.0]])
    w2c = np.eye(4)
    w2c[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    w2c[:3, 3] = -w2c[:3, :3] @ np.array([0.02, -0.6, 0.03])  # a little off-centre, 0.6 m in front
    centres = []
    for key, group in (("gaze_right_deg", "eyeball_right"), ("gaze_left_deg", "eyeball_left")):
        idx = ict.groups[group]
        local = np.searchsorted(eyes.vertex_ids, idx)
        iris = (eyes.colour[local, 1] > 0.5) & (eyes.colour[local, 0] < 0.5)  # green: the iris (pupil black)
        for verts, look in ((rig.basis, (0.0, 0.0)), (posed, gaze[key])):  # at rest: ahead; posed: the gaze
            p = np.asarray(verts, np.float64)[idx]
            c = eye_centre(p)
            d = (p - c) / np.linalg.norm(p - c, axis=1, keepdims=True)
            angle = np.degrees(np.arccos(np.clip(d @ gaze_direction(*look), -1, 1)))
            ring = (angle > 0.4 * 25.0 + 0.5) & (angle < 25.0 - 0.5)
            assert ring.sum() > 50 and iris[ring].all(), (group, look)  # the iris: 10-25° around it
            assert not iris[(angle > 25.5) | (angle < 9.5)].any(), (group, look)
        radius = np.linalg.norm(p - c, axis=1).mean()
        centres.append(project((c + radius * gaze_direction(*gaze[key]))[None], K, w2c)[0][0])
    read = photo_gaze(ict, posed, K, w2c, np.array(centres))
    for key in gaze:
        assert np.allclose(read[key], gaze[key], atol=0.5), (key, read[key])


@pytest.fixture(scope="module")
def cameraman_job(tmp_path_factory):
    from skimage import data

    photo = np.repeat(data.camera()[..., None], 3, axis=2)
    return _instant(tmp_path_factory.mktemp("grey") / "cameraman", photo)


def test_greyscale_photo_has_no_white_lips_and_one_hair_tone(cameraman_job, ict):
    """The cameraman (greyscale, a side view): the lips' texels are not the white wall behind his profile, and
    the front of the scalp has one tone on both sides (the seen side was skin-grey with dark islands beside the
    completed dark hair)."""
    from skimage.color import rgb2lab

    from headforge.backend.headmodel.parts import eye_height
    from headforge.backend.rig.photo_parse import HAIR, SKIN, parse_photo
    from headforge.backend.rig.texture import lip_region, skin_faces, texel_surface

    job = cameraman_job
    atlas = np.asarray(Image.open(job / "rig" / "skin.png").convert("RGB"))
    res = atlas.shape[0]
    lips = lip_region(ict, res) > 0.5
    white = (atlas.min(axis=-1) > 0.85 * 255)[lips].mean()
    mask, pos = texel_surface(ict, ict.neutral, skin_faces(ict), res)[:2]
    L = rgb2lab(atlas / 255.0)[..., 0]
    front_scalp = mask & (pos[..., 2] > eye_height(ict) + 0.03) & (pos[..., 1] < -0.02)
    step = abs(np.median(L[front_scalp & (pos[..., 0] > 0.01)]) - np.median(L[front_scalp & (pos[..., 0] < -0.01)]))
    tex = json.loads((job / "rig" / "rig.json").read_text())["texture"]
    print(f"cameraman: near-white lip texels {100 * white:.1f} % (before 84 %), front scalp L* step between the "
          f"sides {step:.1f} (before 11.4); lip {tex['lip_rgb']}, hair {tex['hair_rgb']}, skin "
          f"{tex['skin_albedo_rgb']}")
    assert white < 0.05
    assert step < 3.0
    assert tex["hair_rgb"] is not None and tex["hair_rgb"][0] < 0.5 * tex["skin_albedo_rgb"][0]  # dark hair
    assert tex["lip_rgb"] is None or tex["lip_rgb"][0] < 0.8
    # the labels themselves: hair darker than skin, almost no hair-dark pixels taken for skin
    photo = np.asarray(Image.open(job / "input" / "portrait.png").convert("RGB"))
    matte = np.asarray(Image.open(job / "face" / "matte.png").convert("L"), np.float32) / 255
    pts = np.asarray(json.loads((job / "face" / "analysis.json").read_text())["face"]["landmarks_478"])[:, :2]
    parse = parse_photo(photo, pts, matte)
    lum = photo[..., 0].astype(np.float64)
    skin, hair = parse.labels == SKIN, parse.labels == HAIR
    assert np.median(lum[hair]) < 0.5 * np.median(lum[skin])
    assert (lum[skin] < np.median(lum[hair])).mean() < 0.01  # before: hair (lum 22-70) labelled skin


def test_greyscale_photo_gives_a_grey_mouth(cameraman_job, group_face_job):
    """The cameraman (greyscale): the mouth, gums, teeth and lashes the glb carries (vertex colours) are in the
    photo's own tone, not the textbook's red mouth and pink gums in a grey head (their a*b* chroma was 8-35);
    a colour photo keeps the textbook colours."""
    import pygltflib
    from skimage.color import rgb2lab

    from tests.glb import read_accessor

    def part_chroma(job):
        gl = pygltflib.GLTF2().load(str(job / "rig" / "head_rigged.glb"))
        out = {}
        for prim in gl.meshes[0].primitives:
            name = gl.materials[prim.material].name
            if name not in ("mouth", "gums", "teeth") or prim.attributes.COLOR_0 is None:
                continue
            col = read_accessor(gl, prim.attributes.COLOR_0)
            lab = rgb2lab(col[None].astype(np.float64))[0]
            out[name] = float(np.hypot(lab[:, 1], lab[:, 2]).max())
        return out

    grey, colour = part_chroma(cameraman_job), part_chroma(group_face_job[0])
    print(f"mouth parts a*b* chroma: cameraman {grey}, group face {colour}")
    assert set(grey) == {"mouth", "gums", "teeth"} and max(grey.values()) < 1.0
    assert colour["gums"] > 20 and colour["mouth"] > 20


def test_colour_photos_are_not_taken_for_grey():
    import cv2
    from skimage import data

    from headforge.backend.rig.photo_parse import no_colour

    ycc = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2YCrCb).astype(np.float64)
    assert not no_colour(ycc[..., 1:].reshape(-1, 2))
    grey = cv2.cvtColor(np.repeat(data.camera()[..., None], 3, axis=2), cv2.COLOR_RGB2YCrCb).astype(np.float64)
    assert no_colour(grey[..., 1:].reshape(-1, 2))


def test_closed_lids_and_lips_keep_the_photos_tone(group_face_job, cameraman_job):
    """The lids of a photo whose eyes are nearly closed (the laughing woman of group face 3; the cameraman,
    eyeSquintRight 0.82) take the tone of the skin round them, not the shading of the closed lids and the folds round
    them, which the rig's opened eyes wore as a dark ring (creases.lids_evened); the lips keep the contrast the photo
    shows between them and the skin round them (texture.lip_tone: the cameraman's de-lit lips were lighter than his
    skin). Figures: benchmarks/texture_look.py."""
    look = load_benchmark("texture_look")
    face, cam = look.job_figures(group_face_job[0]), look.job_figures(cameraman_job)
    for name, f in (("group face 3", face), ("cameraman", cam)):
        print(f"{name}: lids over the skin round them {np.round(f['lids'], 3)}, lips minus skin (L*a*b*) atlas "
              f"{f['lips_minus_skin_atlas']} photo {f['lips_minus_skin_photo']}: ΔE {f['lip_contrast_de']:.1f}")
    assert min(face["lids"]) > 0.905  # before 0.894 / 0.946 (now 0.917 / 0.972)
    assert min(cam["lids"]) > 0.965  # before 0.956 / 0.962 (now 0.985 / 0.970)
    assert cam["lip_contrast_de"] < 4.0  # before 12.7: L* +7.3 against the photo's −5.5 (now 0.2)
