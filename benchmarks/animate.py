"""Video → ARKit benchmark: the facecap capture (52 weights, head and eye motion) drives HeadForge's ICT rig,
Blender renders it (Workbench, the rig's vertex colours) from the front and ±30° yaw, `track_video` recovers
the take. Prints per-key and mean absolute error over the active keys, jawOpen and blink errors, head rotation
error (relative to each camera), blink timing and processing speed; `--json` writes them too.

    python benchmarks/animate.py [--size 640x480] [--smoothing 0.5] [--json out.json]
Issue 17's goals: mean ≤ 0.08, jawOpen and blinks ≤ 0.10, head ≤ 2°, every blink ± 1 frame, 30 fps at 640×480.

Now (2026-12-07, session 33: the expression re-solved under the FACS-shaped prior, chosen on held-out stretches of
the capture; the section at the end): mean over the active keys 0.123 / 0.132 / 0.140 (goal 0.08: missed), jawOpen
0.098 / 0.083 / 0.086, head 1.78° / 1.81° / 2.43°, the blink found on its frame in all three views.
Measured 2026-12-07 (640×480, smoothing 0.5; front / +30° / −30°). "photo": the photo fit's correspondence
(`--correspondence photo`); "table": the correspondence learned from synthetic performances (2026-12-06; the
default for faces ≥ 60 px between the eyes; benchmarks/animate_correspondence.py); "now": the table with the pose
freed of the expression prior's pull and jawOpen/mouthClose's prior × 0.1 (track.py; chosen on the held-out
synthetic clips, see below; per-key tables of all three in animate_per_key.txt):
                         photo                 table                 now
  mean over active keys  0.167 / 0.164 / 0.187 0.161 / 0.158 / 0.167 0.163 / 0.160 / 0.168  (goal 0.08: missed)
  jawOpen                0.124 / 0.046 / 0.068 0.105 / 0.066 / 0.111 0.086 / 0.056 / 0.097  (goal 0.10: met)
  eyeBlinkLeft           0.092 / 0.164 / 0.195 0.091 / 0.150 / 0.185 0.087 / 0.152 / 0.178  (goal 0.10: ±30° missed)
  eyeBlinkRight          0.034 / 0.064 / 0.039 0.019 / 0.022 / 0.037 0.030 / 0.066 / 0.042
  head rotation          2.65° / 2.30° / 7.93° 1.94° / 1.78° / 2.86° 1.82° / 1.88° / 2.62°  (goal 2°: −30° missed)
  its constant part      2.01° / 1.85° / 7.74° 1.05° / 1.12° / 2.55° 0.80° / 1.38° / 2.16°
  the capture's one blink             not found in any view (tracked eyeBlinkLeft peaks at ~0.3, truth 0.86)
With the blinks read from the eyes' pixels (the default since 2026-12-07 pm; "now" otherwise unchanged, so
jawOpen and the head as above):
  mean over active keys  0.163 / 0.157 / 0.165  eyeBlinkLeft 0.051 / 0.077 / 0.062 (goal 0.10: met)
  eyeBlinkRight          0.052 / 0.036 / 0.028  the capture's blink found in all three views, on its frame
                         ±1 (onset 193), no false blink; the regressor costs 0.4 ms a frame
  speed per frame (decode + landmarks + fit), now: 73-75 fps wall-clock at load ~3.5, 63-73 fps from its CPU time
      (the fit ~9 ms a frame on one core: the debiased pose costs a second solve; the table alone ~5 ms).
With the gaze/lid keys and the brows read from the pixels too (the default since 2026-12-07 late; eye_keys.py,
brow_keys.py, below; jawOpen, the blinks and the head as above):
  mean over active keys  0.147 / 0.149 / 0.159  (was 0.163 / 0.157 / 0.165; the other two segments 0.117 / 0.234 →
                         0.109 / 0.201); eyeLookDown L/R 0.32 / 0.32 / 0.22-0.34 → 0.13 / 0.20-0.21 / 0.13-0.19,
                         eyeWide 0.37-0.43 → 0.32-0.44, browInnerUp 0.34 / 0.26 / 0.21 → 0.21 / 0.20 / 0.25
  speed: the two models cost 0.5 ms a frame (eye keys 0.29, brows 0.19, measured alone); the benchmark at load
      3.7-4.8 (two other agents on the 2 cores) 35-64 fps wall-clock per frame, 44-65 fps from its CPU time.
The table against the photo correspondence (keys from animate_per_key.txt): mouthShrugLower 0.44 → 0.17-0.20, mouthPress
0.15-0.31 → 0.07-0.18, eyeLookDown 0.33-0.38 → 0.21-0.33, the −30° yaw bias 7.7° → 2.5°; worse: mouthStretchLeft
0.17-0.41 → 0.40-0.48, mouthShrugUpper 0.07-0.14 → 0.29-0.35, jawOpen at ±30° (the table reads the jaw low there).
On the synthetic held-out clips themselves the table gains little (mean 0.156 → 0.150, jawOpen 0.119 → 0.077,
head 3.86° → 4.32° at turns to ±35°): most of MediaPipe's remaining error on these renders (3.5 px rms per point
after the table, 5.2 px with the best single surface points) changes from frame to frame and is not a function
of pose and expression. At 320×240 (a
~45 px face) the table did worse than the photo correspondence (mean 0.225 vs 0.208, head 2.30° vs 2.16°), so the
tracker uses it only from 0.8× the smallest training face (75 px between the eyes).
The two other segments (capture frames 0–79 front, 240–334 from +15°), photo → table → now: mean 0.120 / 0.247 →
0.117 / 0.242 → 0.117 / 0.234, jawOpen 0.095 / 0.163 → 0.072 / 0.146 → 0.063 / 0.088, head 2.54° / 4.57° → 0.90° /
3.36° → 0.96° / 2.60°.
Earlier findings (with the photo correspondence), still true unless noted:
Where the error comes from (measured on the landmarks of these five clips, cached):
  - mostly gain, not direction: the tracked keys follow the capture but at a fraction of its amplitude, e.g.
    front browInnerUp r = 0.97 with std 0.11 against 0.41, browOuterUpRight r = 0.97 std 0.17 vs 0.42,
    eyeWideLeft r = 0.92 std 0.06 vs 0.45, mouthRight (+15°) r = 0.99 at half the amplitude. Not MediaPipe's
    doing: its points move with the model's correspondence points (projected from the true weights and pose)
    at a median gain of 0.98 (brows 0.9–1.2, lips and lower lid ~1.0). The exceptions: the upper-lid contour
    384–388 (gain 0.12: the correspondence is on the eyeball) and the inner upper lip 13, which the
    correspondence puts on the lower lip (it falls with the jaw in the model, 34 px std, and not in the video:
    mean offset 29 px). It is the fit's prior that shrinks the weak keys: on exact landmarks the tracker's prior
    (1e-4) alone costs browInnerUp 0.29 and eyeWide 0.46, while on MediaPipe's the systematic offsets (brows
    3–6 px, the face oval 3–7 px) make a weaker prior worse overall. A Cauchy loss (scale 0.02 / 0.05 IOD), the
    inner-lip points from renders with the mouth open, or the whole correspondence from such renders did not
    lower the five-clip mean (0.176–0.187);
  - not the identity: the true identity (zeros) given to the fit changes the mean by < 0.01;
  - not the solver or its regulariser: the same fit on landmarks synthesised from the true weights at the
    correspondence points gets 0.11 (prior 1e-4) and 0.028 (prior 1e-6); on the real landmarks priors 1e-6…1e-3,
    an L1 term, 20…80 identity components, One-Euro 0…1 all land at 0.176–0.21 (averaged over the 5 clips);
  - eyeWide and eyeLookDown move the same upper-lid points in opposite directions: even exact landmarks
    (tests/animate/test_track.py::test_fit_recovers_the_capture_from_exact_landmarks) give ~0 + ~0.2 for the
    capture's 0.5 + 0.4. ARKit's look keys are the eye rotation (30° per unit in this capture) and the
    iris-based gaze is 8–20° off (its pitch reads ~0 where the capture looks 11° down); fixing the look keys at
    their true values lowers the five-clip mean only from 0.177 to 0.152 (eyeWide stays ~0.35);
  - the blink: the upper-lid contour (157–161, 384–388) sits on the eyeball (sclera), which the blink does not
    move; moved onto the lid's skin edge the fit still holds the lid open at the blink frame, because MediaPipe's
    upper-lid crease points (257–260, 286) stay put while the model's lid skin there travels with the blink
    (cost breakdown at frame 113). Weighting the eye contour ×10 finds the front blink at frame 113 exactly but
    not the ±30° ones, and raises the blink error; not adopted.
  - a MediaPipe response basis learned from our own renders (each shape at 0.6, the detected shift lifted to 3D)
    in place of the surface basis: jawOpen 0.056 / 0.030 / 0.123, eyeBlinkLeft 0.059 / 0.114 / 0.063, but the
    mean worse (0.182 / 0.194 / 0.191: brows and eyeWide do not show on the plain renders); not adopted.
  - head rotation at −30°: a constant 7.6° about the vertical axis that +30° does not have (0.7°); not the
    identity, nor the face-oval weight (0 … 1: 7.1° … 8.5°); cause not found (for the table's 2.5° see below).
Tried 2026-12-07 on top of the learned table, each chosen on the synthetic held-out clips and only then scored on
the capture (front / +30° / −30°, mean over the active keys; the table alone 0.161 / 0.158 / 0.167, held out 0.151):
  - MediaPipe's leftover error is low-rank (on the 2,100 synthetic frames, at the true weights and pose: 20 modes
    hold 87 % of it, 40 modes 96 %), so the fit was run as generalised least squares with that noise model (20 or
    40 modes plus a diagonal) instead of per-point weights: held out 0.151-0.196, capture 0.148-0.232 for priors
    1-1000. No gain: the expression shapes the capture moves lie in the same directions as the detector's noise;
  - a per-key gain and offset (or a 52×52 map) from the tracked to the true weights, learned on the synthetic
    clips: on the capture 0.146 / 0.144 / 0.152 and jawOpen 0.036 / 0.071 / 0.045, but held out 0.158 (worse);
    keeping only the keys it helps held out leaves the capture at 0.159 / 0.156 / 0.166. Not adopted;
  - the capture's missed blink is plain in the pixels: the grey-level spread (std / mean) in a disc of 0.12 IOD
    around MediaPipe's left iris centre falls to 0.41-0.58 of its take median on exactly the blink frames
    (113-117 front, 43-47 at +30°) and stays above 0.75 elsewhere. On the synthetic clips, though, the same measure of
    open eyes under squint, wide and gaze spans 0.5-1.5 of the median (5th-95th percentile), overlapping the
    closed eyes (0.26-0.99), so a threshold that would find the capture's blink cannot be chosen without the
    capture itself. As a dip against its own ±7-frame median (< 0.7) it finds 82 of the 117 synthetic blinks
    (±1 frame) with 132 false ones; also requiring the fit's blink to rise 0.03-0.08 above its median: 56-66
    of 103 training blinks with 20-45 false, and the capture's blink found in one or two of the three views.
    No linear mix of these cues with the fit's eye keys (ridge, training clips) finds more than 99 of 338
    closed training frames. Not adopted;
  - MediaPipe's points carried frame to frame by optical flow (pyramidal Lucas-Kanade, forward-backward checked)
    and pulled toward each frame's detection by 0.15-0.3 (a complementary filter): held out 0.150-0.155, capture
    0.148-0.162 / 0.152-0.158 / 0.159-0.168 for priors 1e-4 and 3e-4, the blink still not found. Not adopted.
The blinks from the eyes' pixels (2026-12-07 pm; backend/animate/eye_openness.py, learned by
benchmarks/animate_eye.py). Each eye's patch (32×24, cut along MediaPipe's two corners, the right eye mirrored
onto the left's layout, height from the wider eye, brightness and contrast normalised), HOG + the patch at half
size (516 features), a ridge regression to the eye's eyeBlink weight, trained on the 9 training clips of
animate_correspondence.py (5,000 eyes, 3 identities: sparse, dense, ±45° turns, two with the camera at ±30°),
the ridge (0.01) chosen on its 4 held-out clips (held, held_dense, orb_m30, orb_p30: a 4th identity, 30 blinks).
It replaces the fit's eyeBlink (blending with it was worse held out: mean of the two 0.116 MAE, 5 of 30 blinks)
on faces whose eyes are at least 0.8× the training eyes' smallest (15 px); the eyeBlink channels' One-Euro speed
gain is 16 (the blink channels' 4 shifted 3-frame blinks: 14 → 18 of 30 found at smoothing 0.5).
  held out, smoothing 0.5, fit's blinks → pixels: blinks found (±1 frame) 0 → 19 of 30, false 0 → 1, eyeBlink
  MAE L/R 0.145 / 0.130 → 0.105 / 0.093, mean over active keys 0.1473 → 0.1457 (no smoothing: 20 of 30, 1 false,
  0.105 / 0.093). Per clip: held 4/6, held_dense 8/8, the camera moved ±30° (the head turned 15-45° from it)
  5/11 and 3/5: what is still missed are blinks of the far eye of a strongly turned face and blinks on top of a
  half-closed (squinting) lid, read at 0.3-0.45.
  fresh clips (8 more identities, 240 frames each, camera at 0°, ±15°, ±30°, rendered by animate_correspondence's
  make_clip after the model was chosen; 98 blinks), smoothing 0.5, fit → pixels: found 0 → 54 of 98, false 0 →
  28 (19 of them where the lid is partly closed, truth ≥ 0.3 within 2 frames: a squint read past 0.5), eyeBlink
  MAE 0.132 / 0.131 → 0.125 / 0.112, mean over active keys 0.1564 → 0.1559. Trained with 4 of them too (3 → 7
  identities), held out on the other 4: no better (26 of 50 found, 20 false, MAE 0.132 against 27, 17 and 0.119).
  the capture (scored only after the choice): above. It shares the renderer, the rig and its painted texture with
  the training clips (the capture's identity, the average, is one of the 3 training identities), so these figures
  say the regressor reads this renderer's eyes, not that it reads a real person's: on real video the lids'
  texture, lashes, lighting and camera noise differ, and nothing here measures that. The fit's eyeBlink is kept
  for small faces; a real-video check needs footage with labelled blinks. Real photos of open eyes (still videos)
  show the risk: insightface's group photo's faces read 1.00 / 0.67, 0.38 / 0.02, 0.74 / 0.86 (laughing, eyes
  narrowed), 0.55 / 0.52 (looking down), 0.26 / 0.27; the astronaut 0.00 / 0.00. So a take whose regressor median
  over the take passes 0.25 for either eye keeps the fit's eyeBlink, with a warning (track.PIXEL_BLINK_MEDIAN_MAX;
  the synthetic clips' medians are 0.00-0.03; tests/animate/test_track.py::test_eyes_unlike_the_eye_models_...).
  not adopted (held out, blinks found / false / MAE, against 18 / 2 / 0.102 for the same ridge without the
  wider-eye height): a small MLP (16-32 tanh units, L-BFGS) 14-16 / 2-4 / 0.098-0.101; the landmarks' lid gaps and
  the two eyes' width ratio as extra features 16-17 / 0 / 0.101; larger patches (48×32, span 1.6-2.0) or finer
  HOG (4×3 cells) 12-20 / 2-8 / 0.102-0.109; a calibration of the output learned out of fold 17-18 / 1-5 /
  0.102-0.105; a second stage on the neighbouring frames, the take's running median and the fit's eyeBlink 18-19
  / 1-2 / 0.094-0.096 (no more blinks found; another learned step); training patches jittered (corners ±3-5 % of the
  eye, gamma 0.7-1.4, blur) 14-16 / 1-3 / 0.099-0.104; 4 more training clips of new identities (camera 0°, ±15°,
  ±30°) with the wider-eye height 16-17 / 3-4 / 0.098 (kept as fresh test clips instead).
  Nor the pixels' estimate as a target for the fit's eyeBlink (weights 1e-3 … 1e-1 against the prior's 3e-4):
  held out the other keys and the head do not move (mean 0.1456, head 4.65° → 4.67°).
The gaze, lids and brows from the pixels (2026-12-07 late). The landmark fit confounds eyeWide and eyeLookDown
(they move the same upper-lid points in opposite directions) and tracks the look keys and the brows at a fraction
of their amplitude; the iris's place in the eye, the sclera above it and the brows' folds are in the pixels.
  - eye_keys.py (learned by benchmarks/animate_eye_keys.py on the 9 training clips of animate_eye.py, chosen on its
    4 held-out clips, the 8 fresh clips only scored, then the capture): each eye's patch as eye_openness cuts it
    (HOG + half-size pixels) and its MediaPipe contour and iris centre in the patch's frame, followed by the other
    eye's (the eyes move together), a ridge (0.1 chosen of 0.1-1) to eyeWide, eyeLookDown/Up/In/Out, eyeSquint;
    the exclusive pairs (Down/Up, In/Out) netted; per key the pixels' share of the tracker's value chosen held out
    from 0, ½, 1: eyeWide ½, eyeLookDown ½, Up/In/Out 1, eyeSquint 0 (the pixels did not help it). Per key, mean
    over both eyes, smoothing 0.5, fit → model: held out eyeWide 0.171 → 0.158, eyeLookDown 0.115 → 0.075, Up
    0.164 → 0.128, In 0.159 → 0.091, Out 0.163 → 0.091; fresh 0.187 → 0.177, 0.124 → 0.089, 0.140 → 0.072,
    0.162 → 0.100, 0.169 → 0.100. Mean over the active keys held out 0.1457 → 0.1367, fresh 0.1559 → 0.1462,
    capture 0.163 / 0.157 / 0.165 → 0.151 / 0.151 / 0.158. Without the pairs netted (chosen against on held
    out: look keys 0.0996 vs 0.0988) the capture, whose eyes barely turn sideways, read In/Out 0.10-0.21 where
    the fit has 0.01-0.08. Not adopted: the contour alone (held out mean 0.1444-0.1452), the fit's own eye keys
    as extra features (0.1406-0.1419 with one eye's patch, no better than without), quadratic terms of the iris
    and lid heights (0.1383-0.1390 against 0.1384), a nonlinear ridge (random Fourier features of the first
    60-120 principal components: 0.1371-0.1394 against 0.1373 for the same features, linear). eyeWide is still
    the worst eye key on the capture (0.32-0.44: the capture holds it at ~0.5 together with eyeLookDown 0.4, a mix
    the random training expressions rarely make; a linear model reads it at ~½ of its amplitude).
  - brow_keys.py (benchmarks/animate_brow_keys.py, the same clips and choice): one 64×24 patch over both brows in
    the frame of the outer eye corners (so the brows' own rise is not normalised away), HOG + half-size pixels,
    ridge 0.1, each patch also mirrored (left and right keys swapped) in training and averaged in use; blends
    browInnerUp ½, browOuterUpLeft ½, browDownLeft ½, the right-side keys 0 (not helped held out). Held out
    browInnerUp 0.177 → 0.149, browOuterUpLeft 0.148 → 0.135, browDownLeft 0.162 → 0.161; fresh 0.170 → 0.144,
    0.151 → 0.142, 0.162 → 0.151; mean over the active keys held out 0.1457 → 0.1449, fresh 0.1559 → 0.1549.
    On the capture browInnerUp 0.34 / 0.26 / 0.21 → 0.21 / 0.20 / 0.25: worse at −30°, where the eye-corner
    frame is foreshortened by the turn.
  - both, as shipped: held out 0.1457 → 0.1359, fresh 0.1559 → 0.1453 (every one of the 12 clips lower), capture
    as at the top. The head is not touched (the models only replace weights after the fit).
  - the eyes' rotations (2026-12-07, late): with the gaze keys from the pixels, the eye bones' yaw/pitch come from
    those look keys at 30° per unit (track.LOOK_DEG_PER_UNIT, the capture's own relation, rms 0.04°) instead of
    the fit's iris gaze, which was 9-19° off in yaw and 11-21° in pitch on these renders
    (benchmarks/animate_journey.py). The turned-head test (capture frames 165-204 at −30°): mean |yaw|, |pitch|
    error left / right 19.6° / 11.4° → 4.0° / 4.3°. Faces whose eyes gate the models off keep the fit's gaze.
  - the mouth, not adopted: a ridge from MediaPipe's lip, brow and nose points in the eye-corner frame (with or
    without the fit's 52 values and the head's turn) to 17 mouth and brow keys, per-key blend chosen held out:
    held out 0.1457 → 0.1430, fresh 0.1559 → 0.1556 (mouthPressRight 0.137 → 0.170 there); a mouth patch (48×32
    below the eyes in the same frame, HOG + pixels) with the brow patch: held out 0.1438-0.1441, fresh
    0.1548-0.1553, its blends picked single-side mouth keys (mouthStretchLeft, mouthFrownLeft) — the held-out
    clips too few to choose 17 keys' blends on; the mouth patch alone, mirrored as the brows' (16 mouth keys, ridge
    0.1 / 1): held out 0.1442 / 0.1439, fresh 0.1555 / 0.1560 (mouthFrown L/R 0.171 / 0.194 → 0.159 / 0.182 fresh,
    but mouthPressRight 0.137 → 0.149-0.165). mouthStretch and mouthShrugUpper (the capture's worst: the fit reads
    them at ~0.1 where the capture holds 0.35-0.5) were not helped by any of these held out, so they stay the
    fit's.
  - the mouth from its own patch, not adopted (2026-12-07 night; the model, its learner and test were not kept
    in the tree after the second training below): a 48×56 patch over the mouth and chin (0.95 × 1.1 eye
    spans, scaled across by the eye span and down by the geometric mean of the eye span and the nose tip's
    height), HOG + half-size pixels, MediaPipe's 40 lip points and the chin in that frame and the fit's own 28
    mouth/jaw values, a ridge to those 28 keys, mirrored as the brows', the estimate less a floor rescaled (the
    keys are mostly 0), one blend (0, ½, 1) per left/right pair, a key taking the pixels only for a held-out gain
    ≥ 0.001. Held out below: the 4th identity's clips of animate_correspondence.py (held, held_dense, orb_m30 (gated
    off by the eye model: unchanged), orb_p30) and its 2 FACS-style clips (held_facs, orb_facs_m30: keys moved
    together, as the capture's); mean over the active keys, smoothing 0.5, the fit alone → with the model.
    1. trained on the 7 random-expression clips (3 identities; each key moves on its own), chosen (ridge 0.1,
       floor 0.2) on the 4 clips: those 0.1379 → 0.1331 (held 0.1095 → 0.1040, held_dense 0.160 → 0.148,
       orb_p30 0.1385 → 0.1373), held_facs 0.0714 → 0.0691, orb_facs_m30 0.0763 → 0.0803 (worse).
    2. the 3 training identities' FACS clips (facs0-2) added to the training set, chosen (ridge 0.3 of 0.03-0.3,
       floor 0.2 of 0-0.3; blend 1 for jawForward/Left/Right, mouthPucker, mouthLeft/Right, mouthFrown,
       mouthDimple, mouthStretch, mouthRoll*, mouthShrug*, mouthPress, mouthLowerDown, cheekPuff, ½ mouthUpperUp,
       0 jawOpen, mouthClose, mouthFunnel, mouthSmile) on all 6 held-out clips (28 keys' mean 0.1135 → 0.1024):
       the 4 clips 0.1379 → 0.1333 (held 0.1036, held_dense 0.1497, orb_p30 0.1364), held_facs 0.0714 → 0.0648,
       orb_facs_m30 0.0763 → 0.0710 (better now), the 6 clips' mean 0.1165 → 0.1115; the training FACS clips
       0.0603 → 0.0508.
    The capture, scored only after each choice (front / +30° / −30°; the fit alone 0.148 / 0.150 / 0.158, jawOpen
    0.088 / 0.057 / 0.081 in all three): 1. 0.153 / 0.155 / 0.162, 2. 0.152 / 0.157 / 0.165 — WORSE in every
    view both times, so neither ships. The capture holds a sustained mix (mouthLeft 0.25-0.44 with mouthStretch
    0.35-0.52 and mouthLowerDown ~0.34) that both models read worse than the fit: 2. mouthLeft 0.05 / 0.15 / 0.20
    → 0.11 / 0.39 / 0.30, mouthShrugUpper 0.28 / 0.34 / 0.30 → 0.36 / 0.38 / 0.39, mouthLowerDownRight 0.28 /
    0.23 / 0.20 → 0.34 / 0.33 / 0.26, cheekPuff 0.03-0.05 → 0.05-0.09; better mouthRollLower 0.21 / 0.24 / 0.32
    → 0.15 / 0.20 / 0.27, mouthDimpleLeft 0.13-0.14 → 0.08-0.14, mouthUpperUpRight 0.11 / 0.06 / 0.08 → 0.06 /
    0.03 / 0.07 (per key: animate_per_key.txt). The FACS clips moved the held-out figures but not the capture:
    what the synthetic clips teach the regressor about this mouth does not carry to the capture's performance.
  - what it can claim: like the blink model, it reads this renderer's eyes and brows (the capture's identity is
    one of the training identities, and the texture is the rig's painted one); on real video the lids' and brows'
    texture, lashes, hair, make-up and lighting differ and nothing here measures that. Both models are used only
    where the blink model is (eyes as large as those learned, the take's eyes read open: real eyes unlike the
    renders keep the fit's values for all three).
The head at −30° (2026-12-07 pm): the identity re-fitted from the 3 or 6 frames whose first-pass expression is
nearest neutral (instead of the first, middle and last): held out head 4.65° → 5.03° / 4.85°, capture −30° 2.62°
→ 2.87° / 2.89° (front 1.82° → 1.78° / 1.75°); from the 3 or 6 frames the first pass finds most frontal: held
out mean 0.1456 → 0.1469, head 4.65° → 4.66° / 4.70° (camera −30° clip 5.61° → 4.23°, but held 2.57° → 3.44°),
capture −30° 2.73° / 2.70°, jawOpen (mean of the three views) 0.080 → 0.117; mouthStretch and mouthShrugUpper
(the keys the table reads too high) under a prior × 3 / × 10: held out mean 0.1457 / 0.1460, head 4.72° / 4.76°,
capture −30° 2.61° / 2.62°. Not adopted; −30° is still 2.62°.
The head with the pixels' keys as targets in the fit (2026-12-07 late): the gaze/lid and brow models' estimates (the
keys they blend) pull the fit's expression toward them (a prior w (b − m)² beside the tracker's, on the ICT
components of those keys; the pose debiasing keeps its own prior), so the pose need not make up for the eyes' and
brows' misfit. Held out (the 4 clips, smoothing 0.5; mean over active keys / head), against 0.1359 / 4.80°: eyes
and brows w = 3e-4 0.1361 / 4.67°, 1e-3 0.1371 / 4.59°, 3e-3 0.1380 / 4.53°, 1e-2 0.1385 / 4.50°; brows alone 3e-3
0.1368 / 4.50°; eyes alone 3e-3 0.1372 / 4.85°. The head gains, the keys lose a little (the fit's other keys make
up for the targets' bias), so not adopted; on the capture (scored afterwards) brows 3e-3 gave 0.145 / 0.149 /
0.159 and 1.67° / 1.73° / 2.62°, both 3e-4 0.141 / 0.147 / 0.157 and 1.70° / 1.86° / 2.57°: −30° barely moves.
The head's constant error at −30° (2.55° with the table; pitch −1.8°, yaw +1.8°), 2026-12-07. Held out below: the
two held-out clips of the table (head turning in front of the camera, mean over the two) and two new ones of the
same identity filmed as the capture is, the camera moved 30° to either side (animate_correspondence.py orb_m30,
orb_p30), each as mean over the active keys / jawOpen / head rotation, no smoothing:
  - not the truth side: landmarks made through the table's own landmark model at the true pose, filmed by the
    renderer's −30° camera (tests/animate/exact_landmarks.table_landmarks), fitted back with a prior of 1e-6 come
    within 0.13°: the camera, the head bone's turn about its pivot and the scorer agree;
  - not MediaPipe's points on the turned face, nor the far side's face oval: given the true expression, the pose
    fitted to the detections is off by a constant 0.55° yaw at −30° (1.2° at +30°); leaving out the face oval's
    far or near half, the lips, eyes or brows moves the −30° constant by at most 0.4°;
  - it is the expression. (1) The prior shrinks the capture's sustained expression (brows up, mouth to the left)
    toward neutral and the head turns to make up for it: on the exact table landmarks with the tracker's prior
    1.84° at −30° (constant pitch −1.3°, yaw +1.3°), 1.12° at +30°, 0.85° front, spread over many keys (no one
    key's prior moves it by more than 0.5°). (2) On the detections the mouth's keys misfit: with the true
    identity, fixing the mouth keys at the truth takes the −30° yaw constant from 2.9° to 1.4° (the lateral keys
    alone 2.4°, the eyes' 2.3°, the brows' 2.5°).
  - adopted (now): after each frame's solve, the pose is moved by the pose part of one iterated-Tikhonov step
    ((JᵀJ + λ)⁻¹ λθ on the free variables) and the expression solved again with the pose held (exact table
    landmarks at −30°: 1.84° → 1.29°, tests/animate/test_track.py); and jawOpen/mouthClose's prior × 0.1. Held
    out, table → now: 0.150 / 0.077 / 4.32° → 0.149 / 0.072 / 3.99°, camera moved −30° 0.142 / 0.086 / 5.81° →
    0.143 / 0.077 / 5.61°, +30° 0.147 / 0.077 / 5.27° → 0.146 / 0.075 / 5.01° (either change alone is worse held
    out: 0.150 / 0.075 / 4.04° and 0.150 / 0.076 / 4.22°). On the capture it meets the jawOpen goal in every view
    and lowers the head error at the front and −30°, but +30° rises 1.78° → 1.88° and eyeBlinkRight at +30° 0.022
    → 0.066 (held out the blinks change by < 0.02);
  - not adopted: the pose from a second solve under a weaker prior (1e-7 … 1e-4): held out head 3.5-4.05° but
    the mean 0.150-0.152; capture −30° 2.29-2.67° and +30° 1.83-2.06°, jawOpen at −30° 0.116-0.129; the pose from
    the points the expressions move little (weights 1 / (1 + (motion / 4-8 mm)²)): −30° 2.9-3.7°; a debiasing
    step × 1.5 or × 2: held out 3.91° / 3.79°, capture +30° 1.91° / 2.00°; each key's prior scaled by how far it
    moves the points (power 0.5, 1): held out 0.151 / 0.152, jawOpen 0.089 / 0.112; the prior pulling toward the
    take's median expression (two passes): held out 0.151; weaker priors on mouthLeft/Right, jawLeft/Right
    (× 0.3, × 0.1): held out 0.152 / 0.155; the identity re-fitted under the table's landmark model over 3-9
    frames (identity prior 1e-5 … 1e-3): held out head 4.00-4.26°, capture −30° 3.3-3.6°; more frames for the
    identity (7, 9), 20 identity components, a stricter or looser facing test (0.2, −0.1): capture −30°
    2.64-3.08°, +30° 1.70-1.90°, no held-out gain; the table's offsets re-learned with two camera-moved clips
    (animate_correspondence.py): worse.
  - what is left held out is mostly the identity: the fit's own identity from three frames against the true one,
    head rotation held 2.78° → 2.34°, held_dense 5.85° → 3.03°, camera moved −30° 5.81° → 4.70°, +30° 5.27° →
    2.66°; on the capture (the average identity) the true identity makes −30° worse (3.4°), so the fitted one
    partly makes up for the expression's misfit there.
The −30° head and the keys read at a fraction, 2026-12-07 evening (issue 17; nothing shipped changed):
  - the cause of the −30° excess, measured without MediaPipe (tests/animate/test_track.py::test_the_turned_heads_
    bias_follows_the_captures_asymmetric_expression): the capture's frames 150-229 filmed from ±30° as the table
    predicts MediaPipe's points, fitted back on the true identity with the tracker's prior and debiasing, then
    with the expression mirrored left ↔ right (exact_landmarks.mirror_expression; the head's motion as captured).
    The head's constant part, −30° / +30°: as captured 1.24° / 0.55°, expression mirrored 0.61° / 0.88°, head's
    motion mirrored instead 1.23° / 0.61°, the lateral keys (mouthLeft/Right, jawLeft/Right) zeroed 1.06° / 0.74°,
    every key's two sides averaged and the lateral keys zeroed 0.99° / 0.73°. So the excess at −30° follows the
    capture's own left-right asymmetry (the mouth pulled to its left: mouthLeft 0.44, mouthStretchLeft 0.52 against
    Right 0.35), which the prior shrinks and the head's turn makes up for, more when seen from that side; not the
    camera, its intrinsics, the table's or MediaPipe's far side (the excess moves to +30° with the expression).
    What is left symmetric (~1° at ±30° with exact landmarks) is the prior's shrinkage of the sustained expression;
    on the detections the mouth keys' misfit adds ~0.9° (2.16° against 1.24°).
  - tried against it, chosen on the 4 held-out clips (mean over active keys / head, landmark fit alone, pixel
    models off; 0.1470 / 4.65° as shipped): the iterated debias (re-solved at the debiased pose twice): 0.1470 /
    4.66°, capture unchanged; the prior centred on the take's median expression from a first pass (× 1 / × 0.5):
    0.1493 / 4.44°, 0.1478 / 4.54° (capture −30° 2.44° / 2.52°, +30° 1.99° / 1.93°, front 1.95° / 1.87°); the
    table re-learned with FACS-style clips (below): 0.1470 / 4.82°; each point's weight × its facing cosine (power
    1 / 3: the far side's grazing points weighed less): 0.1470 / 4.83°, 0.1474 / 5.16° (capture −30° 2.87° /
    2.88°). None adopted: −30° stays 2.62°.
  - a prior shaped by how faces move (the most promising, not adopted): the expression prior λ bᵀPb with P =
    (1 − β) I + β Σ⁻¹ (Σ: the second moment of 20,000 facs_keys expressions in the model's components, + 0.01 I,
    trace-normalised), so co-activations the FACS prototypes make cost less. The whole tracker (pixel models on,
    smoothing 0.5), β = 0 / 0.3 / 0.5 / 0.7: held out mean 0.1359 / 0.1361 / 0.1365 / 0.1374, head 4.80° / 4.72° /
    4.64° / 4.53°; FACS held out (below) 0.0738 / 0.0744 / 0.0751 / 0.0768, head 3.76° / 3.68° / 3.60° / 3.49°.
    The head gains, the keys lose held out (on the FACS clips too), so the rule keeps β = 0. Scored afterwards,
    the capture gains much: β 0.3 / 0.7 mean 0.142 / 0.145 / 0.156 and 0.132 / 0.136 / 0.147, head 1.76° /
    1.95° / 2.59° and 1.59° / 2.17° / 2.48° (fit alone at 0.5: mouthStretchLeft 0.41 / 0.40 / 0.47 → 0.38 / 0.34
    / 0.43, eyeWideLeft 0.43 → 0.37); a held-out set of real performances (a second capture) would decide it.
    The same prior for the pose's solve only (the expression re-solved at that pose under the diagonal one), β 0.7
    / 1: held out 0.1365 / 0.1375, head 4.53° / 4.27°; FACS held out 0.0751 / 0.0772, head 3.49° / 3.23°: the
    truer pose alone costs the keys held out (they had partly made up for the pose's error).
  - with MediaPipe's OpenCV runtime (HEADFORGE_MEDIAPIPE_RUNTIME=opencv, what an install without the mediapipe
    package runs since fa2ea20) on the same renders: mean 0.148 / 0.150 / 0.158, jawOpen 0.088 / 0.057 / 0.081,
    head 1.78° / 1.78° / 2.43° (constant 0.91° / 1.36° / 2.04°), the blink found in all three views on its frame
    (per key in animate_per_key.txt).
  - FACS-style training expressions (animate_correspondence.py facs_take, `--facs`): each keyframe one or two of
    17 two-sided combinations (Ekman's prototypes: surprise = browInnerUp + browOuterUp + eyeWide + jawOpen, fear,
    happiness, sadness, anger, disgust, doubt, attention down/up with eyeWide, a grimace, 6 speech visemes, a
    puff) or 4 one-sided ones (contempt, smirk, sneer, one brow), at 0.3-1.2 of their weights, each key jittered,
    12 % rests, weak independent keys at 5 %; written from the FACS literature, never from the capture. Rendered:
    facs0-2 (identities 0-2, 200 frames each, turns ±35°) to train, held_facs (150 frames) and orb_facs_m30 (the
    camera at −30°) of the held-out 4th identity to choose on. Against the shipped models (first figure):
      table (+3 clips, 2700 frames, same surface points, ridge 30, prior 3e-4; fit alone): held out 0.1470 →
        0.1470, jawOpen 0.074 → 0.081, head 4.65° → 4.82°; FACS held out 0.0822 → 0.0800, jawOpen 0.029 → 0.050,
        head 3.57° → 3.94°; capture (scored after) 0.163 / 0.160 / 0.168 → 0.163 / 0.160 / 0.163, head 1.82° /
        1.88° / 2.62° → 2.01° / 1.90° / 2.46°, mouthStretchLeft and mouthShrugUpper within 0.01;
      eye keys (+3 clips; ridge and blends chosen on the 6 held-out clips, the same ridge 0.1 and blends came out),
        the six keys' mean after smoothing: held out 0.114 → 0.117, FACS held out 0.0850 → 0.0852, fresh 0.1222
        → 0.1225; eyeWide 0.158 → 0.162, 0.132 → 0.127, 0.177 → 0.179;
      brows (+3 clips; browDownLeft's blend ½ → 0): held out 0.1462 → 0.1466, FACS held out 0.106 → 0.106, fresh
        0.1626 → 0.1646. None adopted.
    Why not: the random clips do hold the co-activation (eyeWide > 0.35 with eyeLookDown > 0.25: 73 frames of
    `held`, 255 of the 8 fresh clips). On those frames the fit reads eyeWide 0.02-0.05 (truth ~0.5), the pixels'
    regressor 0.27-0.34 (FACS-trained 0.27-0.36), and the chosen ½ blend halves that: the model's estimate is the
    least-squares one, shrunk by the share of eyeWide its features do not explain, and the MAE over all frames
    (most with eyeWide ≈ 0) prefers it shrunk (a gain calibration was worse held out, above). The blend grid
    refined, the shipped model, eyeWide after smoothing at blends ¼ / ½ / ⅝ / ¾ / 1: held out 0.160 / 0.158 /
    0.162 / 0.169 / 0.192, FACS held out 0.126 / 0.132 / 0.139 / 0.148 / 0.173: a larger share of the pixels
    reads the amplitude better and the rest worse. (eyeLookDown at ⅝: held out 0.0746 → 0.0728, FACS 0.0761 →
    0.0758, fresh 0.0890 → 0.0824; too small a gain on 4 clips to re-choose the grid for.) mouthStretch and
    mouthShrugUpper: the capture holds a sustained mouth (frames 150-229: stretch L/R 0.52 / 0.35, shrugUpper 0.39,
    rollLower 0.32, lowerDown 0.33, mouthLeft 0.44) that the fit explains with mouthLeft (0.26-0.33) and jawOpen,
    reading stretch 0.04-0.12 and shrugUpper 0.06-0.09; no FACS prototype holds that mix, and building one from
    the capture would be fitting the test.
    Worth knowing for real faces: on the FACS held-out clips the shipped pixel models are worse than the fit for
    browInnerUp (0.101 → 0.121), browOuterUpLeft (0.093 → 0.101), browDownLeft (0.111 → 0.119) and eyeWide (0.127
    → 0.132); their blends were chosen on random-expression clips, and faces that move in prototypes (with rests)
    are read less well by them.
  - speed: numpy's OpenBLAS split the per-frame fit's small solves over both cores, and with another process
    on one of them each split waited for it: the fit took 42-61 ms a frame (14-23 fps per frame for the whole
    tracker at load 2-5, measured this evening), against ~9 ms on one thread. The per-frame loop now runs on one
    BLAS thread (backend/animate/blas_threads.py, ctypes into numpy's own OpenBLAS, restored after): the front
    clip's fit 57-61 → 9.2-9.4 ms a frame at load 2.5-2.7; the three views 65.8-69.7 fps per frame (decode +
    landmarks + fit, wall-clock; 64.6-70.0 from the CPU time) at load 2.7-2.9, default threads and
    OMP_NUM_THREADS=4 alike; the figures above unchanged (per-key errors equal to 4 decimals, head within 1e-12°,
    default and 4 threads identical).
Real pixels (2026-12-07, benchmarks/animate_real.py, where the figures are): real photos (the astronaut, the
cameraman, insightface's group photo's faces) moved by a known 2D similarity (±40 px, scale 0.8-1.2, roll ±15°),
encoded (mp4v), tracked. Stability only, not the accuracy of moving expressions: on frontal faces ≥ 38 px between
the irises the keys hold still (std 0.012-0.029 mean, ≤ 0.10), the roll follows to 0.24-0.62° rms, the pixel
blink model reads the astronaut's eyes open in every frame; small (27 px) and side-on faces flicker (key std ~0.06,
single keys 0.2-0.25), the fit's eyeBlink (the fallback for real eyes the pixel model reads as closed) sits at
0.03-0.33 on open eyes. Two defects it found are fixed: a weak false face box larger than the face lost frames
(now face.landmarks.image_mesh_478), and One-Euro lagged the head's roll by ~0.5° at smoothing 0.5 (track.HEAD_BETA
2 → 16: this benchmark's head error at smoothing 0.5, front / +30° / −30°, 1.778° / 1.780° / 2.426° → 1.782° / 1.810°
/ 2.432°, the keys unchanged: a little worse on these slow synthetic turns, 0.3-0.45° better on the real clips).
2026-12-07, session 31 (the two defects above; figures in benchmarks/animate_real.py): where the pixel blink model is
gated off, the fit's eyeBlink is re-zeroed on the take's own open lid (track.calibrate_open: its lower quartile plus
3× its frame-to-frame noise), and takes whose landmarks are noisier than track.NOISE_REF are smoothed harder. On
this benchmark's capture views and the 4 held-out synthetic clips at 320×240 (9 clips, 33 blinks), smoothing 0.5:
the fit's eyeBlink forced (eye_model=None) MAE 0.115 → 0.106, blinks found 0 → 0, false 0 → 0 (no smoothing: MAE
0.114 → 0.105, false 1 → 0); the default tracker blinks 14 / 33 found, 6 false, jawOpen 0.1152, mean over the
active keys 0.1599, head 4.38° before and after (eyeBlink MAE 0.1000 → 0.0993 from the two clips gated to the
fit). The clips' landmark noise is 1.0-4.04e-3 IOD at 320×240 (the front view at 640×480 1.6e-3), at most
NOISE_REF but for orb_m30 (cutoffs × 0.98, its jawOpen 0.1311 → 0.1312): the filter is as it was here.
2026-12-07, session 31: the head pose from the points the expressions barely move (issue 17; not adopted, nothing
shipped changed). After each frame's fit (debiased pose, expression re-solved), the pose re-solved with the
expression held and each point's weight × its stability, then the expression re-solved at that pose; stability
from m, the farthest any one expression (table delta included) moves the point: eye corners, nose bridge, forehead,
temples and upper face oval m 1.6-3.3 mm, nose tip 4.4-4.8, mouth corners 20, lips and chin 34-36. Chosen on the 4
held-out clips (re-rendered this session; the shipped tracker on them: mean over the active keys 0.1379, head
4.65°, smoothing 0.5, pixel models on), only then the capture (shipped: head 1.78° / 1.81° / 2.43°, mean 0.148 /
0.151 / 0.158, jawOpen 0.088 / 0.057 / 0.081; front / +30° / −30°):
  - soft weights 1 / (1 + (m / 4 / 8 mm)²): held out 0.1381 / 4.72°, 0.1379 / 4.75°; capture head 2.19° / 1.51° /
    2.95° and 2.12° / 1.51° / 2.79°, jawOpen 0.090 / 0.086 (mean of the views);
  - only the points with m < 2.5 / 3 / 3.5 / 4 / 5 mm (the held-out choice: 3.5, 157 of the 468 points): held out
    0.1399 / 4.55°, 0.1391 / 4.51°, 0.1387 / 4.47°, 0.1384 / 4.53°, 0.1382 / 4.72° (the same at 3 mm without the
    debiasing step: 0.1389 / 4.69°); capture at 3.5 mm head 2.08° / 1.60° / 3.53°, mean 0.149 / 0.150 / 0.159,
    jawOpen 0.124 / 0.063 / 0.126 (3 mm: 2.07° / 1.74° / 3.86°, 4 mm: 2.13° / 1.62° / 3.51°);
  - two-stage instead (pose and expression solved together, debiased, on the stable points, then the expression on
    all points at that pose): soft 20 mm held out 0.1381 / 4.75°, capture 2.08° / 1.70° / 2.69°; hard 3.5 / 5 mm
    held out 0.1415 / 4.18°, 0.1400 / 4.52° (the keys worse by more than 0.002), capture 1.83° / 2.21° / 4.12°,
    2.21° / 2.12° / 3.64°;
  - the stability per frame instead of over the keys' range: weights from how far the fitted expression moves each
    point (1 / (1 + (d / 3 mm)²)): held out 0.1378 / 4.66°, capture 2.19° / 1.62° / 2.70°; from the point's
    variance under the fit's posterior on the expression ((JᵀJ + λ)⁻¹, × 1 of its median): held out 0.1379 / 4.74°;
  - the second solve's cost: the fit 6.2-7.6 → 10-14 ms a frame on one core (two-stage hard, posterior: 14-19 ms).
  Why: on the exact table landmarks (the capture's frames 150-229, true identity, no MediaPipe, pixel models off;
  shipped −30° / front / +30° 1.27° / 0.48° / 0.82°) every variant is worse too (soft 2-8 mm 1.51-1.60° /
  0.72-0.91° / 1.05-1.14°, hard 3-5 mm 1.53° / 0.89-1.15° / 1.21-1.32°, two-stage soft 20 mm 1.37° / 0.61° /
  0.91°), and without the debiasing step the stable-point pose (soft 4 mm) is worse than none: 1.85° / 0.86° /
  1.22° against 1.77° / 0.81° / 1.05°. The "stable" points are not stable under the capture's dense sustained
  expression. Grouped by m, the points' true displacement (mean over the frames) and the expression's misfit there
  (truth − fit, through the basis): m < 2 mm (41 points) 2.00 / 0.88 mm, 2-3 mm 2.44 / 1.08, 3-5 mm 3.57 / 1.55,
  5-10 mm 4.93 / 1.97, 10-20 mm 10.25 / 3.13, 20-50 mm 17.17 / 3.50: the least-moving points carry the largest
  misfit for their motion (44 % against 20 %), since what moves them (eyeWide 0.42-0.44 read 0.05-0.06,
  browInnerUp 0.48 read 0.17, eyeLookDown 0.37 read 0.09-0.13) is what the landmark fit reads worst. On the
  capture all but the hard two-stage variants lower +30° (1.81° → 1.51-1.74°) and raise −30° and the front: the
  misfit moves with the points kept, it does not go away.
  A lead from that, not adopted: after the pixel models, each frame's pose re-solved with the expression held at
  the fit's but with the keys the pixel models blend put in (their blended values), then the debiasing step once
  more; the weights are untouched (held-out and capture key errors identical), only the head moves. Held out
  (orb_m30 has the pixel models gated off, so it does not move) head 4.65° → brows 4.27°, eyeWide + eyeLook + brows
  4.33°, eyes' keys alone without the step 4.69°, brows without it 4.58°; the control (the fit's own keys held,
  the same re-solve and step) 4.45°. Capture (front / +30° / −30°), brows (the held-out choice) 1.65° / 2.04° /
  2.08°, eyes + brows 1.54° / 2.25° / 1.93°, control 1.79° / 2.03° / 2.16°, against 1.78° / 1.81° / 2.43°: −30°
  and the front gain, +30° loses 0.2-0.4° and passes 2°, so neither meets the goal in all three views; a second
  capture (or the mirrored expression) would tell a real gain from the bias moving to the other side.
  On the exact table landmarks (as in "Why", −30° / front / +30°; true brow keys standing in for the pixels'):
  shipped 1.27° / 0.48° / 0.82°, control 0.77° / 0.67° / 0.75°, true brows 0.62° / 0.67° / 0.67°; the expression
  mirrored: 0.95° / 0.66° / 0.91°, 0.71° / 0.68° / 0.63°, 0.52° / 0.67° / 0.65°. Without MediaPipe the re-solve
  helps both sides (the front loses 0.2°), so the +30° loss on the capture comes with the detections' misfit.
2026-12-07, session 33: the mouth keys chosen on held-out stretches of the REAL capture (issue 17). The synthetic
held-out clips had stopped predicting the capture (the mouth-pixels model above), so every choice below was made
on the capture's frames this benchmark does not score: 0-79 and 240-334, each rendered from the front (0-79) or
+15° (240-334) and from ±30° (six clips, 640×480, render_clip as here; landmarks cached), and only the adopted
candidate was then scored on the three views above. The stretches exercise the mouth: truth mean / max
mouthShrugUpper 0.39 / 0.49 and 0.54 / 0.60, mouthStretchRight 0.14 / 0.16 and 0.78 / 0.90, mouthRollLower 0.24 /
0.38 and 0.36 / 0.50, mouthRight 0 and 0.61 / 0.97, mouthSmile 0.4 / 0.75, mouthShrugLower 0.32 / 0.43 (0-79).
Validation figures: mean over the active keys averaged over the six clips (mouth/jaw/cheek keys' mean; head).
  - the shipped tracker there: 0.1640 (0.109 / 0.107 / 0.108 for 0-79 at 0° / +30° / −30°, 0.203 / 0.228 / 0.229
    for 240-334 at +15° / +30° / −30°), mouth keys 0.156, head 0.96° / 1.53° / 1.36° / 2.76° / 2.96° / 2.74°.
  - bias or noise: bias. The mouth keys' error is almost all their signed mean: the tracked value below the truth
    in all six clips (mouthShrugUpper −0.30 … −0.43, mouthRollLower −0.23 … −0.36, cheekSquint −0.06 … −0.23,
    mouthDimple −0.08 … −0.20, mouthStretchRight at 240-334 −0.59 … −0.76, read at ~0.09 whatever the truth: r
    0.01); false positives are few (mouthClose +0.11 … +0.17 and jawLeft +0.12 in 0-79). A per-key constant
    offset learned there (the mean signed error over the six clips) takes this benchmark 0.148 / 0.150 / 0.158 to
    0.124 / 0.129 / 0.139 (mouth keys' offsets alone 0.130 / 0.136 / 0.143): the error is the capture's
    sustained level (shrugUpper +0.37, stretchRight +0.37, rollLower +0.29 …), a constant of this performer's
    resting face; shipped, it would read a neutral face with those keys on, so not adopted (scored for the
    record only).
  - per-key prior strengths (VIDEO_PRIOR_SCALE) for the mouth keys: all mouth/jaw/cheek keys × 0.3 / 0.1 / 0.03:
    0.1646 / 0.1732 / 0.1838; the 13 under-read keys (shrug, roll lower, stretch, lowerDown, dimple, cheekSquint,
    press) × 0.3 / 0.1 / 0.03: 0.1619 / 0.1699 / 0.1814 (head 2.06-2.13°); each of 19 groups alone (left/right
    together) × 0.3 and × 3: 0.1633-0.1725, the best mouthShrugUpper × 0.3 0.1633 and mouthUpperUp × 3 0.1634.
    A weaker prior lets the detections' misfit in as much as it lifts the keys. Not adopted.
  - the mouth's points from another correspondence (the table kept elsewhere): the 40 lip points at the photo
    fit's surface points without the table's offsets / at the table's points without its offsets / offsets × ½:
    0.1640 / 0.1640 / 0.1640, head 2.11° / 2.11° / 2.07°; the 159 lower-face points (moved by the mouth/jaw/cheek
    shapes at least twice as much as by the others, > 4 mm) likewise: 0.1690 / 0.1653 / 0.1639, jawOpen 0.099 /
    0.120 / 0.101 (from 0.082), head 3.00° / 2.41° / 2.21°. Not adopted: the table's mouth is not what holds
    mouthStretch and mouthShrugUpper down on the real capture.
  - adopted: the FACS-shaped prior of the 2026-12-07 evening trial (there the synthetic clips chose against it
    and the note said a held-out set of real performances would decide): λ bᵀ((1 − β) I + β Pf)b with D = diag λ
    (λ the tracker's per-key prior, jawOpen/mouthClose × 0.1), Pf the inverse second moment of 20,000 facs_keys
    expressions (+ 0.01 I, trace E; benchmarks/animate_correspondence.py facs_precision, shipped as
    backend/animate/data/ict_facs_prior.npz). In every solve, β 0.3 / 0.7 / 0.85 / 1: 0.1593 / 0.1490 / 0.1441 /
    0.1391, head 2.01° / 1.94° / 1.92° / 1.94° on average but worse in two clips (β 1: 0.96° → 1.12° at 0-79
    front, 1.36° → 1.72° at 0-79 −30°); only in the expression's re-solve at the debiased pose (the pose from
    the diagonal prior, the head within 1e-5°), β 0.3 / 0.7 / 0.85 / 1: 0.1587 / 0.1522 / 0.1485 / 0.1445 (every
    clip lower: 0.092 / 0.102 / 0.084 / 0.184 / 0.205 / 0.200), mouth keys 0.156 → 0.137, jawOpen 0.082 → 0.079;
    at β 1 the strength × 0.5 / × 2 0.1472 / 0.1446, Pf's ridge 0.003 / 0.03 0.1464 / 0.1457; the mouth/jaw/cheek
    block alone coupled (the eyes and brows diagonal) 0.1545. Chosen: β 1, re-solve only, as built
    (track.FACS_PRIOR_BETA). Then scored here once (the same renders; per key in animate_per_key.txt):
      mean over active keys  0.148 / 0.150 / 0.158 → 0.123 / 0.132 / 0.140
      jawOpen                0.088 / 0.057 / 0.081 → 0.098 / 0.083 / 0.086  (goal 0.10: met, with less margin)
      head                   1.78° / 1.81° / 2.43° → 1.78° / 1.81° / 2.43°  (unchanged to 0.01°)
      mouthStretchLeft 0.41 / 0.42 / 0.47 → 0.32 / 0.27 / 0.35, mouthShrugUpper 0.28 / 0.34 / 0.30 → 0.20 / 0.26 /
      0.26, mouthRollLower 0.21 / 0.24 / 0.32 → 0.14 / 0.19 / 0.30, mouthPucker 0.24 / 0.27 / 0.18 → 0.16 / 0.26 /
      0.07, eyeWide L/R 0.35 / 0.37 / 0.44, 0.33 / 0.32 / 0.34 → 0.28 / 0.31 / 0.36, 0.25 / 0.27 / 0.28; worse
      jawOpen (above), mouthLowerDownRight 0.28 / 0.23 / 0.20 → 0.27 / 0.25 / 0.24, cheekPuff and mouthFunnel by
      up to 0.1 at 240-334; the blink found on its frame in every view; with the val-learned offsets on top
      0.110 / 0.120 / 0.131 (record only, as above).
    speed: the fit 6.2 → 6.6 ms a frame of CPU (the front clip, three runs each), the three views 56-66 fps per
    frame from their CPU time (14-34 fps wall-clock at load 6.5-6.8: four other agents on the 2 cores).
    The cost: on the synthetic held-out clips it is WORSE, as the evening trial found: the 4 clips 0.1379 →
    0.1410 (eyeWideLeft 0.144 → 0.177, browInnerUp 0.152 → 0.174, mouthStretchRight 0.166 → 0.186), the 2 FACS
    clips 0.0739 → 0.0790 (mouthShrugLower 0.055 → 0.100, mouthStretchRight 0.128 → 0.159, mouthDimpleLeft 0.037
    → 0.065): where one key of a combination moves alone, the coupled prior reads its partners too. The capture,
    like ARKit captures of people generally, holds many keys at once; the synthetic clips mostly do not. Faces
    that move one key at a time will read a little more co-activation than they make.
    Test: tests/animate/test_track.py::test_the_coupled_prior_reads_the_captures_sustained_mouth (the capture's
    frames 0-39 through the table's own landmark model: mouth keys 0.099 → 0.062, active keys 0.106 → 0.072).
    Real pixels (benchmarks/animate_real.py, the three still faces large enough for the table): the keys' std over
    a still take 0.011-0.015 → 0.015-0.021 mean at smoothing 0.5, the head unchanged: a little less still.
  - not adopted afterwards (validation only): jawOpen and mouthClose left out of the couplings (diagonal there)
    0.1453, jawOpen 0.077; all five jaw keys and mouthClose 0.1455 (against 0.1445, jawOpen 0.079).
2026-12-07, session 33 (later): the pose's settings re-examined on the same held-out stretches of the real capture
(issue 17: −30° at 2.43°, goal 2°; nothing shipped changed). Each variant patched into the tracker as shipped
after f1ac2ab (coupled prior in the expression's re-solve, pixel models on, smoothing 0.5) and run on the six cached
validation clips (0-79 at 0° / +30° / −30°, 240-334 at +15° / +30° / −30°); figures: mean over the active keys /
jawOpen / head averaged over the six (head per clip). Shipped: 0.1445 / 0.079 / 2.05° (0.96 1.53 1.36 2.76 2.96
2.74). The rule (set before): adopt only if the validation head falls with the keys not worse, then the benchmark's
head must improve at −30° with no view worse by > 0.05°, keys within 0.002, jawOpen ≤ 0.10. A guard added after
the first sweep (no validation clip's head worse by > 0.05°, the benchmark's own rule) picked a second candidate.
  - the coupled prior in the pose's solve too, at a weaker β_p (the expression's re-solve keeps β = 1): 0.1 / 0.2 /
    0.3 / 0.5: 0.1442 / 0.1438 / 0.1433 / 0.1421, head 2.04° / 2.03° / 2.01° / 1.98°; at 0.5 two clips worse by
    0.06-0.07° (0-79 front 0.96° → 1.03°), at 0.3 no clip worse by more than 0.04°.
  - the debiasing step × 0.5 / 1.5 / 2 / 2.5 / 3 (the pose moved that many times the iterated-Tikhonov step):
    0.1469 / 0.1424 / 0.1403 / 0.1387 / 0.1378, jawOpen 0.075 / 0.083 / 0.088 / 0.092 / 0.096, head 2.16° / 1.96°
    / 1.89° / 1.85° / 1.83° (240-334 −30° 2.74° → 2.76-2.96° from × 1.5 up, 0-79 +30° 1.53° → 1.57-1.71°); with
    jawOpen's prior × 0.05 / 0.2 / 0.3 (of λ, shipped 0.1) at × 2 jawOpen 0.087 / 0.088 / 0.088: the jaw's rise
    comes with the pose, not its prior; β_p 0.5 with × 1.5 0.1401 / 1.89°, β_p 0.3 with × 2 0.1392 / 1.85°.
  - the pose re-solved after the pixel models with their keys put into the held expression, then one debiasing
    step (session 31's lead; the keys untouched, only the head moves): brows 1.81° (0.95 1.62 1.31 1.97 2.58
    2.42), eyes + brows 1.80°, the control (the fit's own keys held) 1.85°, brows without the step 2.07°, brows
    with the step × 1.5 / × 2 1.75° / 1.73°, brows with β_p 0.5 1.77°, brows with β_p 0.3 and step × 1.5 1.72°
    (the validation's best). Every re-solve raises 0-79 +30° (1.53° → 1.57-1.89°). The same re-solve with the eyes'
    and brows' keys put in and only the upper face weighed (the points the mouth/jaw/cheek keys move < 2 / < 5 mm,
    soft 1 / (1 + (m / 4 mm)²), or session 31's stability weights at 4 mm), so that neither the mouth's misfit nor
    the eyes' and brows' enters the pose: 1.74° / 1.84° / 1.82° / 1.82° (< 2 mm: 0.90 2.01 1.13 1.89 2.60 1.93):
    the −30° clips gain most, 0-79 +30° loses 0.3-0.5°. Scored afterwards for the record (< 2 mm): the benchmark
    turns the other way, 1.78° / 1.81° / 2.43° → 1.41° / 1.42° / 3.22° (−30°'s constant part, camera frame, −1.36
    −0.79 +1.20 → −1.68 −0.73 +1.85): which turned view gains depends on the stretch's expression, not the side.
  - the stable-point pose of session 31 (after the fit, the pose re-solved with the expression held and each
    point's weight × its stability, m the farthest one expression moves it, then the expression re-solved; 157
    points under 3.5 mm, as then): soft 4 / 8 mm 0.1414 / 0.1419, head 2.21° / 2.18°; hard 3.5 mm 0.1406 / 2.07°
    (0-79 −30° 1.36° → 1.76°). The keys gain a little, the head does not: not a pose fix.
  - a robust (Cauchy, IRLS from the first solve's residuals) loss in the pose's solve, scale 0.02 / 0.04 / 0.08
    IOD: head 2.40° / 2.26° / 2.16°, keys 0.1483 / 0.1470 / 0.1460 (in the expression's re-solve too: 0.1497):
    MediaPipe's misfit here is not in a few outlying points.
  - the debiasing step's pull from a left/right-symmetrised expression (the lateral keys left out), or from the
    expression without the lateral keys (the capture's asymmetric mouth: session 31's cause of the −30° excess):
    2.12° / 2.11°, keys 0.1450 / 0.1457 (0-79 +30° 1.32° / 1.36°, but 240-334 +15° 3.06° / 2.99°).
  - the jaw keys' priors (jawOpen's margin: 0.098 at the front): jawOpen × 0.05 / 0.2 / 0.3 (shipped 0.1) 0.1447 /
    0.1443 / 0.1440, jawOpen 0.078 / 0.080 / 0.080, head unchanged; mouthClose × 0.3 / 0.03 (shipped 0.1) 0.1438 /
    0.1449, jawOpen 0.077 / 0.079, head 2.056° / 2.050°; jawForward/Left/Right × 0.3 / × 3 0.1438 / 0.1457,
    jawOpen 0.076 / 0.081, head 2.09° / 2.03°. None lowers the head, and the gains on the keys are ≤ 0.0007.
  - the table's view-dependent offsets (video_correspondence's view term) × 0 / 0.5 / 1.5: head 2.75° / 2.25° /
    2.19°, keys 0.1501 / 0.1445 / 0.1469: as learned (× 1) is best.
  Scored on the benchmark (the same renders; landmarks cached, "now" reproduces the figures above exactly; per key
  in animate_per_key.txt), head front / +30° / −30°, mean over the active keys, jawOpen:
      now                                  1.78° / 1.81° / 2.43°  0.123 / 0.132 / 0.140  0.098 / 0.083 / 0.086
      β_p 0.3 (best under the guard)       1.72° / 1.89° / 2.40°  0.122 / 0.131 / 0.138  0.100 / 0.083 / 0.088
      brows re-solve, β_p 0.3, step × 1.5 (the validation's best): 1.46° / 2.22° / 2.12° (keys as now)
      brows re-solve (session 31's choice)  1.46° / 2.03° / 2.16° (keys as now)
      control re-solve                     1.51° / 2.20° / 2.12° (keys as now)
      debias × 1.5                         1.76° / 1.87° / 2.38°  0.122 / 0.130 / 0.137  0.101 / 0.081 / 0.091
      β_p 0.2                              1.74° / 1.86° / 2.41°  0.122 / 0.132 / 0.139  0.099 / 0.083 / 0.087
        (within every limit, +30° by 0.046°, but scored after β_p 0.3 failed: a choice on the benchmark, and
        −30° gains 0.02°; not adopted)
    Every candidate moves the head's error from −30° to +30°: the constant part (now 0.89° / 1.31° / 2.02°) goes
    to 0.78° / 1.70° / 1.62° with the brows re-solve, 0.82° / 1.81° / 1.59° with the control. None adopted: the
    two chosen on validation fail at +30° (+0.08°, +0.41°), the others too but β_p 0.2 (+0.05° to +0.41°; debias
    × 1.5 also jawOpen 0.101 at the front); −30° stays above 2° in all, the re-solves reaching 2.12-2.16°.
  - why (the constant part's rotation vector in the camera's frame, x across / y along the view / z up, now → the
    brows re-solve): front −0.57 +0.34 −0.60 → −0.06 +0.55 −0.56, +30° +0.90 +0.11 +0.97 → +1.20 −0.12 +1.24,
    −30° −1.36 −0.79 +1.20 → −1.06 −0.67 +0.95. The re-solve adds a nod of +0.3-0.5° in every view (with the
    pixels' brows, higher than the fit's, held in the expression): it cancels the pitch error the views share
    (≈ −0.3°), but on this stretch the pitch's sign follows the camera's side (+0.9° at +30°, −1.4° at −30°), so
    +30° loses what −30° gains. That side-dependence is the stretch's, not the views': on the validation clips the
    pitch is −1.00° / +0.05° (0-79, +30° / −30°) and −0.60° / −1.67° (240-334), and the per-view direction of a
    change did not carry over (β_p 0.3 there: 0-79 front +0.04°, the two +30° clips −0.04° / −0.08°; on the
    benchmark front −0.06°, +30° +0.08°; the upper-face re-solve above helps −30° there and +30° here). The head's
    constant error at ±30° follows each stretch's expression misfit; settings chosen per view on one performer's
    stretches do not transfer, and a second capture (or the mirrored expression, session 31) would be needed to
    tell a gain from the error moving to the other side.
  - the same six stretches rendered again with the expression mirrored left ↔ right (tests/animate/exact_landmarks
    .mirror_expression; the head as captured; 640×480, MediaPipe), afterwards, as a check of the candidates above
    (head per clip, 0-79 at 0° / +30° / −30°, 240-334 at +15° / +30° / −30°): shipped 1.75° (0.99 1.54 1.39 1.69
    1.81 3.05: against the unmirrored 2.76 2.96 2.74 at 240-334, the turned views' error moves with the
    expression's asymmetry, as session 31 found without MediaPipe), β_p 0.3 1.69°, debias × 1.5 1.69°, brows
    re-solve 1.54° (0.96 1.68 1.32 0.93 1.65 2.72), brows re-solve with β_p 0.3 and × 1.5 1.53° (1.00 1.74 1.30
    0.90 1.62 2.63), control re-solve 1.59°, upper-face re-solve 1.68° (0.89 2.00 1.13 1.12 1.77 3.16); keys 0.1410
    → 0.1400 (β_p 0.3) / 0.1394 (× 1.5). On all twelve the brows re-solve with β_p 0.3 and × 1.5 is still the best
    (1.90° → 1.63° mean), and 0-79 +30° loses under every re-solve in both (1.53° / 1.54° → 1.59-2.01°), as the
    benchmark's +30° does: a loss that mirroring does not move, so these clips give no reason to adopt it either.
  - speed: nothing shipped changed (the re-solves and the debias × s cost a second solve per frame; not timed).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.animate.ground_truth
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import SHARED, use_shared_ict  # noqa: E402

# (start frame at 30 fps, frames, camera yaw degrees): jaw opening and closing, the left-eye blink at ~195; then
# two segments with other keys (the start, front; the end, from +15°) that the fit was checked on
VIEWS = ((80, 150, 0.0), (150, 80, 30.0), (150, 80, -30.0), (0, 80, 0.0), (240, 95, 15.0))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--smoothing", type=float, default=0.5)
    ap.add_argument("--work", help="folder for the renders (default: a temporary one)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--views", default="all", help="'all', 'three' (front and ±30°) or 'front'")
    ap.add_argument("--correspondence", default="video", choices=("video", "photo"),
                    help="the tracker's landmark correspondence: the learned video table or the photo fit's")
    args = ap.parse_args(argv)
    use_shared_ict()
    os.environ.setdefault("GLOG_minloglevel", "2")
    from headforge.backend.animate.track import track_video
    from tests.animate.ground_truth import render_clip, score

    W, H = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.work or tempfile.mkdtemp(prefix="hf-animate-bench-"))
    results = {"size": [W, H], "smoothing": args.smoothing, "correspondence": args.correspondence,
               "cpu_count": os.cpu_count(), "views": []}
    views = {"all": VIEWS, "three": VIEWS[:3]}.get(args.views, VIEWS[:1])
    for start, n, yaw in views:
        t0 = time.perf_counter()
        mp4, gt, facts = render_clip(SHARED, work, start, n, (W, H), yaw)
        render_s = time.perf_counter() - t0
        take = track_video(mp4, smoothing=args.smoothing, correspondence=args.correspondence)
        s = score(gt, take, np.array(facts["w2c"]))
        timing = take.info["timing"]
        s.update(view=f"yaw {yaw:+.0f}°", start=start, render_s=round(render_s, 1),
                 fps_processed=round(timing["fps_processed"], 2), fps_per_frame=round(timing["fps_per_frame"], 2),
                 fps_per_frame_cpu=round(timing["fps_per_frame_cpu"], 2),
                 landmarks_s=round(timing["landmarks_s"], 2),
                 fit_s=round(timing["fit_s"], 2), lost_frames=len(take.info["lost_frames"]))
        results["views"].append(s)
        print(f"\n== {s['view']}: frames {start}–{start + n - 1} of the capture, {W}×{H}, "
              f"smoothing {args.smoothing}")
        print(f"mean |error| over {len(s['active_keys'])} active keys: {s['mean_mae_active']:.3f}   "
              f"jawOpen {s['jawOpen_mae']:.3f}   eyeBlinkLeft {s['eyeBlinkLeft_mae']:.3f}   "
              f"eyeBlinkRight {s['eyeBlinkRight_mae']:.3f}")
        print(f"head rotation error: mean {s['head_rot_err_deg_mean']:.2f}°, max {s['head_rot_err_deg_max']:.2f}° "
              f"(a constant {s['head_rot_offset_deg']:.2f}°; "
              f"without it {s['head_rot_err_deg_mean_offset_removed']:.2f}°)"
              f"; gaze yaw/pitch error left {s.get('eye_left_err_deg_mean', float('nan')):.1f}°, "
              f"right {s.get('eye_right_err_deg_mean', float('nan')):.1f}°")
        for k, b in s["blinks"].items():
            print(f"blink onsets {k}: truth {b['truth']} found {b['found']} (worst offset {b['max_offset']})")
        print(f"speed: {s['fps_per_frame']:.1f} frames/s per frame ({s['fps_per_frame_cpu']:.1f} from its CPU time; "
              f"decode + landmarks {s['landmarks_s']} s, fit "
              f"{s['fit_s']} s, {n} frames); {s['fps_processed']:.1f} frames/s with the one-time start (imports, "
              f"model, identity fit); lost frames {s['lost_frames']}; load average {os.getloadavg()[0]:.1f}")
        s["correspondence"] = take.info.get("correspondence")
        print(f"correspondence: {s['correspondence']}")
        keys = sorted(s["per_key_mae"].items(), key=lambda kv: -kv[1])
        print("per key: " + ", ".join(f"{k} {v:.2f}" for k, v in keys))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
