"""`headforge models list | download ID | verify [ID] | path ID`."""
from __future__ import annotations

import json
import re
import signal
import threading

from ..errors import ModelMissingError
from ..events import CancelToken
from . import download, registry, store


def add_parser(subparsers) -> None:
    m = subparsers.add_parser("models", help="list, download, verify and locate model weights")
    m.add_argument("--root", help="models folder (default: $HEADFORGE_MODELS or ~/.cache/headforge/models)")
    msub = m.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="every registry asset: status, size, licence, whether terms must be accepted")
    d = msub.add_parser("download", help="fetch (or import with --from) one asset, resuming a partial download")
    d.add_argument("id", nargs="+", help="registry id(s), e.g. yunet insightface-buffalo_m")
    d.add_argument("--from", dest="from_folder", metavar="FOLDER",
                   help="local-folder mode: copy the files from this folder instead of downloading")
    d.add_argument("--accept-terms", action="store_true",
                   help="you have read and accept the licence of an asset that needs consent (non-commercial, gated)")
    v = msub.add_parser("verify", help="hash the installed files against the known or pinned sha256")
    v.add_argument("id", nargs="?", help="one asset (default: all)")
    p = msub.add_parser("path", help="print the folder that holds an installed asset")
    p.add_argument("id")


def _size(asset) -> str:
    if asset.size:
        return f"{asset.size / 1e6:.1f} MB"
    m = re.search(r"([\d.]+ [KMGT]B)", asset.approx_size)
    return f"~{m.group(1)}" if m else "unknown"


def cmd_models(args, report) -> int:
    root = args.root
    if args.models_command == "list":
        rows = []
        for asset in registry.ASSETS.values():
            check = store.check_asset(asset, root, deep=False)
            rows.append({**asset.to_dict(), "status": check["status"], "path": check["folder"]})
        if args.json:
            for r in rows:
                print(json.dumps(r), flush=True)
            return 0
        print(f"models folder: {store.models_root(root)}")
        print(f"{'id':<24} {'status':<11} {'size':<14} {'commercial':<11} {'terms':<6} hash")
        for r in rows:
            asset = registry.get(r["id"])
            terms = "never" if asset.user_supplied else ("ask" if asset.accept_terms else "-")
            print(f"{r['id']:<24} {r['status']:<11} {_size(asset)[:14]:<14} {asset.commercial:<11} {terms:<6} "
                  f"{asset.hash_state}")
        print("terms 'ask': the licence must be accepted (--accept-terms); 'never': user-supplied, never fetched."
              "\nhash 'pin on first verified download': no upstream sha256 is published; the first download's is "
              "recorded in pins.json and checked from then on.")
        return 0
    if args.models_command == "download":
        cancel = CancelToken()
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, lambda *a: cancel.cancel()) if main_thread else None
        try:
            for model_id in args.id:
                result = download.download(model_id, root=root, from_folder=args.from_folder,
                                           accept_terms=args.accept_terms, on_event=report, cancel=cancel)
                if not args.json:
                    print(f"{model_id}: {result['status']} in {result['folder']}")
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
        return 0
    if args.models_command == "verify":
        results = download.verify(args.id, root)
        bad = False
        for r in results:
            bad |= r["status"] in ("corrupt", "partial") or (args.id is not None and r["status"] != "present")
            if args.json:
                print(json.dumps(r), flush=True)
                continue
            print(f"{r['id']:<24} {r['status']}")
            for f in r["files"]:
                if r["status"] != "missing":
                    print(f"    {f['status']:<10} {f['name']}: {f['detail']}")
        return 1 if bad else 0
    if args.models_command == "path":
        asset = registry.get(args.id)
        found = registry.local_path(args.id, root)
        if found is None:
            raise ModelMissingError(f"{args.id} is not installed (looked in {store.asset_dir(asset, root)}).",
                                    hint=f"`headforge models download {args.id}`")
        print(json.dumps({"id": args.id, "path": str(found)}) if args.json else found)
        return 0
    raise AssertionError(args.models_command)
