"""`forensics bench`: run a benchmark suite (YAML) and record its results, or list the shipped suites."""
from __future__ import annotations

import argparse
import json
import sys

from forensics.cli.flags import deprecated

EXAMPLES = """\
examples:
  forensics bench list
  forensics bench run cross-generator               # benchmarks/suites/cross-generator.yaml
  forensics bench run robustness --device cuda
  forensics bench run robustness --world data/big --generator faceswap=runs/faceswap --model champion
  forensics bench run my_suite.yaml --out /tmp/results --json
  forensics bench run protocol --data-root /data --device cuda   # FF++ -> CDF, DFD, DFDC, DFDCP (DeepfakeBench)

Inputs: each of the world, the generator checkpoints and the detector (--model) comes from the flag if given, else from
the suite file if that path exists, else from what `make demo` wrote (demo/synth, demo/generators/FAMILY, the
registered champion); real datasets only from --data-root or the suite file. The suite prints what it took first,
and keeps it in the results JSON.
Sizes: a suite asks for so many real and fake videos per split. If the world holds fewer it stops and says so;
--allow-smaller runs anyway and marks every figure that rests on fewer videos (a dagger in the tables).

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
    r.add_argument("--world", default=None, metavar="DIR", help="the synthetic world to use (default: the suite's, "
                                                                 "else make demo's DEMO/synth)")
    r.add_argument("--generator", action="append", default=[], metavar="FAMILY=DIR",
                   help="a generator checkpoint for one of the suite's families (repeatable; default: the suite's, "
                        "else make demo's DEMO/generators/FAMILY)")
    r.add_argument("--model", dest="detector", default=None, metavar="MODEL",
                   help="the detector to test (a model folder, a bundle, champion or challenger); for suites that "
                        "test one detector (robustness)")
    deprecated(r, "--detector", "--model", dest="detector")
    r.add_argument("--demo", default="demo", metavar="DIR",
                   help="where make demo wrote its output, for inputs the suite file's paths lack (default: demo)")
    r.add_argument("--data-root", default=None, metavar="DIR",
                   help="the folder holding real datasets, for suites that read them (protocol: FaceForensics++/, "
                        "Celeb-DF-v2/, DFDC/, DFDCP/)")
    r.add_argument("--allow-smaller", action="store_true",
                   help="run on fewer videos than the suite asks for, marking the figures that rest on them")
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
    from benchmarks.inputs import apply_inputs, parse_generator_flags
    from benchmarks.runner import load_suite, run_suite
    from benchmarks.suites import SuiteError

    if args.device not in ("auto", "cpu", "cuda") and not args.device.startswith("cuda:"):
        return _usage(f"--device must be auto, cpu or cuda, got {args.device!r}")
    command = "forensics bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else ["run", args.suite])
    try:
        suite = apply_inputs(load_suite(args.suite), world=args.world, generators=parse_generator_flags(args.generator),
                             detector=args.detector, demo_dir=args.demo, data_root=args.data_root)
        document = run_suite(suite, out_dir=args.out, work_dir=args.work, device=args.device, fresh=args.fresh,
                             command=command, progress=not args.quiet, allow_smaller=args.allow_smaller)
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
