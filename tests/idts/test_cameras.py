"""Parity of the reference cameras with `cameras_96`, and agreement with the project's 96-view rig."""
import numpy as np
import torch

from headforge.backend import cameras as rig
from headforge.backend.idts import cameras

from .conftest import max_abs


def test_cameras_96(fixtures):
    t = fixtures("cameras_96").t
    elev, az = cameras.reference_views()
    c2w = torch.from_numpy(cameras.reference_c2w_96())
    proj = torch.from_numpy(cameras.projection_matrix())
    plucker = cameras.plucker_rays(c2w[16], 256)
    errs = {"elevations": max_abs(torch.from_numpy(elev), t["elevations_96"]),
            "azimuths": max_abs(torch.from_numpy(az), t["azimuths_96"]), "c2w": max_abs(c2w, t["c2w_96"]),
            "proj": max_abs(proj, t["proj_matrix"]), "plucker_16": max_abs(plucker, t["plucker_view16_256"])}
    print("cameras_96 max|diff|", errs)
    assert errs["elevations"] == 0.0 and errs["azimuths"] == 0.0
    assert errs["c2w"] < 1e-6 and errs["proj"] < 1e-6 and errs["plucker_16"] < 1e-6


def test_project_rig_matches_reference_poses(fixtures):
    """backend.cameras (OpenCV, Blender world) converted to kiui must give the fixture's poses, view for view."""
    t = fixtures("cameras_96").t
    assert np.allclose(rig.eased_azimuths(), np.array(cameras.AZIMUTHS))
    ours = np.stack([rig.c2w_to_kiui(np.linalg.inv(c["w2c"])) for c in rig.rig_cameras()])
    err = max_abs(torch.from_numpy(ours), t["c2w_96"])
    print("rig vs cameras_96 c2w max|diff|", err)
    assert err < 1e-5
