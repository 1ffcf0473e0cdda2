"""`forensics` command line: one subcommand per module in forensics.cli.

Each subcommand module exposes ``add_parser(subparsers)`` (which sets ``func`` on its parser) and
returns an exit status from that function: 0 all inputs analysed, 1 some failed, 2 usage error.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from forensics import __version__

# Order here is the order `forensics --help` lists them in.
SUBCOMMANDS = ["synth", "preprocess", "train", "bundle", "fake", "detect", "evaluate", "models", "export", "coevolve",
               "bench", "ui", "server", "tracking", "demo"]

EPILOG = """\
examples:
  forensics synth --out data/synth --identities 20 --videos-per-identity 2 --frames 48
  forensics synth --sheet sheet.png              # 16 rendered identities on one PNG
  forensics preprocess --dataset synthetic --root data/synth --cache data/cache
  forensics train detector                       # synthetic world, self-blended fakes, registered in MLflow
  forensics detect clips/ --jsonl scan.jsonl --report report/
  forensics ui                                   # MLflow UI on the project's tracking store

flags mean the same in every command: --model a trained detector (folder, bundle, champion), --arch an
architecture, --generator FAMILY=DIR a generator, --world the synthetic world, --root any dataset folder,
--identities a count, --fresh starts over what resumes by default, --resume carries on a scan, --json a summary
on stdout, --jsonl FILE the records. Old spellings still work for one release and say what replaced them.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forensics",
        description="Deepfake detection and media forensics: make fakes, train detectors, scan media.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"forensics {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"forensics.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"forensics.cli.{name}":
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work has been kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
