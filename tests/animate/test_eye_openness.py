"""The eye-openness regressor (backend/animate/eye_openness.py) against ground truth: the eye patches of two
synthetic clips of an identity the shipped model never saw (benchmarks/animate_correspondence.py's held-out
clips `held` and `held_dense`: 300 frames, 14 blinks; tests/animate/data/eye_patches_heldout.npz holds each
frame's two patches as the tracker cuts them, the true eyeBlink weights and the landmark fit's own eyeBlink).
Plus the learner re-run in tiny form, the file's round trip and its coded errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headforge.backend.animate import eye_openness as eo
from headforge.backend.animate.take import AnimationError

DATA = Path(__file__).resolve().parent / "data" / "eye_patches_heldout.npz"


@pytest.fixture(scope="module")
def clips():
    z = np.load(DATA)
    return {n: (z[f"{n}_patches"], z[f"{n}_truth"].astype(np.float64), z[f"{n}_found"],
                z[f"{n}_fit"].astype(np.float64)) for n in ("held", "held_dense")}


def test_shipped_model_finds_the_heldout_blinks(clips):
    """Measured 2026-12-07 (no smoothing): 12 of the 14 blinks found within a frame, none false, eyeBlink MAE
    0.083; the landmark fit's own eyeBlink finds none of them (MAE 0.117)."""
    model = eo.load_eye_model()
    ev = eo.evaluate(model, [c[:3] for c in clips.values()])
    fit_mae = np.mean([np.abs(t - f).mean() for _, t, _, f in clips.values()])
    fit_found = sum(eo.blink_hits(t[:, k], f[:, k])[0] for _, t, _, f in clips.values() for k in range(2))
    print(ev, "fit", fit_mae, fit_found)
    assert ev["blinks"] == 14 and fit_found == 0
    assert ev["found"] >= 11 and ev["false"] <= 1
    assert ev["mae"] < 0.095 and ev["mae"] < fit_mae - 0.02


def test_learner_in_tiny_form_and_the_file_round_trip(clips, tmp_path):
    """benchmarks/animate_eye.py's learner on one clip (held_dense, 8 blinks), its ridge chosen and scored on the
    other (held, 6 blinks): from a single clip it already finds the blinks (measured: 6 of 6, 3 false, MAE 0.123;
    the fit finds none), though its MAE is still above the fit's (0.11): the shipped model needs the 9 training
    clips. Saved and loaded, it predicts the same."""
    model, results = eo.train([clips["held_dense"][:3]], [clips["held"][:3]], ridges=(0.03, 0.3), log=lambda m: None)
    assert len(results) == 2 and model.info["ridge"] in (0.03, 0.3)
    patches, truth, found, fit = clips["held"]
    ev = eo.evaluate(model, [(patches, truth, found)])
    print(ev, [r for r in results])
    assert ev["found"] >= 5 and ev["false"] <= 5 and ev["mae"] < 0.15
    assert sum(eo.blink_hits(truth[:, k], fit[:, k])[0] for k in range(2)) == 0
    path = eo.save_eye_model(model, tmp_path / "eye.npz")
    assert path.stat().st_size < 1_000_000
    loaded = eo.load_eye_model(path)
    flat = patches[found].reshape(-1, eo.PATCH_H, eo.PATCH_W)
    np.testing.assert_allclose(loaded.predict(flat), model.predict(flat), atol=1e-4)


def test_missing_or_altered_model_is_a_coded_error(tmp_path):
    with pytest.raises(AnimationError) as e:
        eo.load_eye_model(tmp_path / "none.npz")
    assert e.value.code == "animate.eye_model_missing"
    z = dict(np.load(eo.MODEL_FILE))
    z["coef"] = z["coef"].copy()
    z["coef"][3] += 0.5  # a weight changed, the digest kept
    np.savez(tmp_path / "altered.npz", **z)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(eo.MODEL_FILE.read_bytes()[:500])
    for bad in (tmp_path / "altered.npz", truncated):
        with pytest.raises(AnimationError) as e:
            eo.load_eye_model(bad)
        assert e.value.code == "animate.eye_model_invalid"
