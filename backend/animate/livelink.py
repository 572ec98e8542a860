"""Live Link Face CSV (Epic's capture app for iOS and Android): read and write takes.

A file is a header row then one row per frame:
    Timecode, BlendShapeCount, EyeBlinkLeft, …, TongueOut (the 52 ARKit names), HeadYaw, HeadPitch, HeadRoll,
    LeftEyeYaw, LeftEyePitch, LeftEyeRoll, RightEyeYaw, RightEyePitch, RightEyeRoll
`BlendShapeCount` is the number of value columns that follow (61). Timecodes are HH:MM:SS:FF.fff (frame FF of a
second at the nominal rate, .fff the fraction of a frame); a `;` before the frames marks drop-frame timecode
(29.97 and 59.94 fps). Rotations are radians in the convention of take.py. The frame rate is not stored in the
file: pass it, or it is inferred from the frame numbers once the take crosses a second.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np

from ..fileio import atomic_path
from ..headmodel.arkit import ARKIT_52
from .take import AnimationError, Take

ROTATION_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                    "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
NOMINAL_RATES = (24, 25, 30, 48, 50, 60)
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;])(\d{1,3})(?:\.(\d+))?$")


def csv_name(arkit: str) -> str:
    """Live Link Face's spelling: `eyeBlinkLeft` → `EyeBlinkLeft`."""
    return arkit[0].upper() + arkit[1:]


_BY_LOWER = {n.lower(): n for n in ARKIT_52}


# ---------------------------------------------------------------- timecode

def nominal_rate(fps: float) -> int:
    """Timecode frames per second label: 30 for 29.97, 60 for 59.94, 24 for 23.976."""
    return int(round(fps))


def timecode_to_frame(h: int, m: int, s: int, f: int, nominal: int, drop_frame: bool) -> int:
    """Frame number since 00:00:00:00 of a timecode (SMPTE drop frame: labels 0..drop−1 are skipped at the start
    of every minute but each tenth)."""
    if f >= nominal or s >= 60 or m >= 60:
        raise ValueError("field out of range")
    n = ((h * 60 + m) * 60 + s) * nominal + f
    if drop_frame:
        drop = nominal // 15
        if s == 0 and m % 10 != 0 and f < drop:
            raise ValueError("a dropped frame label")
        minutes = h * 60 + m
        n -= drop * (minutes - minutes // 10)
    return n


def frame_to_timecode(n: int, nominal: int, drop_frame: bool) -> str:
    """Inverse of timecode_to_frame; `;` separates the frames of a drop-frame timecode."""
    if drop_frame:
        drop = nominal // 15
        per10 = nominal * 600 - drop * 9
        per1 = nominal * 60 - drop
        d, r = divmod(n, per10)
        n += drop * 9 * d + (drop * ((r - drop) // per1) if r > drop else 0)
    f = n % nominal
    s = (n // nominal) % 60
    m = (n // (nominal * 60)) % 60
    h = n // (nominal * 3600)
    return f"{h:02d}:{m:02d}:{s:02d}{';' if drop_frame else ':'}{f:02d}"


def _parse_timecode(text: str, row: int):
    m = _TIMECODE.match(text.strip())
    if not m:
        raise AnimationError(f"Row {row}: timecode {text!r} is not HH:MM:SS:FF.fff.", code="animate.csv_timecode")
    h, mi, s, sep, f, frac = m.groups()
    return int(h), int(mi), int(s), int(f), float("0." + frac) if frac else 0.0, sep == ";"


# ---------------------------------------------------------------- read

def read_livelink_csv(path, fps: float | None = None) -> Take:
    """Read a Live Link Face CSV into a Take (frame times from the timecodes). Raises AnimationError with codes
    animate.csv_unreadable / csv_empty / csv_missing_columns / csv_unknown_column / csv_count / csv_nan /
    csv_timecode / csv_fps."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise AnimationError(f"{path.name} cannot be read as a text CSV ({e}).", code="animate.csv_unreadable") from e
    take = parse_livelink_csv(text, fps=fps)
    take.name = path.stem
    take.info["source"] = str(path)
    return take


def parse_livelink_csv(text: str, fps: float | None = None) -> Take:
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise AnimationError("The CSV has no frames (a header and at least one row are needed).",
                             code="animate.csv_empty")
    header = [c.strip() for c in rows[0]]
    if header[:2] != ["Timecode", "BlendShapeCount"]:
        raise AnimationError(f"The CSV starts with {', '.join(header[:2])!s}; Live Link Face files start with "
                             "Timecode, BlendShapeCount.", code="animate.csv_missing_columns")
    cols = header[2:]
    rot_lower = {c.lower(): c for c in ROTATION_COLUMNS}
    unknown = [c for c in cols if c.lower() not in _BY_LOWER and c.lower() not in rot_lower]
    if unknown:
        raise AnimationError(f"Unknown column(s) {', '.join(unknown)}: not ARKit blendshape or rotation names.",
                             code="animate.csv_unknown_column",
                             hint="Live Link Face writes the 52 ARKit names and nine head/eye rotations.")
    canon = [_BY_LOWER.get(c.lower()) or rot_lower[c.lower()] for c in cols]
    dup = sorted({c for c in canon if canon.count(c) > 1})
    if dup:
        raise AnimationError(f"Column(s) {', '.join(dup)} appear twice.", code="animate.csv_unknown_column")
    missing = [csv_name(n) for n in ARKIT_52 if n not in canon]
    rot_present = [c for c in ROTATION_COLUMNS if c in canon]
    if rot_present and len(rot_present) != len(ROTATION_COLUMNS):
        missing += [c for c in ROTATION_COLUMNS if c not in canon]
    if missing:
        raise AnimationError(f"Missing column(s): {', '.join(missing)}.", code="animate.csv_missing_columns",
                             hint="A Live Link Face CSV has all 52 ARKit blendshapes (and the nine rotations).")
    n_val = len(cols)
    values = np.empty((len(rows) - 1, n_val))
    stamps = []
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != n_val + 2:
            raise AnimationError(f"Row {i} has {len(r)} fields; the header has {n_val + 2}.", code="animate.csv_count")
        try:
            count = int(r[1])
        except ValueError:
            raise AnimationError(f"Row {i}: BlendShapeCount {r[1]!r} is not a number.", code="animate.csv_count") \
                from None
        if count != n_val:
            raise AnimationError(f"Row {i}: BlendShapeCount is {count} but {n_val} value columns follow.",
                                 code="animate.csv_count")
        try:
            values[i - 2] = [float(c) for c in r[2:]]
        except ValueError:
            bad = next(c for c in r[2:] if not _is_float(c))
            raise AnimationError(f"Row {i}: {bad!r} is not a number.", code="animate.csv_nan") from None
        if not np.isfinite(values[i - 2]).all():
            col = cols[int(np.flatnonzero(~np.isfinite(values[i - 2]))[0])]
            raise AnimationError(f"Row {i}: {col} is {r[2 + cols.index(col)]} (not a finite number).",
                                 code="animate.csv_nan")
        stamps.append(_parse_timecode(r[0], i))
    drop = stamps[0][5]
    if any(s[5] != drop for s in stamps):
        raise AnimationError("The timecodes mix drop-frame (;) and non-drop-frame (:) labels.",
                             code="animate.csv_timecode")
    fps = _frame_rate(stamps, fps, drop)
    nominal = nominal_rate(fps)
    frames = np.empty(len(stamps))
    for i, (h, m, s, f, frac, _) in enumerate(stamps):
        try:
            frames[i] = timecode_to_frame(h, m, s, f, nominal, drop) + frac
        except ValueError:
            raise AnimationError(f"Row {i + 2}: timecode {h:02d}:{m:02d}:{s:02d}:{f:02d} does not exist at "
                                 f"{fps:g} fps{' drop frame' if drop else ''}.", code="animate.csv_timecode") from None
    if np.any(np.diff(frames) <= 0):
        i = int(np.flatnonzero(np.diff(frames) <= 0)[0]) + 3
        raise AnimationError(f"Row {i}: the timecode does not advance.", code="animate.csv_timecode")
    idx = {c: k for k, c in enumerate(canon)}
    weights = values[:, [idx[n] for n in ARKIT_52]]
    rot = {}
    if rot_present:
        r9 = values[:, [idx[c] for c in ROTATION_COLUMNS]]
        rot = {"head": r9[:, 0:3], "eye_left": r9[:, 3:6], "eye_right": r9[:, 6:9]}
    start = int(math.floor(frames[0]))
    times = (frames - start) / fps
    return Take(times=times, names=ARKIT_52, weights=weights, fps=fps, drop_frame=drop,
                start_timecode=frame_to_timecode(start, nominal, drop), name="Take",
                info={"format": "livelink_csv", "start_subframe": float(frames[0] - start)}, **rot)


def _is_float(c: str) -> bool:
    try:
        float(c)
    except ValueError:
        return False
    return True


def _frame_rate(stamps, fps, drop) -> float:
    maxf = max(s[3] for s in stamps)
    if fps is not None:
        if not (fps > 0) or not (23 <= fps <= 61):
            raise AnimationError(f"Frame rate {fps} is outside Live Link Face's 24–60 fps.", code="animate.csv_fps")
        if maxf >= nominal_rate(fps):
            raise AnimationError(f"Frame label {maxf} does not exist at {fps:g} fps.", code="animate.csv_fps")
        if drop and nominal_rate(fps) not in (30, 60):
            raise AnimationError(f"Drop-frame timecode needs 29.97 or 59.94 fps, not {fps:g}.",
                                 code="animate.csv_fps")
        return float(fps)
    secs = {(s[0], s[1], s[2]) for s in stamps}
    if len(secs) < 2:
        raise AnimationError("The take is shorter than a second: its frame rate cannot be read from the timecodes.",
                             code="animate.csv_fps", hint="Pass the frame rate (--fps, or the import option).")
    nominal = next((r for r in NOMINAL_RATES if r > maxf), None)
    if nominal is None:
        raise AnimationError(f"Frame label {maxf} is above 59: not a 24–60 fps timecode.", code="animate.csv_fps")
    if drop:
        if nominal not in (30, 60):
            raise AnimationError(f"Drop-frame timecode at {nominal} fps does not exist.", code="animate.csv_fps")
        return nominal * 1000 / 1001
    return float(nominal)


# ---------------------------------------------------------------- write

def format_livelink_csv(take: Take) -> str:
    """The take as Live Link Face CSV text (values with 9 significant digits; rotations zero when absent)."""
    nominal = nominal_rate(take.fps)
    drop = bool(take.drop_frame) and nominal in (30, 60)
    start = 0
    if take.start_timecode:
        h, m, s, f, _, _ = _parse_timecode(take.start_timecode, 0)
        start = timecode_to_frame(h, m, s, f, nominal, drop)
    sub0 = float(take.info.get("start_subframe", 0.0))
    w = take.arkit_weights()
    rot = np.concatenate([getattr(take, r) if getattr(take, r) is not None else np.zeros((take.n_frames, 3))
                          for r in ("head", "eye_left", "eye_right")], axis=1)
    out = io.StringIO()
    wr = csv.writer(out, lineterminator="\n")
    wr.writerow(["Timecode", "BlendShapeCount"] + [csv_name(n) for n in ARKIT_52] + list(ROTATION_COLUMNS))
    for i, t in enumerate(take.times):
        fr = start + sub0 + t * take.fps
        whole = int(math.floor(fr + 5e-7))
        ms = int(round(max(fr - whole, 0.0) * 1000))
        if ms == 1000:
            whole, ms = whole + 1, 0
        tc = frame_to_timecode(whole, nominal, drop) + f".{ms:03d}"
        wr.writerow([tc, 52 + 9] + [f"{v:.9g}" for v in w[i]] + [f"{v:.9g}" for v in rot[i]])
    return out.getvalue()


def write_livelink_csv(take: Take, path) -> Path:
    """Write atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(format_livelink_csv(take), encoding="utf-8")
    return path
