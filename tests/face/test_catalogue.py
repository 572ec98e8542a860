"""Every case of the bad-photo catalogue gives its expected outcome: a specific error code, or the chosen face
with the warnings it must (and must not) carry."""
import numpy as np
import pytest

from headforge.backend.errors import FaceError

from .catalogue import CASES


@pytest.mark.parametrize("name", list(CASES))
def test_catalogue_case(name, run_analyse):
    build, expected = CASES[name]
    img = build()
    if "error" in expected:
        with pytest.raises(FaceError) as e:
            run_analyse(img)
        assert e.value.code == expected["error"], e.value.message
        assert e.value.message and e.value.hint
        return
    result = run_analyse(img)
    a = result.analysis
    codes = {w["code"] for w in a["warnings"]}
    assert len(a["faces"]) == expected["faces"]
    if "chosen" in expected:
        assert a["chosen"] == expected["chosen"]
    assert expected.get("warn", set()) <= codes, codes
    assert not (expected.get("no_warn", set()) & codes), codes
    # whatever the photo, the crop is the model's input: 512² RGB, white where the matte is empty
    assert result.crop.shape == (512, 512, 3) and result.crop.dtype == np.uint8
    corners = result.crop[[0, 0, -1], [0, -1, -1]]
    bg = result.crop_matte8[[0, 0, -1], [0, -1, -1]] < 10
    assert np.all(corners[bg] >= 250)


def test_several_faces_listed_and_choosable(run_analyse):
    from .catalogue import group_t1

    img = group_t1()
    auto = run_analyse(img).analysis
    sizes = [f["size_px"] for f in auto["faces"]]
    assert auto["chosen"] == int(np.argmax(sizes))
    xs = [f["bbox"][0] + f["bbox"][2] for f in auto["faces"]]
    assert xs == sorted(xs), "faces are numbered left to right"
    multiple = next(w for w in auto["warnings"] if w["code"] == "face.multiple")
    assert "6 faces" in multiple["message"]
    picked = run_analyse(img, face=4).analysis
    assert picked["chosen"] == 4 and picked["face"]["bbox"] == auto["faces"][4]["bbox"]
    with pytest.raises(FaceError) as e:
        run_analyse(img, face=9)
    assert e.value.code == "face.bad_choice" and "6 face(s)" in e.value.message


def test_bad_options_are_refused(run_analyse):
    from .catalogue import astronaut

    for opts, code in (({"detector": "haar"}, "face.bad_option"), ({"matte": "magic"}, "face.bad_option"),
                       ({"pack": "buffalo_x"}, "face.bad_option")):
        with pytest.raises(FaceError) as e:
            run_analyse(astronaut(), **opts)
        assert e.value.code == code


def test_missing_detector_pack_is_a_model_error(tmp_path, monkeypatch):
    from headforge.backend.errors import ModelMissingError
    from headforge.backend.face.detect import resolve_detector

    monkeypatch.setenv("HEADFORGE_MODELS", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ModelMissingError) as e:
        resolve_detector("scrfd", "buffalo_l", tmp_path)
    assert "buffalo_l" in e.value.message and e.value.hint
    assert resolve_detector("auto", "buffalo_l", tmp_path) == ("mediapipe", None)  # licence-clean fallback


def test_face_chooser_items(run_analyse):
    from headforge.backend.face import ui_face_items

    from .catalogue import group_t1

    a = run_analyse(group_t1()).analysis
    items = ui_face_items(a)
    assert [i[0] for i in items] == [str(i) for i in range(6)]
    assert "(largest)" in items[a["chosen"]][1]


@pytest.mark.parametrize("name", ["astronaut_turned_90", "face_cut_left", "face_cut_top", "sunglasses",
                                  "surgical_mask", "coffee", "group_t1"])
def test_catalogue_with_yunet(name, run_analyse):
    """The licence-clean detector gives the same outcomes (YuNet shrinks boxes of cut faces to the visible part
    and reports sideways faces with upright-looking keypoints: the keypoint box and the mesh catch both)."""
    build, expected = CASES[name]
    if "error" in expected:
        with pytest.raises(FaceError) as e:
            run_analyse(build(), detector="yunet")
        assert e.value.code == expected["error"]
        return
    a = run_analyse(build(), detector="yunet").analysis
    assert a["detector"]["name"] == "yunet" and len(a["faces"]) == expected["faces"]
    assert expected.get("warn", set()) <= {w["code"] for w in a["warnings"]}
