"""`headforge run PHOTO --mode instant` end to end on the astronaut: input → face → rig, measured."""
import json
import time

import numpy as np
import pygltflib
import pytest
from PIL import Image

from headforge.backend.headmodel import ARKIT_52
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def instant_job(tmp_path_factory, astronaut_path):
    from headforge.backend.job import STAGES, pipeline, run_job

    job = tmp_path_factory.mktemp("instant")
    names = pipeline("instant")
    assert names[-1] == "rig"
    if "face" not in STAGES:  # the face stage not installed: give the rig the analysis it would write
        from .conftest import write_analysis

        write_analysis(job, np.asarray(Image.open(astronaut_path).convert("RGB")))
    t = time.time()
    record = run_job(job, inputs={"photo": str(astronaut_path)}, mode="instant")
    return job, record, time.time() - t


def test_instant_mode_writes_a_valid_rig(instant_job, gltf_validator):
    job, record, seconds = instant_job
    assert record["stages"]["rig"]["status"] == "done"
    rig = json.loads((job / "rig" / "rig.json").read_text())
    assert rig["shape_keys"] == list(ARKIT_52)
    assert [b["name"] for b in rig["bones"]] == ["root", "neck", "head", "jaw", "eye_L", "eye_R"]
    assert rig["neutralised"] is True
    # a smiling portrait: the fit sees the smile (it is removed from the Basis, kept in the record)
    expr = rig["fit"]["portrait_expression_arkit"]
    assert expr["mouthSmileLeft"] > 0.3 and expr["mouthSmileRight"] > 0.3
    report = gltf_validator(job / "rig" / "head_rigged.glb")
    assert report["errors"] == 0, report["messages"]
    # the hair's material has no dielectric specular (hair_mesh.hair_material_extensions: from behind in Cycles the
    # crown's grazing Fresnel took the sky's grey)
    mats = {m.name: m for m in pygltflib.GLTF2().load(str(job / "rig" / "head_rigged.glb")).materials}
    assert mats["hair"].extensions["KHR_materials_specular"]["specularFactor"] == 0.0
    print(f"instant mode on the astronaut: {seconds:.1f} s total, rig stage "
          f"{record['stages']['rig']['seconds']:.1f} s")


def test_instant_fit_matches_the_photo(instant_job, artifacts):
    from headforge.backend.rig.evaluate import photo_consistency

    job, record, _ = instant_job
    rig_rec = json.loads((job / "rig" / "rig.json").read_text())
    err = rig_rec["fit"]["reprojection_error_iod"]
    assert err < 0.03, err  # RMS landmark reprojection error, fraction of the inter-ocular distance
    pc = photo_consistency(job)
    Image.fromarray((np.concatenate([pc["photo"], pc["render"]], 1) * 255).astype(np.uint8)).save(
        artifacts / "rig_instant_front.png")
    print(f"astronaut: landmark error {100 * err:.2f}% IOD, masked PSNR of the front render {pc['psnr_db']:.2f} dB "
          f"over {pc['pixels']} px")
    assert pc["pixels"] > 5000
    # the photo is not the albedo: this rises with the photo's own shading left in the texture. 22.39 dB before the
    # photo's outline gave way (17a5897: Lee Perry-Smith novel views +1.2 dB) 22.04, and with a smile's shading round
    # the mouth lifted (creases.mouth_evened: the smiling dataset heads' mouth error 12.85 -> 10.06) 22.00; the
    # bound keeps a margin below that for other machines' arithmetic
    assert pc["psnr_db"] > 21.9
    # the eyeballs take the photo's iris and sclera colours: closer to the photo than textbook white
    textbook = photo_consistency(job, photo_eyes=False)
    print(f"  eyes: {pc['eyes_psnr_db']:.2f} dB with the photo's colours, {textbook['eyes_psnr_db']:.2f} dB with "
          f"textbook ones, over {pc['eye_pixels']} px; {rig_rec['eyes']}")
    assert pc["eye_pixels"] > 50
    assert pc["eyes_psnr_db"] > textbook["eyes_psnr_db"] + 1.0


def test_astronaut_texture_has_her_hair_and_no_suit_or_flag(instant_job):
    """The scalp takes the photo's hair colour; the orange suit, the black collar and the flag's blue stay out."""
    job, _, _ = instant_job
    tex = json.loads((job / "rig" / "rig.json").read_text())["texture"]
    print(f"astronaut texture: {tex['hair_region']:.3f} hair region, hair {tex['hair_rgb']}, skin "
          f"{tex['skin_albedo_rgb']}, photo labels {tex['photo_labels']}")
    assert tex["hair_rgb"] is not None and tex["hair_region"] > 0.15
    r, g, b = tex["hair_rgb"]
    assert r > g > b and r < 0.75  # dark blonde, not skin or white
    assert tex["from_photo"] + tex["mirrored"] + tex["completed"] == pytest.approx(1.0, abs=1e-6)
    atlas = np.asarray(Image.open(job / "rig" / "skin.png").convert("RGB")).astype(np.int32)
    blue = atlas[..., 2] > atlas[..., 0] + 8
    orange = (atlas[..., 0] > 200) & (atlas[..., 1] < 110)  # the suit (r ≈ 230, g ≈ 90)
    print(f"  blue texels {100 * blue.mean():.2f}%, suit-orange texels {100 * orange.mean():.2f}%")
    assert blue.mean() < 0.005 and orange.mean() < 0.005


def test_astronaut_skin_keeps_its_colour_where_the_light_is_divided_out(instant_job):
    """The skin the photo sees well keeps one colour where the light is divided out: lifted shadows (her cheek
    turned from the light, under the jaw) do not turn orange nor highlights pale. benchmarks/complete_head
    .skin_chroma_spread: a*b* distance of the well-seen skin texels (brows, eyes, lips, hair left out) to their
    median, median / p90: 2.42 / 4.66 with the light's colour by exposure divided out (texture_complete.light_tint);
    with the shadows pulled toward the lit skin's colour in proportion to their lift (the old regularisation) the
    sheets' astronaut job (test-artifacts/complete_head) had 3.24 / 6.07."""
    job, _, _ = instant_job
    med, p90 = load_benchmark("complete_head").skin_chroma_spread(job)
    print(f"astronaut skin chroma spread (a*b* to the median): median {med:.2f}, p90 {p90:.2f}")
    assert med < 2.8
    assert p90 < 5.2


def test_synthesised_skin_repeats_no_marks(instant_job):
    """The unseen nape (the back tile's lower part, all synthesised) carries pores, not a repeated feature: the
    detail tile's strong edges once tiled as bright strips every tile (2 % of texels beyond ±6 high-pass)."""
    import cv2

    job, _, _ = instant_job
    atlas = np.asarray(Image.open(job / "rig" / "skin.png").convert("RGB")).astype(np.float32)
    lum = atlas @ np.array([0.299, 0.587, 0.114], np.float32)
    hp = lum - cv2.GaussianBlur(lum, (0, 0), 3)
    H, W = lum.shape
    nape = hp[int(0.66 * H):int(0.98 * H), int(0.55 * W):int(0.98 * W)]
    print(f"nape high-pass: std {nape.std():.2f}, beyond ±6: {100 * (np.abs(nape) > 6).mean():.3f}%")
    assert (np.abs(nape) > 6).mean() < 0.002
    assert nape.std() > 0.3  # still some pores, not a flat colour


def test_iris_matches_the_photo(instant_job):
    """The rendered iris (fitted camera, portrait expression) has the photo's iris colour where the photo has it."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "complete_head", Path(__file__).resolve().parents[2] / "benchmarks" / "complete_head.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    job, _, _ = instant_job
    eyes = json.loads((job / "rig" / "rig.json").read_text())["eyes"]
    de = bench.iris_delta_e(job)
    print(f"astronaut iris: ΔE2000 {de:.2f}, {eyes}")
    assert 20.0 <= eyes["iris_deg"] <= 30.0  # a human iris on a 12 mm eyeball: ≈ 26°
    assert de < 2.0
    assert sum(eyes["iris_rgb"]) < 0.6 * sum(eyes["sclera_rgb"])  # dark brown eyes, not pale


def test_neutralised_smile_keeps_lip_coloured_lips(instant_job, ict):
    """The smile's lips are stretched and partly hidden in the photo: the neutral lips (the atlas inside the
    lip contour) are redder than the skin around them, not a skin-coloured smear."""
    import cv2

    from headforge.backend.rig.texture import lip_region

    job, _, _ = instant_job
    tex = json.loads((job / "rig" / "rig.json").read_text())["texture"]
    atlas = np.asarray(Image.open(job / "rig" / "skin.png").convert("RGB")).astype(np.float64)
    lips = lip_region(ict, atlas.shape[0]) > 0.5
    ring = cv2.dilate(lips.astype(np.uint8), np.ones((25, 25), np.uint8)).astype(bool) & ~cv2.dilate(
        lips.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    redness = lambda m: float(np.mean(atlas[m][:, 0] - atlas[m][:, 1]))  # noqa: E731
    print(f"lips: colour {tex['lip_rgb']}, redness (R−G) {redness(lips):.1f} vs skin around {redness(ring):.1f}")
    assert tex["lip_rgb"] is not None
    assert redness(lips) > redness(ring) + 8


def test_hair_mesh_fills_her_outline(instant_job):
    """The astronaut's bob: a hair mesh (skinned to the head bone) brings the front outline closer to the
    photo's head (skin and hair pixels above the chin)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "complete_head", Path(__file__).resolve().parents[2] / "benchmarks" / "complete_head.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    job, _, _ = instant_job
    rec = json.loads((job / "rig" / "rig.json").read_text())
    assert rec["hair_mesh"] is True
    without, with_hair = bench.silhouette_iou(job)
    print(f"front outline IoU: {without:.3f} bald, {with_hair:.3f} with the hair mesh; {rec['hair']}")
    assert with_hair > without + 0.06
    assert with_hair > 0.78
    assert 0.01 < rec["hair"]["reach_m_max"] < 0.09


def test_bob_falls_over_her_ears_and_her_teeth_show(instant_job):
    """Her bob comes down past her eyes beside her face (the photo's hair ends there), so in profile no bare
    scalp shows between the hair and the ear (4.1 % of the head's pixels skin-coloured scalp before the fall,
    0.06 % with it), the outline fills more of the photo's (IoU 0.847 -> 0.886), and her open mouth shows its
    upper teeth (17 -> 58 px at jawOpen 0.8)."""
    from tests.conftest import load_benchmark

    bench = load_benchmark("complete_head")
    job, _, _ = instant_job
    rec = json.loads((job / "rig" / "rig.json").read_text())
    bare, iou = bench.scalp_skin_in_profile(job), bench.silhouette_iou(job)[1]
    teeth = bench.upper_teeth_pixels(job)
    print(f"hair falls to {rec['hair']['fall_m_above_eyes']} m above the eyes; bare scalp in profile "
          f"{100 * bare:.2f} %; outline IoU {iou:.3f}; upper teeth {teeth} px; hairline "
          f"{rec['texture']['hairline_front_profile']}")
    assert max(rec["hair"]["fall_m_above_eyes"]) < -0.01
    assert bare < 0.005
    assert iou > 0.86  # 0.876 in this job (the CLI job: 0.886)
    assert teeth > 40


def test_her_jaw_and_hairline_have_no_seam(instant_job):
    """The skin below her jaw continues her face's tone (jaw colour step ΔE76 3.82 in this job before the carry
    across the jaw line, 2.45 with it), and her hairline is a line, not a texel staircase with specks of strands
    on the forehead (hairline edge per column: 2.21 with nearest-pixel labels and a texel-wise fringe, 2.00 with
    labels read between pixels and the fringe joined to the hair with a soft edge; 1.0 would be a clean line).
    The off-colour band along the hairline stays near what it was (11.0 -> 12.4 %: soft edges mix skin and hair).
    The edge measure moves with the skin's tone beside the hairline by a few hundredths: 2.19 at 86625a1, 2.15 with
    the light divided by the pixels' normals on thin features, 2.21 with the highlights compressed (texture.py),
    the jaw step 2.05 / 2.12 / 2.12 and the band 11.5 / 11.4 / 11.5 % meanwhile; the bound leaves that much room.
    """
    from tests.conftest import load_benchmark

    bench = load_benchmark("complete_head")
    job, _, _ = instant_job
    jaw, jaw_max = bench.jaw_colour_step(job)
    edge, band = bench.hairline_edge(job), bench.hairline_band(job)
    print(f"jaw colour step ΔE76 {jaw:.2f} (max {jaw_max:.2f}); hairline edge per column {edge:.2f}, "
          f"off-colour band {100 * band:.1f} %")
    assert jaw < 3.1
    assert edge < 2.25
    assert band < 0.14


@pytest.mark.blender
def test_blender_hair_follows_the_head_bone(instant_job):
    """In Blender the hair is its own mesh, skinned wholly to the head bone: turning the head turns the hair
    with the crown of the head (same rigid motion)."""
    bpy = pytest.importorskip("bpy")
    from mathutils import Euler

    job, _, _ = instant_job
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(job / "rig" / "head_rigged.glb"))
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    hair = next(o for o in bpy.data.objects if o.type == "MESH" and o.name.startswith("hair"))
    head = next(o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys)
    assert [m.type for m in hair.modifiers] == ["ARMATURE"]
    names = {g.index: g.name for g in hair.vertex_groups}
    used = {names[g.group] for v in hair.data.vertices for g in v.groups if g.weight > 0}
    assert used == {"head"}

    def world_points(obj):
        dg = bpy.context.evaluated_depsgraph_get()
        ev = obj.evaluated_get(dg)
        me = ev.to_mesh()
        pts = np.array([(obj.matrix_world @ v.co)[:] for v in me.vertices])
        ev.to_mesh_clear()
        return pts

    h0, k0 = world_points(hair), world_points(head)
    pb = arm.pose.bones["head"]
    pb.rotation_mode = "XYZ"
    pb.rotation_euler = Euler((0.0, 0.0, 0.5))
    bpy.context.view_layer.update()
    h1, k1 = world_points(hair), world_points(head)
    crown = k0[:, 2] > np.percentile(k0[:, 2], 97)  # the top of the head: wholly on the head bone
    moved = np.linalg.norm(h1 - h0, axis=1)
    assert moved.min() > 1e-4  # every hair vertex turns
    # one rigid motion for both: fit it on the crown, apply to the hair
    A, B = k0[crown], k1[crown]
    ca, cb = A.mean(0), B.mean(0)
    U, _, Vt = np.linalg.svd((A - ca).T @ (B - cb))
    R = (U @ Vt).T
    err = np.linalg.norm((h0 - ca) @ R.T + cb - h1, axis=1)
    print(f"hair vs the crown's rigid motion: max {1000 * err.max():.3f} mm over {len(h0)} vertices")
    assert err.max() < 1e-3


def test_the_rig_stays_the_photos_person(instant_job):
    """dlib's identity distance between the photo and the rig rendered at the photo's pose and turned ±30°
    (benchmarks/complete_head_identity.py) stays below dlib's same-person 0.6; another person's photo (the man
    in the middle of insightface's group photo t1) against the same render stays above it."""
    from insightface.data import get_image

    from headforge.backend.face.identity import DLIB_SAME_PERSON, identity_distance
    from tests.conftest import load_benchmark

    bench = load_benchmark("complete_head_identity")
    job = instant_job[0]
    photo, renders = bench.renders(job)
    person = bench.embedding(photo)
    d = {deg: identity_distance(person, bench.embedding(img)) for deg, img in renders.items()}
    group = np.ascontiguousarray(get_image("t1", to_rgb=True))
    h, w = group.shape[:2]
    other = bench.embedding(np.ascontiguousarray(group[:, int(0.33 * w):int(0.67 * w)]))
    control = identity_distance(other, bench.embedding(renders[0]))
    print(f"dlib distance photo → rig at the photo's pose / +30° / -30°: {d[0]:.3f} / {d[30]:.3f} / {d[-30]:.3f}; "
          f"another person's photo → the same front render {control:.3f}")
    assert max(d.values()) < DLIB_SAME_PERSON
    assert control > DLIB_SAME_PERSON
