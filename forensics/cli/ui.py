"""`forensics ui`: the MLflow UI on the project's tracking store (the one training logs to); the command line
it runs comes from forensics.tracking.ui (imported in `run`, so `--help` stays fast)."""
from __future__ import annotations

import argparse
import shlex
import sys

EXAMPLES = """\
examples:
  forensics ui                          # http://127.0.0.1:5000 on $MLFLOW_TRACKING_URI or ./mlflow.db
  forensics ui --port 5050 --host 0.0.0.0
  forensics ui --offline                # the local store runs fell back to when the server was down
  forensics ui --print-command          # show the mlflow command line instead of starting it

The store is the one training uses: MLFLOW_TRACKING_URI if set, else MLflow's default (a sqlite file
mlflow.db in the working directory). When MLFLOW_TRACKING_URI is already a server (http://...), there
is nothing to start: open that address.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("ui", help="open the MLflow UI on the project's tracking store",
                       description="Start `mlflow server` on the tracking store training logs to, and print its "
                                   "address. Ctrl-C stops it.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=5000, help="port to listen on (default 5000)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 for other machines)")
    p.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    p.add_argument("--offline", action="store_true",
                   help="show the local fallback store (./mlruns-offline) instead of the tracking URI")
    p.add_argument("--print-command", action="store_true", help="print the mlflow command line and exit")
    p.set_defaults(func=run)

    def one_line_error(message: str):
        print(f"forensics ui: {message} (see forensics ui --help)", file=sys.stderr)
        sys.exit(2)
    p.error = one_line_error


def run(args) -> int:
    from forensics.tracking.ui import browse_url, build_command, experiment_links, port_free, serve, store_uri

    if not 0 < args.port < 65536:
        return _usage(f"--port {args.port}: must be 1..65535")
    if args.workers < 1:
        return _usage("--workers must be at least 1")
    uri = store_uri(args.offline)
    if uri.startswith(("http://", "https://")):
        print(f"the tracking store is already a server: open {uri}")
        return 0
    try:
        command = build_command(uri, args.host, args.port, args.workers)
    except ValueError as exc:
        return _usage(str(exc))
    if args.print_command:
        print(shlex.join(command))
        return 0
    if not port_free(args.host, args.port):
        return _usage(f"port {args.port} on {args.host} is in use; pick another with --port")
    print(f"MLflow UI for {uri}: {browse_url(args.host, args.port)}  (Ctrl-C to stop)")
    links = experiment_links(uri, args.host, args.port)
    width = max((len(name) for name, _ in links), default=0)
    for name, link in links:
        print(f"  {name:<{width}}  {link}")
    if links:
        print("  (MLflow opens a new browser in its GenAI layout; these links, or 'Model training' at the top left, "
              "show runs and charts)")
    sys.stdout.flush()
    return serve(command)


def _usage(message: str) -> int:
    print(f"forensics ui: {message}", file=sys.stderr)
    return 2
