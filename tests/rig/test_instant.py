"""`headforge run PHOTO --mode instant` end to end on the astronaut: input → face → rig, measured."""
import json
import time

import numpy as np
import pytest
from PIL import Image

from headforge.backend.headmodel import ARKIT_52


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
    print(f"instant mode on the astronaut: {seconds:.1f} s total, rig stage "
          f"{record['stages']['rig']['seconds']:.1f} s")


def test_instant_fit_matches_the_photo(instant_job, artifacts):
    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.build import build_rig
    from headforge.backend.rig.render import masked_psnr, render_rig

    job, record, _ = instant_job
    rig_rec = json.loads((job / "rig" / "rig.json").read_text())
    err = rig_rec["fit"]["reprojection_error_iod"]
    assert err < 0.03, err  # RMS landmark reprojection error, fraction of the inter-ocular distance
    model = load_ict()
    rig = build_rig(model, np.array(rig_rec["fit"]["identity"]))
    atlas = np.asarray(Image.open(job / "rig" / "skin.png"))
    photo = np.asarray(Image.open(job / "input" / "portrait.png").convert("RGB")).astype(np.float32) / 255
    K = np.array(rig_rec["fit"]["camera"]["K"])
    w2c = np.array(rig_rec["fit"]["camera"]["w2c"])
    img, skin = render_rig(rig, atlas, K, w2c, photo.shape[1::-1],
                           shape_keys=rig_rec["fit"]["portrait_expression_arkit"])
    # compare over the face proper (rendered skin pixels inside the landmarks' hull)
    import cv2

    analysis = json.loads((job / "face" / "analysis.json").read_text())
    pts = np.asarray(analysis["face"]["landmarks_478"] or analysis["face"]["landmarks_68"])[:, :2]
    hull = np.zeros(skin.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
    mask = skin & hull.astype(bool)
    psnr = masked_psnr(img, photo, mask)
    Image.fromarray((np.concatenate([photo, img], 1) * 255).astype(np.uint8)).save(artifacts / "rig_instant_front.png")
    print(f"astronaut: landmark error {100 * err:.2f}% IOD, masked PSNR of the front render {psnr:.2f} dB "
          f"over {int(mask.sum())} px")
    assert mask.sum() > 5000
    assert psnr > 22.0
