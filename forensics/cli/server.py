"""`forensics server start|stop|status`: a team MLflow tracking server on PostgreSQL, run from one folder
(forensics.tracking.teamserver; imports deferred so `--help` stays fast)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXAMPLES = """\
examples:
  forensics server start --dir /srv/tracking              # then: export MLFLOW_TRACKING_URI=http://127.0.0.1:5000
  forensics server start --dir /srv/tracking --host 0.0.0.0 --port 5000   # other machines too (add your own auth)
  forensics server status --dir /srv/tracking
  forensics server stop --dir /srv/tracking                # the data stays in the folder for the next start

Everything (train, coevolve, bench, detect's registry lookup, forensics ui) then uses the server through
MLFLOW_TRACKING_URI. While it is down, runs continue in the local fallback store (./mlruns-offline).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("server", help="a team MLflow tracking server on PostgreSQL (start, stop, status)",
                       description="Run MLflow's recommended team deployment from one folder: `mlflow server` with "
                                   "a PostgreSQL backend (Debian's postgresql, a cluster in DIR/pgdata) and an "
                                   "artifacts destination (DIR/artifacts).",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--dir", required=True, help="the folder holding the database, artifacts and logs")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5000, help="tracking server port (default 5000)")
    p.add_argument("--pg-port", type=int, default=5433, help="PostgreSQL port, on 127.0.0.1 (default 5433)")
    p.add_argument("--json", action="store_true", help="print the state as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from forensics.tracking import teamserver
    from forensics.tracking.ui import port_free

    folder = Path(args.dir)
    try:
        if args.action == "start":
            for name, port in (("--port", args.port), ("--pg-port", args.pg_port)):
                if not port_free("127.0.0.1", port):
                    print(f"forensics server: {name} {port} is in use; pick another", file=sys.stderr)
                    return 2
            state = teamserver.start(teamserver.ServerSpec(folder, args.host, args.port, args.pg_port))
            line = f"tracking server up: export MLFLOW_TRACKING_URI={state['url']}  (data in {folder.resolve()})"
        elif args.action == "stop":
            state = teamserver.stop(folder)
            line = f"tracking server at {state['url']} stopped; its data stays in {folder.resolve()}"
        else:
            state = teamserver.status(folder)
            line = (f"running at {state['url']} (PostgreSQL on 127.0.0.1:{state['pg_port']})" if state["running"]
                    else "not running" + (f" (last at {state['url']})" if state.get("url") else ""))
    except teamserver.ServerError as exc:
        print(f"forensics server: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(state, indent=2) if args.json else line)
    return 0 if args.action != "status" or state["running"] else 3
