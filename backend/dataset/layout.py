"""The dataset folder's layout (the contract the builder, `headforge train` and `headforge evaluate` share) and its
check.

    DATASET/manifest.json   {"format": "headforge-dataset", "version": 1, "size": 512, "sequences": [{"id",
                             "split": train|val|test, "identity", "source", "licence", "kind": ict|mesh}]}
    DATASET/<id>/views/     a views folder (backend/views.py): NNN.png RGBA + cameras.json, the 96 rig cameras
    DATASET/<id>/meta.json  {"identity_embedding": [...] | null, "identity_model", "expression": {ARKit: w},
                             "source", "licence", "skin_tone", ...}
    DATASET/<id>/landmarks.json  {"size": S, "points": ..., "searched": N, "views": {"<cameras.json index>":
                             [[x, y], ...]}}: the expression points the training's loss reads (landmarks.py)

Splits are by identity: every sequence of one identity is in the same split.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import cameras
from ..errors import HeadForgeError
from ..headmodel.arkit import ARKIT_52

FORMAT, VERSION = "headforge-dataset", 1
SPLITS = ("train", "val", "test")
KINDS = ("ict", "mesh")
FRONTAL_VIEW = cameras.view_index(cameras.INPUT_RING, 0)  # elevation 0, azimuth 0: the view the identity is taken from
N_VIEWS = len(cameras.ELEVATIONS_DEG) * cameras.VIEWS_PER_RING
LANDMARKS_FILE = "landmarks.json"


def sequence_dir(root, seq_id: str) -> Path:
    return Path(root) / seq_id


def views_dir(root, seq_id: str) -> Path:
    return Path(root) / seq_id / "views"


class DatasetError(HeadForgeError):
    """A dataset folder that cannot be used (its manifest, views or sequences)."""

    code = "dataset.bad"


def read_manifest(root, code: str = "dataset.bad_manifest") -> dict:
    """DATASET/manifest.json, checked to be a HeadForge dataset manifest (format and a `sequences` list); else a
    DatasetError with `code` (the reading command's). `check_dataset` lists every fault of a folder instead."""
    path = Path(root) / "manifest.json"
    try:
        man = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path} is unreadable ({e}).", code=code) from e
    if not isinstance(man, dict) or man.get("format") != FORMAT or not isinstance(man.get("sequences"), list):
        raise DatasetError(f"{path} is not a HeadForge dataset manifest (format {FORMAT!r} with a `sequences` list).",
                           code=code, hint="make the dataset with `headforge dataset build` or check it with "
                           "`headforge dataset check`")
    return man


def assign_splits(identities, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> dict[str, str]:
    """{identity: split}: identities ranked by a hash of (seed, identity), the first ≈10 % test, the next ≈10 % val,
    the rest train; with 2 identities or more, test gets at least one, with 3 or more val too."""
    ids = sorted(set(identities), key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
    n = len(ids)
    n_test = max(1 if n >= 2 else 0, round(fractions[2] * n))
    n_val = max(1 if n >= 3 else 0, round(fractions[1] * n))
    out = {}
    for k, ident in enumerate(ids):
        out[ident] = "test" if k < n_test else "val" if k < n_test + n_val else "train"
    return out


@dataclass
class Problem:
    code: str
    where: str  # the file or sequence the problem is in
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        return f"{self.severity} [{self.code}] {self.where}: {self.message}"

    def to_dict(self) -> dict:
        return {"code": self.code, "where": self.where, "message": self.message, "severity": self.severity}


def check_dataset(root, *, images: bool = True, camera_tol: float = 1e-5, progress=lambda f, m: None) -> list[Problem]:
    """Every way the folder at `root` departs from the layout: manifest fields, splits by identity, each sequence's
    views (96 RGBA images of the manifest's size with a non-empty mask, the rig's cameras within `camera_tol`) and
    meta.json. `images` False: files' presence only, no decoding."""

    root = Path(root)
    out: list[Problem] = []
    mpath = root / "manifest.json"
    man, problem = _read_json(mpath, "dataset.no_manifest", "dataset.bad_manifest", "manifest.json is missing: not a "
                              "dataset folder.")
    if problem:
        return [problem]
    if not isinstance(man, dict):
        return [Problem("dataset.bad_manifest", str(mpath), "the manifest is not a JSON object.")]
    if man.get("format") != FORMAT:
        out.append(Problem("dataset.bad_format", str(mpath), f'"format" is {man.get("format")!r}, not {FORMAT!r}.'))
    if man.get("version") != VERSION:
        out.append(Problem("dataset.bad_version", str(mpath),
                           f'"version" is {man.get("version")!r}; this reads {VERSION}.'))
    size = man.get("size")
    if not isinstance(size, int) or size < 8:
        out.append(Problem("dataset.bad_size", str(mpath), f'"size" is {size!r}, not an image size in pixels.'))
        size = None
    seqs = man.get("sequences")
    if not isinstance(seqs, list) or not seqs:
        out.append(Problem("dataset.no_sequences", str(mpath), '"sequences" is missing or empty.'))
        return out
    seen, split_of = set(), {}
    expected = cameras.rig_cameras(size) if size else None
    for n, s in enumerate(seqs):
        where = f"manifest.json sequences[{n}]"
        if not isinstance(s, dict):
            out.append(Problem("dataset.bad_sequence", where, "not a JSON object."))
            continue
        missing = [k for k in ("id", "split", "identity", "source", "licence", "kind") if not s.get(k)]
        if missing:
            out.append(Problem("dataset.sequence_fields", where, f"lacks {', '.join(missing)}."))
        sid = s.get("id")
        if not isinstance(sid, str) or not sid or "/" in sid or "\\" in sid or sid.startswith("."):
            out.append(Problem("dataset.bad_id", where, f"id {sid!r} is not a folder name."))
            continue
        where = f"sequence {sid}"
        if sid in seen:
            out.append(Problem("dataset.duplicate_id", where, "listed twice in the manifest."))
        seen.add(sid)
        if s.get("split") not in SPLITS:
            out.append(Problem("dataset.bad_split", where,
                               f"split {s.get('split')!r} is not one of {', '.join(SPLITS)}."))
        if s.get("kind") not in KINDS:
            out.append(Problem("dataset.bad_kind", where, f"kind {s.get('kind')!r} is not one of {', '.join(KINDS)}."))
        ident = s.get("identity")
        if ident and s.get("split") in SPLITS:
            if split_of.setdefault(ident, s["split"]) != s["split"]:
                out.append(Problem("dataset.identity_leak", where, f"identity {ident!r} is in both the "
                                   f"{split_of[ident]} and the {s['split']} split."))
        out += _check_sequence(root, sid, s, size, expected, images, camera_tol)
        progress((n + 1) / len(seqs), f"checked {sid}")
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if d.name not in seen:
            out.append(Problem("dataset.unlisted_sequence", str(d), "a sequence folder the manifest does not list.",
                               "warning"))
    return out


def _check_sequence(root: Path, sid: str, s: dict, size, expected, images: bool, tol: float) -> list[Problem]:
    from PIL import Image

    out: list[Problem] = []
    vdir = views_dir(root, sid)
    cpath = vdir / "cameras.json"
    if not cpath.is_file():
        return [Problem("dataset.missing_cameras", str(cpath), "views/cameras.json is missing (unfinished sequence?).")]
    try:
        cams = cameras.load_cameras_json(cpath)
    except (ValueError, KeyError, TypeError) as e:
        return [Problem("dataset.bad_cameras", str(cpath), f"unreadable ({e}).")]
    if len(cams) != N_VIEWS:
        out.append(Problem("dataset.view_count", str(cpath), f"lists {len(cams)} views, not the rig's {N_VIEWS}."))
    by_index = {int(c.get("index", -1)): c for c in cams}
    if expected is not None:
        for e in expected:
            c = by_index.get(e["index"])
            if c is None:
                out.append(Problem("dataset.missing_camera", str(cpath), f"no camera for view {e['index']}."))
                continue
            if (int(c.get("width", -1)), int(c.get("height", -1))) != (size, size):
                out.append(Problem("dataset.camera_size", str(cpath), f"view {e['index']} is "
                                   f"{c.get('width')}×{c.get('height')}, the manifest says {size}."))
            elif not (np.allclose(c["K"], e["K"], atol=tol * size) and np.allclose(c["w2c"], e["w2c"], atol=tol)):
                out.append(Problem("dataset.not_rig_camera", str(cpath), f"view {e['index']} is not the rig's camera "
                                   f"(elevation {e['elevation']:g}°, azimuth {e['azimuth']:g}°)."))
    for c in cams:
        try:
            p = cameras.view_file(vdir, c)
        except Exception as e:  # noqa: BLE001  (JobError: a name leading outside the folder)
            out.append(Problem("dataset.bad_view_file", str(cpath), str(e)))
            continue
        if not p.is_file():
            out.append(Problem("dataset.missing_view", str(p), "listed in cameras.json but missing."))
            continue
        if not images:
            continue
        try:
            img = Image.open(p)
            img.load()
        except OSError as e:
            out.append(Problem("dataset.bad_view", str(p), f"unreadable image ({e})."))
            continue
        if img.mode != "RGBA":
            out.append(Problem("dataset.no_alpha", str(p), f"mode {img.mode}, not RGBA (the mask is the alpha)."))
            continue
        if size and img.size != (size, size):
            out.append(Problem("dataset.view_size", str(p), f"{img.size[0]}×{img.size[1]}, not {size}×{size}."))
        if int(np.asarray(img)[..., 3].max()) == 0:
            out.append(Problem("dataset.empty_view", str(p), "fully transparent: nothing rendered."))
    out += _check_meta(sequence_dir(root, sid) / "meta.json", s)
    out += _check_landmarks(sequence_dir(root, sid) / LANDMARKS_FILE, size, set(by_index))
    return out


def _read_json(path: Path, missing: str, bad: str, missing_message: str):
    """(the file's JSON, None), or (None, the Problem: absent or not JSON)."""
    if not path.is_file():
        return None, Problem(missing, str(path), missing_message)
    try:
        return json.loads(path.read_text()), None
    except ValueError as e:
        return None, Problem(bad, str(path), f"not valid JSON ({e}).")


def _check_meta(path: Path, s: dict) -> list[Problem]:
    meta, problem = _read_json(path, "dataset.missing_meta", "dataset.bad_meta", "meta.json is missing.")
    if problem:
        return [problem]
    out = []
    emb = meta.get("identity_embedding", "absent")
    if emb == "absent":
        out.append(Problem("dataset.meta_fields", str(path), '"identity_embedding" is missing (null when none).'))
    elif emb is not None:
        ok = isinstance(emb, list) and len(emb) > 0 and all(isinstance(x, (int, float)) for x in emb)
        if not ok or not np.all(np.isfinite(np.asarray(emb, np.float64))):
            out.append(Problem("dataset.bad_embedding", str(path),
                               "identity_embedding is not a list of finite numbers."))
        if not meta.get("identity_model"):
            out.append(Problem("dataset.meta_fields", str(path), "an identity_embedding without identity_model."))
    expr = meta.get("expression")
    if not isinstance(expr, dict):
        out.append(Problem("dataset.meta_fields", str(path), '"expression" must be an object {ARKit name: weight}.'))
    else:
        bad = [k for k, w in expr.items() if k not in ARKIT_52 or not isinstance(w, (int, float)) or not 0 <= w <= 1]
        if bad:
            out.append(Problem("dataset.bad_expression", str(path), f"not ARKit names with weights in 0..1: "
                               f"{', '.join(map(str, bad[:5]))}."))
    for k in ("source", "licence"):
        if not meta.get(k):
            out.append(Problem("dataset.meta_fields", str(path), f'"{k}" is missing.'))
        elif s.get(k) and meta[k] != s[k]:
            out.append(Problem("dataset.meta_mismatch", str(path), f'"{k}" differs from the manifest\'s.'))
    return out


def _check_landmarks(path: Path, size, indices: set[int]) -> list[Problem]:
    """landmarks.json: optional (without it the training finds the expression points with MediaPipe on every target
    frame; a dataset made elsewhere may lack it), but where it is, what the training's expression loss reads from it
    must hold: views keyed by this sequence's cameras, each the same number of finite [x, y] pixels inside an S-px
    view."""
    if not path.is_file():
        return []
    data, problem = _read_json(path, "dataset.bad_landmarks", "dataset.bad_landmarks", "")
    if problem:
        return [problem]
    if not isinstance(data, dict) or not isinstance(data.get("views"), dict):
        return [Problem("dataset.bad_landmarks", str(path), 'not an object with a "views" object.')]
    s = data.get("size")
    if not isinstance(s, int) or isinstance(s, bool) or s < 8:
        return [Problem("dataset.bad_landmarks", str(path), f'"size" is {s!r}, not the views\' size in pixels.')]
    out = []
    if size and s != size:  # the loss rescales, so another size is only a warning
        out.append(Problem("dataset.landmarks_size", str(path), f"points for {s}-px views; the manifest says {size}.",
                           "warning"))
    counts, bad = set(), []
    for key, pts in data["views"].items():
        arr = np.asarray(pts, dtype=object)
        ok = key.isdigit() and int(key) in indices and arr.ndim == 2 and arr.shape[0] > 0 and arr.shape[1] >= 2
        if ok:
            try:
                xy = arr[:, :2].astype(np.float64)
            except (TypeError, ValueError):
                ok = False
            else:
                ok = bool(np.isfinite(xy).all() and (xy >= 0).all() and (xy <= s).all())
                counts.add(arr.shape[0])
        if not ok:
            bad.append(key)
    if bad:
        out.append(Problem("dataset.bad_landmarks", str(path), f"views {', '.join(sorted(bad)[:5])}: not a camera of "
                           f"this sequence with a list of finite [x, y] pixels inside the {s}-px view."))
    if len(counts) > 1:
        out.append(Problem("dataset.bad_landmarks", str(path), f"views hold different numbers of points "
                           f"({', '.join(map(str, sorted(counts)))}): one point set per dataset."))
    return out
