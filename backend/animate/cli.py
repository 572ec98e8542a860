"""`headforge animate VIDEO|TAKE -o take.csv`: a face video tracked into a Live Link Face CSV (or a CSV/glTF take
converted and resampled)."""
from __future__ import annotations

import signal
import threading
from pathlib import Path

from ..errors import HeadForgeError
from ..events import CancelToken, ProgressEvent


def add_parser(subparsers) -> None:
    a = subparsers.add_parser("animate", help="track a face video into ARKit weights (Live Link Face CSV)")
    a.add_argument("input", help="face video (MP4, MOV, MKV, AVI, WebM), or a take (.csv / .glb) to convert")
    a.add_argument("-o", "--output", required=True, help="Live Link Face CSV to write")
    a.add_argument("--smoothing", type=float, default=0.5,
                   help="temporal smoothing strength 0..1 (0: none; blinks are kept) (default 0.5)")
    a.add_argument("--fps", type=float, help="resample the take to this frame rate (default: the input's)")
    a.add_argument("--max-frames", type=int, help="track only the first N frames")
    a.add_argument("--focal-px", type=float, help="the camera's focal length in pixels (default: 25° field of view)")


def cmd_animate(args, report) -> int:
    from .livelink import write_livelink_csv

    src = Path(args.input)
    if not 0.0 <= args.smoothing <= 1.0:
        raise HeadForgeError(f"--smoothing {args.smoothing}: choose a value from 0 to 1.", code="cli.bad_option")
    cancel = CancelToken()
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGINT, lambda *_: cancel.cancel())
    try:
        report(ProgressEvent("stage_start", "animate", message=src.name))
        if src.suffix.lower() in (".csv", ".glb", ".gltf"):
            from .gltf_take import read_gltf_take
            from .livelink import read_livelink_csv

            take = read_livelink_csv(src) if src.suffix.lower() == ".csv" else read_gltf_take(src)
        else:
            from .track import track_video

            take = track_video(src, smoothing=args.smoothing, max_frames=args.max_frames, focal_px=args.focal_px,
                               on_event=report, cancel=cancel)
        if args.fps:
            take = take.resample(args.fps)
        out = write_livelink_csv(take, args.output)
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
    lost = take.info.get("lost_frames", [])
    summary = {"output": str(out), "frames": take.n_frames, "fps": take.fps, "seconds": round(take.duration, 3),
               "lost_frames": len(lost), "timing": take.info.get("timing", {})}
    report(ProgressEvent("stage_done", "animate", fraction=1.0, overall=1.0,
                         message=f"{take.n_frames} frames → {out}", data=summary))
    if not args.json:
        report.print(f"wrote {out}: {take.n_frames} frames at {take.fps:g} fps"
                     + (f"; no face in {len(lost)} frames (held, then eased)" if lost else ""))
    return 0
