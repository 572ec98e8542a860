"""Learn the video tracker's MediaPipe ↔ ICT correspondence from synthetic performances (not the facecap capture).

Writes backend/animate/data/ict_mediapipe478_video.npz, the table `track.py` fits with:
1. Synthetic takes: random ARKit expressions drawn independently of any capture (sparse: each key on in ~22 % of
   the keyframes; dense mixtures: ~50 % at more moderate strengths), blinks as 3-6 frame events, gaze with the
   eye bones turned 30° per unit of eyeLook as in ARKit captures, smooth random head yaw ±35° (±45° in two
   clips), pitch ±20°, roll ±10°, drive our rig of ICT-FaceKit Light for several identities (the average and
   random ones); Blender renders them exactly as the benchmark's ground truth is rendered
   (tests/animate/render_take.py: Workbench, the painted face, 640×480, the tracker's default lens).
2. MediaPipe's 478 points are found in every frame (track.video_landmarks, the tracker's own path).
3. Per landmark, against the known 3D surface of every frame (video_correspondence.py): the surface point that
   best explains the detections, then offsets linear in the expression weights and in how far the face is
   turned (ridge toward 0), and per-point weights from the spread of what is left.
4. The ridge and the tracker's expression prior are chosen on held-out clips of another identity (the least
   mean error there) and stored in the table.

    python benchmarks/animate_correspondence.py [--work DIR] [--frames 300] [--identities 3]

The shipped table (2026-12-06): `--frames 300`, 7 training clips (3 identities with sparse expressions, 2 with
dense mixtures, 2 with dense mixtures and head turns to ±45°: 2100 frames, ~25 min of Blender on this machine)
and 2 held-out clips (sparse, dense) of a 4th identity. The photo correspondence leaves 7.4 px rms between
MediaPipe's points and the known surfaces (train), the best surface points 5.2 px, with the expression and view
offsets (ridge 30) 3.0 px on the training clips and 3.5 px held out. The tracker on the held-out clips (mean
|error| over the active keys / jawOpen / head rotation): photo correspondence 0.156 / 0.119 / 3.86°, table
0.150 / 0.077 / 4.32° (prior 3e-4, the held-out best of 1e-4…1e-3). Checked on the facecap benchmark only
afterwards (benchmarks/animate.py).
Two more held-out clips of the 4th identity (2026-12-07) are filmed as the benchmark films the capture, the camera
moved 30° to either side and the head turning ±15° (orb_m30, orb_p30); the tracker's pose debiasing and per-key
priors (track.py) were chosen on all four. The shipped table was chosen on the first two; the same offsets
re-learned with two such camera-moved clips among the training clips (identities 1-2, 200 frames each) did worse
held out (head 3.99° → 4.16° over held/held_dense) and on the capture at +30° (1.88° → 2.36°): not adopted.
`--facs` (2026-12-07 evening) renders clips whose expressions move together as faces do (facs_take: FACS
prototypes and speech visemes, FACS_COMBOS) instead of independent random keys: facs0-2 (identities 0-2, 200
frames) and held_facs / orb_facs_m30 (the 4th identity, 150 frames, the camera in front / at −30°). Learned with
them (the table, the eye-key and brow models), nothing was better on the held-out clips (benchmarks/animate.py's
docstring), so the shipped files are unchanged; the clips serve as a further held-out set of another kind.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.animate.ground_truth
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import SHARED, use_shared_ict  # noqa: E402

SIZE = (640, 480)
# keys that the random expressions draw (eyeLook is the gaze, tongueOut is not rendered by the landmarks)
GAZE_DEG = 30.0  # eye rotation per unit of eyeLook (the facecap capture: 29.8–30.1°)


def synthetic_take(rng: np.random.Generator, frames: int, fps: float = 30.0, key_every: int = 8,
                   density: float = 0.22, max_yaw_deg: float = 35.0, expressions: str = "random"):
    """A Take of random ARKit expressions (each key on in `density` of the keyframes; `expressions` "facs":
    facs_keys' combinations instead), blinks, gaze and head motion (see the module docstring)."""
    from headforge.backend.animate.take import Take
    from headforge.backend.headmodel.arkit import ARKIT_52

    n_keys = frames // key_every + 2
    free = [k for k, n in enumerate(ARKIT_52) if not n.startswith(("eyeLook", "eyeBlink")) and n != "tongueOut"]
    K = np.zeros((n_keys, 52))
    facs = facs_keys(rng, n_keys) if expressions == "facs" else None
    for j in range(n_keys):
        if facs is not None:
            K[j] = facs[j]
        on = (rng.random(len(free)) < density) & (facs is None)
        top = 1.0 if density < 0.3 else 0.7  # dense mixtures (as captures are) at more moderate strengths
        K[j, np.array(free)[on]] = rng.uniform(0.1, top, on.sum()) ** 0.8
        # jaw left/right and mouth left/right are one motion each way: keep one of a pair
        for a, b in (("jawLeft", "jawRight"), ("mouthLeft", "mouthRight")):
            ia, ib = ARKIT_52.index(a), ARKIT_52.index(b)
            drop = ia if rng.random() < 0.5 else ib
            if facs is None:  # (facs_keys keeps one of a pair itself)
                K[j, drop] = 0.0
        # half-closed lids now and then (squints), the rest of the eye's closure comes as blinks
        for side in ("Left", "Right"):
            if rng.random() < 0.2:
                K[j, ARKIT_52.index("eyeBlink" + side)] = rng.uniform(0.1, 0.6)
        # gaze: yaw and pitch in eyeLook units, both eyes together
        gy, gp = rng.uniform(-0.7, 0.7), rng.uniform(-0.6, 0.6)
        for side, sign in (("Left", 1.0), ("Right", -1.0)):
            out_in = gy * sign  # + looks toward the subject's left: the left eye's Out, the right eye's In
            K[j, ARKIT_52.index("eyeLookOut" + side)] = max(out_in, 0.0)
            K[j, ARKIT_52.index("eyeLookIn" + side)] = max(-out_in, 0.0)
            pitch = gp
            if facs is not None:  # the combination's look down/up on top of the random gaze
                pitch = float(np.clip(gp * 0.6 + facs[j, ARKIT_52.index("eyeLookDown" + side)]
                                      - facs[j, ARKIT_52.index("eyeLookUp" + side)], -1.0, 1.0))
            K[j, ARKIT_52.index("eyeLookDown" + side)] = max(pitch, 0.0)
            K[j, ARKIT_52.index("eyeLookUp" + side)] = max(-pitch, 0.0)
    tk = np.arange(n_keys) * key_every
    t = np.arange(frames)
    W = np.stack([np.interp(t, tk, K[:, c]) for c in range(52)], 1)
    # blinks: 3-6 frame events, mostly both eyes, every ~40 frames
    f = int(rng.integers(5, 30))
    while f < frames - 6:
        d = int(rng.integers(3, 7))
        prof = np.sin(np.linspace(0, np.pi, d + 2)[1:-1]) * rng.uniform(0.75, 1.0)
        sides = ("Left", "Right") if rng.random() < 0.7 else (("Left",) if rng.random() < 0.5 else ("Right",))
        for side in sides:
            k = ARKIT_52.index("eyeBlink" + side)
            W[f:f + d, k] = np.maximum(W[f:f + d, k], prof)
        f += int(rng.integers(20, 60))
    # head: smooth random yaw, pitch, roll (keys every 15 frames, cubic-smoothed)
    hk = np.arange(frames // 15 + 2) * 15
    lim = np.radians([max_yaw_deg, 20.0, 10.0])
    H = rng.uniform(-1, 1, (len(hk), 3)) * lim
    head = np.stack([np.interp(t, hk, H[:, c]) for c in range(3)], 1)
    ker = np.hanning(9)
    ker /= ker.sum()
    head = np.stack([np.convolve(np.pad(head[:, c], 4, mode="edge"), ker, "valid") for c in range(3)], 1)
    g = np.radians(GAZE_DEG)
    A = {n: W[:, ARKIT_52.index(n)] for n in ARKIT_52}
    # eye rotations (yaw, pitch, roll): the capture's relation, yaw + toward the subject's left, pitch + down
    eye_left = np.stack([g * (A["eyeLookOutLeft"] - A["eyeLookInLeft"]),
                         g * (A["eyeLookDownLeft"] - A["eyeLookUpLeft"]), np.zeros(frames)], 1)
    eye_right = np.stack([g * (A["eyeLookInRight"] - A["eyeLookOutRight"]),
                          g * (A["eyeLookDownRight"] - A["eyeLookUpRight"]), np.zeros(frames)], 1)
    return Take(times=t / fps, names=ARKIT_52, weights=np.clip(W, 0, 1), fps=fps, head=head, eye_left=eye_left,
                eye_right=eye_right, name="synthetic")


# FACS-style combinations (Ekman's prototypes and speech visemes): {name: {ARKit key without side: weight}}; a key
# with Left/Right variants gets both (each side jittered), "one-sided" combinations one side. Used by facs_take to
# make keys move together as faces do (eyeWide with browInnerUp and eyeLookDown, mouthStretch with a fear's brows),
# which random independent keys rarely make. Written from the FACS literature, not from any capture.
FACS_COMBOS = {
    "surprise": {"browInnerUp": 0.8, "browOuterUp": 0.8, "eyeWide": 0.7, "jawOpen": 0.4},
    "fear": {"browInnerUp": 0.8, "browOuterUp": 0.4, "eyeWide": 0.8, "mouthStretch": 0.6, "jawOpen": 0.2},
    "happiness": {"mouthSmile": 0.8, "cheekSquint": 0.6, "eyeSquint": 0.4, "mouthDimple": 0.2},
    "sadness": {"browInnerUp": 0.6, "mouthFrown": 0.6, "mouthShrugLower": 0.4, "mouthPress": 0.2,
                "eyeLookDown": 0.3},
    "anger": {"browDown": 0.8, "eyeSquint": 0.5, "mouthPress": 0.5, "noseSneer": 0.3, "mouthRollLower": 0.2},
    "disgust": {"noseSneer": 0.7, "mouthUpperUp": 0.6, "mouthShrugUpper": 0.5, "browDown": 0.4, "cheekSquint": 0.3},
    "doubt": {"mouthShrugUpper": 0.5, "mouthShrugLower": 0.5, "mouthPress": 0.4, "browDown": 0.3,
              "mouthRollLower": 0.3},
    "attention_down": {"eyeLookDown": 0.5, "eyeWide": 0.5, "browInnerUp": 0.4},
    "attention_up": {"eyeLookUp": 0.5, "eyeWide": 0.4, "browOuterUp": 0.5, "browInnerUp": 0.3},
    "grimace": {"mouthStretch": 0.7, "eyeSquint": 0.5, "browDown": 0.5, "noseSneer": 0.3, "jawOpen": 0.2,
                "mouthLowerDown": 0.3},
    "viseme_aa": {"jawOpen": 0.5, "mouthLowerDown": 0.3, "mouthStretch": 0.2},
    "viseme_o": {"jawOpen": 0.3, "mouthFunnel": 0.6, "mouthPucker": 0.3},
    "viseme_u": {"mouthPucker": 0.8, "mouthFunnel": 0.3, "jawOpen": 0.1},
    "viseme_e": {"mouthStretch": 0.6, "mouthSmile": 0.2, "jawOpen": 0.15, "mouthLowerDown": 0.3, "mouthUpperUp": 0.3},
    "viseme_mbp": {"mouthPress": 0.5, "mouthRollLower": 0.3, "mouthRollUpper": 0.3, "mouthClose": 0.2},
    "viseme_fv": {"mouthRollLower": 0.6, "mouthUpperUp": 0.3, "mouthShrugUpper": 0.3},
    "puff": {"cheekPuff": 0.7, "mouthPucker": 0.2},
}
FACS_ONE_SIDED = {
    "contempt": {"mouthDimple": 0.6, "mouthSmile": 0.3, "mouth": 0.3},  # "mouth" → mouthLeft / mouthRight
    "smirk": {"mouthSmile": 0.6, "cheekSquint": 0.3, "jaw": 0.2},
    "sneer": {"noseSneer": 0.6, "mouthUpperUp": 0.5, "browDown": 0.3},
    "brow_raise": {"browOuterUp": 0.7, "eyeWide": 0.3},
}


def facs_keys(rng: np.random.Generator, n_keys: int) -> np.ndarray:
    """(n_keys, 52) keyframes: each one or two FACS_COMBOS / FACS_ONE_SIDED at random strengths (0.3-1.2 of the
    listed weight, each key jittered ×0.7-1.2, the sides ×0.8-1.0 apart), sometimes a neutral rest, plus a few
    weak independent keys so every key still moves on its own now and then."""
    from headforge.backend.headmodel.arkit import ARKIT_52

    idx = {n: k for k, n in enumerate(ARKIT_52)}
    both, one = list(FACS_COMBOS), list(FACS_ONE_SIDED)
    free = [k for k, n in enumerate(ARKIT_52) if not n.startswith(("eyeLook", "eyeBlink")) and n != "tongueOut"]
    K = np.zeros((n_keys, 52))
    for j in range(n_keys):
        if rng.random() < 0.12:
            continue  # a rest
        for _ in range(1 if rng.random() < 0.6 else 2):
            sided = rng.random() < 0.2
            name = one[rng.integers(len(one))] if sided else both[rng.integers(len(both))]
            combo = (FACS_ONE_SIDED if sided else FACS_COMBOS)[name]
            gain = rng.uniform(0.3, 1.2)
            side = "Left" if rng.random() < 0.5 else "Right"
            for key, w in combo.items():
                v = w * gain * rng.uniform(0.7, 1.2)
                if key in idx:
                    K[j, idx[key]] = max(K[j, idx[key]], v)
                    continue
                sides = (side,) if sided else ("Left", "Right")
                for s in sides:
                    k = idx[key + s]
                    K[j, k] = max(K[j, k], v * (1.0 if sided else rng.uniform(0.8, 1.0)))
        on = rng.random(len(free)) < 0.05
        K[j, np.array(free)[on]] = np.maximum(K[j, np.array(free)[on]], rng.uniform(0.05, 0.4, on.sum()))
        for a, b in (("jawLeft", "jawRight"), ("mouthLeft", "mouthRight")):
            if K[j, idx[a]] > 0 and K[j, idx[b]] > 0:
                K[j, idx[a] if rng.random() < 0.5 else idx[b]] = 0.0
    return np.clip(K, 0.0, 1.0)


def facs_precision(model, n: int = 20000, seed: int = 0, ridge: float = 0.01) -> np.ndarray:
    """(E, E): the inverse of the second moment of `n` facs_keys expressions in the model's components (+ `ridge`
    I), scaled to trace E: the tracker's coupled expression prior (track.FACS_PRIOR_BETA), where keys that faces
    move together cost less together than apart. Written by `--facs-prior` to track.FACS_PRIOR_FILE."""
    from headforge.backend.headmodel.arkit import arkit_to_ict_weights

    X = arkit_to_ict_weights(facs_keys(np.random.default_rng(seed), n), model.expression_names)  # (n, E)
    P = np.linalg.inv(X.T @ X / n + ridge * np.eye(X.shape[1]))
    return P * (len(P) / np.trace(P))


def facs_take(rng: np.random.Generator, frames: int, fps: float = 30.0, key_every: int = 8,
              max_yaw_deg: float = 35.0):
    """synthetic_take's blinks, squints, gaze and head motion under facs_keys' expressions: the gaze keys a
    combination sets (eyeLookDown/Up) added to the random gaze."""
    return synthetic_take(rng, frames, fps, key_every, max_yaw_deg=max_yaw_deg, expressions="facs")


def make_clip(work: Path, name: str, identity: np.ndarray, seed: int, frames: int, density: float = 0.22,
              max_yaw_deg: float = 35.0, camera_yaw_deg: float = 0.0, expressions: str = "random") -> Path:
    """Render one synthetic clip (the camera in front, or moved round the head by `camera_yaw_deg` as the
    benchmark's ±30° views are) and find its landmarks; → a pickle with everything learn_table needs."""
    from headforge.backend.animate.track import video_landmarks
    from tests.animate.ground_truth import render_take, rig_glb

    work.mkdir(parents=True, exist_ok=True)
    out = work / f"{name}.pkl"
    if out.is_file():
        return out
    take = synthetic_take(np.random.default_rng(seed), frames, density=density, max_yaw_deg=max_yaw_deg,
                          expressions=expressions)
    rig = rig_glb(SHARED, work / f"rig_{name}.glb", identity)
    t0 = time.perf_counter()
    facts = render_take(rig, take, work / f"{name}.mp4", SIZE, camera_yaw_deg)
    t1 = time.perf_counter()
    times, marks, info = video_landmarks(work / f"{name}.mp4")
    print(f"{name}: rendered {frames} frames in {t1 - t0:.0f} s, landmarks {time.perf_counter() - t1:.0f} s, "
          f"faces in {sum(m is not None for m in marks)} frames", flush=True)
    with open(out, "wb") as fh:
        pickle.dump({"take": take, "identity": np.asarray(identity), "facts": facts, "marks": marks,
                     "times": times, "info": info}, fh)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "hf-anim-corr"))
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--identities", type=int, default=3)
    ap.add_argument("--only-render", action="store_true")
    ap.add_argument("--facs", action="store_true",
                    help="only render the FACS-style clips (facs_take) into --work: facs0-2 (identities 0-2, 200 "
                         "frames) to train on, held_facs and orb_facs_m30 (the held-out identity) to choose on")
    ap.add_argument("--facs-prior", action="store_true",
                    help="only write the tracker's coupled expression prior (facs_precision) and stop")
    args = ap.parse_args(argv)
    use_shared_ict()
    os.environ.setdefault("GLOG_minloglevel", "2")
    if args.facs_prior:
        from headforge.backend.animate.model_file import save_model_file
        from headforge.backend.animate.track import FACS_PRIOR_FILE
        from headforge.backend.headmodel import load_ict

        model = load_ict()
        save_model_file(FACS_PRIOR_FILE, {"precision": facs_precision(model)},
                        {"names": np.array(model.expression_names)}, {"source": "facs_precision(n=20000, seed=0)"})
        print(f"wrote {FACS_PRIOR_FILE}")
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(17)
    n_id = 40
    ids = [np.zeros(n_id)] + [rng.standard_normal(n_id) * 0.8 for _ in range(args.identities)]
    if args.facs:
        for k in range(3):
            make_clip(work, f"facs{k}", ids[k], 400 + k, 200, expressions="facs")
        make_clip(work, "held_facs", ids[-1], 990, 150, expressions="facs")
        make_clip(work, "orb_facs_m30", ids[-1], 991, 150, max_yaw_deg=15.0, camera_yaw_deg=-30.0, expressions="facs")
        return 0
    # sparse expressions (one or two keys at a time) and dense mixtures, each on other identities
    train = [make_clip(work, f"train{k}", ids[k], 100 + k, args.frames) for k in range(args.identities)]
    train += [make_clip(work, f"dense{k}", ids[k + 1], 200 + k, args.frames, density=0.5)
              for k in range(args.identities - 1)]
    # and wider head turns (±45°): a camera 30° to the side of a head that itself turns passes 35°
    train += [make_clip(work, f"wide{k}", ids[2 * k], 300 + k, args.frames, density=0.35, max_yaw_deg=45.0)
              for k in range(2)]
    held = [make_clip(work, "held", ids[-1], 999, args.frames // 2),
            make_clip(work, "held_dense", ids[-1], 998, args.frames // 2, density=0.5)]
    # filmed as the benchmark films the capture: the camera 30° to either side, the head turning less (±15°)
    held += [make_clip(work, f"orb_{'m' if yaw < 0 else 'p'}30", ids[-1], seed, args.frames // 2, density=0.35,
                       max_yaw_deg=15.0, camera_yaw_deg=yaw) for seed, yaw in ((997, -30.0), (996, 30.0))]
    if args.only_render:
        return 0
    learn(train, held, log=print)
    return 0


def load_sample(model, path: Path):
    """(video_correspondence.Sample, the synthetic Take, facts, pickle dict) of a clip made by make_clip."""
    from headforge.backend.animate.take import euler_to_matrix
    from headforge.backend.animate.video_correspondence import Sample
    from headforge.backend.headmodel.arkit import arkit_to_ict_weights
    from headforge.backend.rig.build import build_rig

    with open(path, "rb") as fh:
        d = pickle.load(fh)
    take, facts = d["take"], d["facts"]
    A = take.arkit_weights()
    E = arkit_to_ict_weights(A, model.expression_names)
    pivot = build_rig(model, d["identity"]).joints[2]  # the head bone turns the face about its joint
    w2c = np.asarray(facts["w2c"])
    Rh = euler_to_matrix(take.head)
    R = np.einsum("ij,tjk->tik", w2c[:3, :3], Rh)
    t = (pivot - np.einsum("tij,j->ti", Rh, pivot)) @ w2c[:3, :3].T + w2c[:3, 3]
    marks = np.full((len(A), 478, 2), np.nan)
    for i, m in enumerate(d["marks"][: len(A)]):
        if m is not None:
            marks[i] = m[:, :2]
    s = Sample(R=R, t=t, expression=E, identity=np.asarray(d["identity"], np.float64), K=np.asarray(facts["K"]),
               marks=marks)
    return s, take, facts, d


def training_iod(samples) -> float:
    """The smallest inter-ocular distance (px, 1st percentile) of the training faces: the table is used on faces
    at least about this size (track.fit_landmarks)."""
    from headforge.backend.fitting.photo import MP_EYES

    iod = np.concatenate([np.linalg.norm(s.marks[:, list(MP_EYES[0])].mean(1) - s.marks[:, list(MP_EYES[1])].mean(1),
                                         axis=-1) for s in samples])
    return float(np.nanpercentile(iod, 1))


def learn(train, held, log=print, ridges=(30.0, 100.0), priors=(1e-4, 3e-4, 1e-3), out=None):
    """Learn the table from the `train` clips; choose the ridge and the prior on the `held` clips (the least mean
    active-key error over them); write it."""
    from headforge.backend.animate import video_correspondence as vc
    from headforge.backend.animate.track import fit_landmarks
    from headforge.backend.fitting.correspondence import load_mediapipe_correspondence
    from headforge.backend.headmodel import load_ict
    from tests.animate.ground_truth import score

    model = load_ict()
    S = [load_sample(model, p)[0] for p in train]
    H = [load_sample(model, p) for p in held]
    hs = [h[0] for h in H]
    tri0, bary0 = load_mediapipe_correspondence(model)
    log(f"photo correspondence: rms {vc.reprojection_rms(model, S, tri0, bary0):.2f} px (train), "
        f"{vc.reprojection_rms(model, hs, tri0, bary0):.2f} px (held out)")
    tri, bary = vc.fit_surface_points(model, S, tri0, bary0, log=log)
    log(f"surface points: rms {vc.reprojection_rms(model, S, tri, bary):.2f} px (train), "
        f"{vc.reprojection_rms(model, hs, tri, bary):.2f} px (held out)")

    def track(table):  # the scores averaged over the held-out clips
        out = []
        for _, htake, hfacts, hd in H:
            take = fit_landmarks(hd["times"], hd["marks"], hd["info"], model=model, smoothing=0.0,
                                 correspondence=table)
            out.append(score(htake, take, np.asarray(hfacts["w2c"])))
        return {k: float(np.mean([o[k] for o in out])) for k in ("mean_mae_active", "jawOpen_mae", "eyeBlinkLeft_mae",
                                                                 "eyeBlinkRight_mae", "head_rot_err_deg_mean")}

    results = []
    E = model.n_expression
    zero = (np.zeros((478, 3)), np.zeros((E, 478, 3)), np.zeros((3, 478, 3)))
    for ridge in (None,) + tuple(ridges):
        offset, delta, view = zero if ridge is None else vc.fit_offsets(model, S, tri, bary, ridge=ridge, log=log)
        rms = vc.reprojection_rms(model, hs, tri, bary, offset, delta, view)
        weights = vc.residual_weights(model, S, tri, bary, offset, delta, view)
        for prior in priors:
            table = vc.VideoCorrespondence(tri, bary, offset, delta, prior, {}, view, weights)
            sc = track(table)
            results.append((sc["mean_mae_active"], ridge, prior, offset, delta, view, weights))
            log(f"ridge {ridge} prior {prior:g}: held-out rms {rms:.2f} px, mean |error| {sc['mean_mae_active']:.3f} "
                f"jawOpen {sc['jawOpen_mae']:.3f} blinks {sc['eyeBlinkLeft_mae']:.3f}/{sc['eyeBlinkRight_mae']:.3f} "
                f"head {sc['head_rot_err_deg_mean']:.2f}°")
    for prior in priors:
        sc = track(vc.VideoCorrespondence(tri0, bary0, *zero[:2], prior, {}))
        log(f"photo correspondence, prior {prior:g}: mean |error| {sc['mean_mae_active']:.3f} "
            f"jawOpen {sc['jawOpen_mae']:.3f} blinks {sc['eyeBlinkLeft_mae']:.3f}/{sc['eyeBlinkRight_mae']:.3f} "
            f"head {sc['head_rot_err_deg_mean']:.2f}°")
    best = min(results, key=lambda r: r[0])
    log(f"chosen: ridge {best[1]} prior {best[2]:g} (held-out mean |error| {best[0]:.3f})")
    out = Path(out or vc.TABLE_FILE)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, tri=tri, bary=bary.astype(np.float32), offset=best[3].astype(np.float32),
                        delta=best[4].astype(np.float32), view=best[5].astype(np.float32),
                        weights=best[6].astype(np.float32), expression_prior=best[2],
                        info_ridge=-1.0 if best[1] is None else best[1], info_heldout_mae=best[0],
                        info_frames=sum(len(s.R) for s in S), info_iod_px_min=training_iod(S))
    log(f"wrote {out}")
    return best


if __name__ == "__main__":
    sys.exit(main())
