"""`forensics bench`: run a benchmark suite (YAML) and record its results, or list the shipped suites."""
from __future__ import annotations

import argparse
import json
import sys

EXAMPLES = """\
examples:
  forensics bench list
  forensics bench run cross-generator               # benchmarks/suites/cross-generator.yaml
  forensics bench run robustness --device cuda
  forensics bench run my_suite.yaml --out /tmp/results --json

Writes OUT/<name>.json and OUT/<name>.md (default OUT: benchmarks/results) and logs one MLflow run to the
`benchmarks` experiment. Interrupted? Run the same command again: finished cells (kept in
WORK/cells.jsonl, default runs/bench/<name>) are reused; --fresh recomputes them.
Exit status: 0 every cell finished, 1 some cell failed (the others are still recorded), 2 usage error.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="run benchmark suites (cross-generator, robustness, speed)",
                       description="Benchmark suites: cross-generator generalisation, robustness to "
                                   "degradations, detection speed.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_subparsers(dest="bench_command", metavar="ACTION")
    r = what.add_parser("run", help="run one suite", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("suite", help="a suite YAML file, or the name of a shipped suite (see: forensics bench list)")
    r.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    r.add_argument("--work", default=None, help="working folder: fakes, detectors, cell log "
                                                 "(default: the suite's `work`, else runs/bench/<name>)")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    r.add_argument("--fresh", action="store_true", help="recompute every cell instead of reusing finished ones")
    r.add_argument("--json", action="store_true", help="print the results JSON instead of the tables")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=run_command)
    ls = what.add_parser("list", help="list the shipped suites")
    ls.set_defaults(func=list_command)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def list_command(args) -> int:
    from benchmarks.runner import list_suites

    suites = list_suites()
    width = max((len(name) for name, _, _ in suites), default=0)
    for name, description, _ in suites:
        print(f"{name:<{width}}  {description}")
    return 0


def run_command(args) -> int:
    from benchmarks.fakes import MissingGeneratorError
    from benchmarks.runner import load_suite, run_suite
    from benchmarks.suites import SuiteError

    if args.device not in ("auto", "cpu", "cuda") and not args.device.startswith("cuda:"):
        return _usage(f"--device must be auto, cpu or cuda, got {args.device!r}")
    command = "forensics bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else ["run", args.suite])
    try:
        suite = load_suite(args.suite)
        document = run_suite(suite, out_dir=args.out, work_dir=args.work, device=args.device, fresh=args.fresh,
                             command=command, progress=not args.quiet)
    except (SuiteError, MissingGeneratorError) as exc:
        return _usage(str(exc))
    except ValueError as exc:       # a bad input the suite names (world, checkpoint, detector): one line
        return _usage(" ".join(str(exc).split()))
    if args.json:
        print(json.dumps(document, indent=2, default=str))
    else:
        print(open(document["files"]["markdown"], encoding="utf-8").read())
        print(f"-> {document['files']['json']}, {document['files']['markdown']}")
    if document["failed_cells"]:
        print(f"forensics bench: {len(document['failed_cells'])} cell(s) failed (see {document['files']['markdown']})",
              file=sys.stderr)
        return 1
    return 0


def _usage(message: str) -> int:
    print(f"forensics bench: {message}", file=sys.stderr)
    return 2
