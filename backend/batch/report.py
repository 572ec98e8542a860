"""OUT/report.html (self-contained: every picture embedded as base64) and OUT/report.csv, one row per job,
failed jobs first: the photo, front and three-quarter renders of the head, status and error code, warnings,
timings. Renders are kept in OUT/report_files/ (keyed by the head file's hash) so a re-made report is quick."""
from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from ..fileio import sha256_file, write_bytes
from .render import VIEWS, head_file, render_job
from .state import DONE, FAILED, PENDING, STATE_NAME

THUMB = 224
ORDER = {FAILED: 0, PENDING: 1, "running": 1, DONE: 2}


def _jpeg(img: np.ndarray | None, quality: int = 85) -> bytes | None:
    from PIL import Image

    if img is None:
        return None
    buf = io.BytesIO()
    Image.fromarray(img).convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _photo_thumb(job_dir: Path, photo: str | None) -> np.ndarray | None:
    """The job's own copy of the photo (input/portrait.png), else the original file; None when unreadable."""
    from PIL import Image, ImageOps

    for p in (job_dir / "input" / "portrait.png", Path(photo) if photo else None):
        if p is None or not p.is_file():
            continue
        try:
            with Image.open(p) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((THUMB, THUMB))
                return np.asarray(im)
        except (OSError, SyntaxError, ValueError):
            continue
    return None


def _renders(out: Path, name: str) -> dict[str, Path]:
    """{view: PNG path} of the job's head renders, made when absent or when the head file changed."""
    from PIL import Image

    glb = head_file(out / name)
    if glb is None:
        return {}
    key = sha256_file(glb)[:12]
    folder = out / "report_files"
    paths = {v: folder / f"{name}.{v}.{key}.png" for v in VIEWS}
    if not all(p.is_file() for p in paths.values()):
        for old in folder.glob(f"{name}.*.png") if folder.is_dir() else ():
            if old.name.split(".")[-2] != key:
                old.unlink(missing_ok=True)
        try:
            pictures = render_job(out / name, THUMB)
        except Exception:  # noqa: BLE001  (a head the renderer cannot read must not cost the whole report)
            pictures = {}
        for view, img in pictures.items():
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="PNG")
            write_bytes(paths[view], buf.getvalue())
    return {v: p for v, p in paths.items() if p.is_file()}


def _stage_seconds(job_dir: Path) -> dict[str, float]:
    try:
        stages = json.loads((job_dir / "job.json").read_text()).get("stages", {})
    except (OSError, ValueError):
        return {}
    return {n: s["seconds"] for n, s in stages.items() if isinstance(s, dict) and "seconds" in s}


def report_rows(out: Path) -> list[dict]:
    """One dict per job of OUT/batch.json, failed first, then unfinished, then done (each in batch order)."""
    state = json.loads((out / STATE_NAME).read_text())
    jobs = state["jobs"]
    order = [n for n in state.get("order", jobs) if n in jobs]
    rows = []
    for i, name in enumerate(order):
        job = jobs[name]
        err = job.get("error") or {}
        warnings = job.get("warnings") or []
        rows.append({
            "job": name, "status": job["status"], "error_code": err.get("code", "") if job["status"] != DONE else "",
            "error": err.get("message", "") if job["status"] != DONE else "",
            "hint": (err.get("hint") or "") if job["status"] != DONE else "",
            "warnings": "; ".join(f"{w['code']}: {w['message']}" for w in warnings),
            "warning_codes": " ".join(dict.fromkeys(w["code"] for w in warnings)),
            "warning_list": [f"{w['code']}: {w['message']}" for w in warnings],
            "seconds": job.get("seconds"), "attempts": job.get("attempts", 0),
            "stage_seconds": _stage_seconds(out / name), "photo": job.get("photo", ""),
            "job_dir": str(out / name), "_i": i})
    rows.sort(key=lambda r: (ORDER.get(r["status"], 1), r["_i"]))
    return rows


def write_report(out) -> Path:
    """Write OUT/report.html and OUT/report.csv from OUT/batch.json and the job folders; returns the HTML path."""
    out = Path(out)
    rows = report_rows(out)
    stage_names = list(dict.fromkeys(s for r in rows for s in r["stage_seconds"]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["job", "status", "error_code", "error", "hint", "warning_codes", "warnings", "seconds", "attempts",
                *[f"{s}_s" for s in stage_names], "photo", "job_dir", *[f"{v}_render" for v in VIEWS]])
    body = []
    for r in rows:
        renders = _renders(out, r["job"]) if r["status"] == DONE else {}
        w.writerow([r["job"], r["status"], r["error_code"], r["error"], r["hint"], r["warning_codes"], r["warnings"],
                    r["seconds"] if r["seconds"] is not None else "", r["attempts"],
                    *[r["stage_seconds"].get(s, "") for s in stage_names], r["photo"], r["job_dir"],
                    *[str(renders.get(v, "")) for v in VIEWS]])
        body.append(_html_row(r, _photo_thumb(Path(r["job_dir"]), r["photo"]), renders, stage_names))
    write_bytes(out / "report.csv", buf.getvalue().encode("utf-8"))
    counts = {s: sum(r["status"] == s for r in rows) for s in (DONE, FAILED, PENDING)}
    page = _PAGE.format(title=html.escape(f"HeadForge batch: {out.name}"), out=html.escape(str(out)),
                        total=len(rows), done=counts[DONE], failed=counts[FAILED], pending=counts[PENDING],
                        warned=sum(bool(r["warning_codes"]) for r in rows), rows="\n".join(body))
    path = out / "report.html"
    write_bytes(path, page.encode("utf-8"))
    return path


def _img(data: bytes | None, alt: str) -> str:
    if not data:
        return f'<div class="none">{html.escape(alt)}</div>'
    return f'<img alt="{html.escape(alt)}" src="data:image/jpeg;base64,{base64.b64encode(data).decode()}">'


def _html_row(r: dict, photo: np.ndarray | None, renders: dict[str, Path], stage_names: list[str]) -> str:
    from PIL import Image

    pics = [_img(_jpeg(photo), "no readable photo")]
    for v in VIEWS:
        p = renders.get(v)
        pics.append(_img(_jpeg(np.asarray(Image.open(p).convert("RGB"))) if p else None,
                         "no head" if r["status"] != DONE else "not rendered"))
    status = html.escape(r["status"]) + (f'<br><code>{html.escape(r["error_code"])}</code>' if r["error_code"] else "")
    detail = html.escape(r["error"]) + (f'<br><i>{html.escape(r["hint"])}</i>' if r["hint"] else "")
    warns = "".join(f"<li>{html.escape(x)}</li>" for x in r["warning_list"])
    times = ", ".join(f"{s} {r['stage_seconds'][s]:.1f} s" for s in stage_names if s in r["stage_seconds"])
    total = f"{r['seconds']:.1f} s" if isinstance(r["seconds"], (int, float)) else ""
    return (f'<tr class="{html.escape(r["status"])}"><td class="name">{html.escape(r["job"])}<br>'
            f'<small>{html.escape(Path(r["photo"]).name)}</small></td>'
            + "".join(f"<td>{p}</td>" for p in pics)
            + f'<td class="st">{status}</td><td>{detail}<ul>{warns}</ul></td>'
            f'<td>{total}<br><small>{html.escape(times)}</small><br><small>attempts {r["attempts"]}</small></td></tr>')


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 6px; vertical-align: top; text-align: left; }}
td img {{ width: 160px; height: auto; display: block; border-radius: 4px; }}
.none {{ width: 160px; height: 160px; background: #f3f3f3; color: #999; display: flex; align-items: center;
  justify-content: center; border-radius: 4px; }}
tr.failed {{ background: #fff0f0; }} tr.pending, tr.running {{ background: #fffbe8; }}
.st code {{ color: #b00; }} ul {{ margin: 4px 0; padding-left: 1.2em; color: #8a5a00; }}
#broken {{ display: none; color: #b00; font-weight: bold; }}
</style></head>
<body data-images="0" data-images-decoded="0">
<h1>{title}</h1>
<p>{out}: {total} jobs — {done} done, {failed} failed, {pending} not finished; {warned} with warnings.</p>
<p id="broken">Some pictures of this report could not be shown.</p>
<table><thead><tr><th>job</th><th>photo</th><th>front</th><th>three-quarter</th><th>status</th>
<th>error / warnings</th><th>time</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script>
// Counts the pictures the browser decoded, and says so when one could not be shown.
window.addEventListener("load", function () {{
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) {{ return i.complete && i.naturalWidth > 0; }}).length;
  document.body.dataset.images = imgs.length;
  document.body.dataset.imagesDecoded = ok;
  if (ok < imgs.length) document.getElementById("broken").style.display = "block";
}});
</script>
</body></html>
"""
