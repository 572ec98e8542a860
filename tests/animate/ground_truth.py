"""Ground truth for video tracking (tests and benchmarks/animate.py): the facecap capture's 52 weights and head
and eye motion drive HeadForge's ICT-FaceKit rig (average identity), Blender renders it to an MP4
(render_take.py), and a tracked take is scored against the capture."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from headforge.backend.animate.gltf_take import read_gltf_take
from headforge.backend.animate.livelink import write_livelink_csv
from headforge.backend.animate.take import Take, euler_to_matrix
from headforge.backend.headmodel.arkit import ARKIT_52

REPO = Path(__file__).resolve().parents[2]
RENDER = Path(__file__).with_name("render_take.py")
DEFAULT_FOCAL_MM = 36.0 * 0.5 / np.tan(np.radians(12.5))  # the tracker's default lens: 25° across the long side


def rig_glb(shared: Path, out: Path, identity: np.ndarray | None = None) -> Path:
    """Our rig of ICT-FaceKit Light (the average identity, or `identity` coefficients) as a .glb (kept if there)."""
    from headforge.backend.headmodel import load_ict
    from headforge.backend.rig.build import build_rig
    from headforge.backend.rig.gltf import rig_to_gltf

    if not out.is_file():
        rig = build_rig(load_ict(shared / "data/ict_facekit/ict_face_light.npz"),
                        np.zeros(1) if identity is None else np.asarray(identity, np.float64))
        out.write_bytes(b"".join(rig_to_gltf(rig, None).save_to_bytes()))
    return out


def capture_segment(shared: Path, start: int, frames: int, fps: float = 30.0) -> Take:
    """Frames [start, start + frames) of the facecap capture at `fps`, times from 0."""
    t = read_gltf_take(shared / "data/heads/facecap/facecap.glb").resample(fps)
    sl = slice(start, start + frames)
    return replace(t, times=t.times[sl] - t.times[start], weights=t.weights[sl], head=t.head[sl],
                   eye_left=t.eye_left[sl], eye_right=t.eye_right[sl], name=f"facecap_{start}_{frames}",
                   start_timecode="00:00:00:00")


def render_clip(shared: Path, work: Path, start: int, frames: int, size=(320, 240), yaw_deg: float = 0.0,
                python: str | None = None) -> tuple[Path, Take, dict]:
    """(mp4, ground-truth take, render facts) for a segment of the capture filmed from `yaw_deg`."""
    work.mkdir(parents=True, exist_ok=True)
    gt = capture_segment(shared, start, frames)
    mp4 = work / f"clip_{start}_{frames}_{size[0]}x{size[1]}_yaw{yaw_deg:+.0f}.mp4"
    facts = render_take(rig_glb(shared, work / "rig.glb"), gt, mp4, size, yaw_deg, python,
                        csv=work / f"gt_{start}_{frames}.csv")
    return mp4, gt, facts


def render_take(rig: Path, take: Take, mp4: Path, size=(320, 240), yaw_deg: float = 0.0, python: str | None = None,
                csv: Path | None = None) -> dict:
    """Blender renders `rig` (.glb) driven by `take` to `mp4`, filmed from `yaw_deg`; → the render facts
    (frames, fps, K, w2c)."""
    work = mp4.parent
    csv = write_livelink_csv(take, csv or mp4.with_suffix(".csv"))
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(work / "blender")}
    proc = subprocess.run([python or sys.executable, str(RENDER), str(rig), str(csv), str(mp4), str(take.n_frames),
                           str(size[0]), str(size[1]), str(yaw_deg), str(DEFAULT_FOCAL_MM)],
                          capture_output=True, text=True, cwd=work, env=env, timeout=3600)
    facts = [ln for ln in proc.stdout.splitlines() if ln.startswith("FACTS ")]
    if proc.returncode != 0 or not facts or not mp4.is_file():
        raise RuntimeError("render failed:\n" + proc.stdout[-2000:] + proc.stderr[-2000:])
    return json.loads(facts[-1][6:])


def blink_onsets(w: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Frames where a blink channel rises through `threshold`."""
    above = w >= threshold
    return np.flatnonzero(above[1:] & ~above[:-1]) + 1


def score(gt: Take, tracked: Take, w2c: np.ndarray | None = None, active: float = 0.1) -> dict:
    """Per-key and mean absolute weight errors over the active keys (those the capture moves above `active`),
    jawOpen/blink errors, head rotation error (degrees, relative to the camera) and blink timing."""
    n = min(gt.n_frames, tracked.n_frames)
    g, t = gt.arkit_weights()[:n], tracked.arkit_weights()[:n]
    err = np.abs(g - t).mean(axis=0)
    act = [k for k in range(52) if g[:, k].max() >= active and ARKIT_52[k] != "tongueOut"]
    out = {"frames": n, "active_keys": [ARKIT_52[k] for k in act],
           "per_key_mae": {ARKIT_52[k]: round(float(err[k]), 4) for k in act},
           "mean_mae_active": float(err[act].mean()) if act else 0.0}
    for name in ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight"):
        k = ARKIT_52.index(name)
        out[f"{name}_mae"] = float(err[k])
    # head: the capture's rotation seen from the camera vs the tracked one
    Rg = euler_to_matrix(gt.head[:n])
    if w2c is not None:
        from headforge.backend.animate.track import R_FRONT

        C = R_FRONT.T @ np.asarray(w2c)[:3, :3]  # camera relative to the frontal view
        Rg = np.einsum("ij,tjk->tik", C, Rg)
    Rt = euler_to_matrix(tracked.head[:n])
    rel = np.einsum("tji,tjk->tik", Rg, Rt)
    ang = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    out["head_rot_err_deg_mean"] = float(ang.mean())
    out["head_rot_err_deg_max"] = float(ang.max())
    # the same after removing the constant part (the mean relative rotation): what frame-to-frame motion keeps
    from scipy.spatial.transform import Rotation

    offset = Rotation.from_matrix(rel).mean().as_matrix()
    rel0 = np.einsum("tij,kj->tik", rel, offset)
    ang0 = np.degrees(np.arccos(np.clip((np.trace(rel0, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    out["head_rot_offset_deg"] = float(np.degrees(np.linalg.norm(Rotation.from_matrix(offset).as_rotvec())))
    out["head_rot_err_deg_mean_offset_removed"] = float(ang0.mean())
    # eyes: yaw/pitch relative to the head, degrees
    for side in ("eye_left", "eye_right"):
        g_e, t_e = getattr(gt, side), getattr(tracked, side)
        if g_e is not None and t_e is not None:
            out[f"{side}_err_deg_mean"] = float(np.degrees(np.abs(g_e[:n, :2] - t_e[:n, :2])).mean())
    blinks = {}
    for name in ("eyeBlinkLeft", "eyeBlinkRight"):
        k = ARKIT_52.index(name)
        on_g, on_t = blink_onsets(g[:, k]), blink_onsets(t[:, k])
        blinks[name] = {"truth": on_g.tolist(), "found": on_t.tolist(),
                        "max_offset": (max(int(np.abs(on_t - o).min()) for o in on_g) if len(on_t) else None)
                        if len(on_g) else 0}
    out["blinks"] = blinks
    return out
