"""`forensics tracking sync`: push the runs kept offline while the tracking server was down back to it
(forensics.tracking.sync; imports deferred so `--help` stays fast)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

EXAMPLES = """\
examples:
  forensics tracking sync                                  # to MLFLOW_TRACKING_URI, from ./mlruns-offline
  forensics tracking sync --to http://tracking:5000 --offline-dir /data/job7/mlruns-offline
  forensics tracking sync --json                           # what was copied, for scripts

A run that went offline mid-run is completed in the run it started as on the server; others become new runs
of the same experiment. Running it again copies nothing twice. Aliases set offline are listed, not copied.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("tracking", help="tracking store chores: sync offline runs back to the server",
                       description="Chores on the MLflow tracking store. `sync` copies the runs that went to the "
                                   "local fallback store (./mlruns-offline) while the server was down back to the "
                                   "server: params, tags, every metric point, artifacts and model versions.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["sync"])
    p.add_argument("--to", default=None, metavar="URI",
                   help="the tracking server (default: MLFLOW_TRACKING_URI)")
    p.add_argument("--offline-dir", default=None, metavar="DIR",
                   help="the fallback store's folder (default: FORENSICS_MLFLOW_OFFLINE_DIR, else ./mlruns-offline)")
    p.add_argument("--json", action="store_true", help="print what was copied as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from forensics.tracking import offline
    from forensics.tracking.sync import SyncError, default_target, describe, sync_offline

    target = args.to or default_target()
    if not target:
        print("forensics tracking: no server to sync to: pass --to URI or set MLFLOW_TRACKING_URI to the server",
              file=sys.stderr)
        return 2
    source = f"sqlite:///{Path(args.offline_dir).resolve() / 'mlflow.db'}" if args.offline_dir else None
    offline.prepare_uri(target)
    try:
        result = sync_offline(target, source)
    except SyncError as exc:
        print(f"forensics tracking: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print("\n".join(describe(result, target)))
    return 0
