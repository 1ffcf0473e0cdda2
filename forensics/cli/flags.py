"""One flag vocabulary across the commands, and the old spellings that still work for one release.

    --model MODEL          a trained detector: a folder, a bundle, or a registry alias (champion, challenger)
    --arch NAME            a detector architecture from the registry (train detector --list)
    --generator F=DIR      a generator checkpoint of family F (repeatable); fake swap/animate take --model DIR
    --world DIR            the synthetic world (forensics synth writes one with --out DIR)
    --root DIR             any dataset folder (synthetic, folder, ffpp, celebdf, dfdc)
    --identities N         always a count
    --resume / --fresh     --resume carries on a scan that starts anew by default (detect); --fresh starts over a
                           job that resumes by default (train detector, bench)
    --json / --jsonl FILE  --json prints a machine-readable summary on stdout; --jsonl appends records to FILE

An old spelling prints one line on stderr naming its replacement, then does exactly what it did.
"""
from __future__ import annotations

import argparse
import sys


class Deprecated(argparse.Action):
    """An old flag spelling: stores as `kind` says ("store", "store_true" or "append") into the new flag's dest,
    after one line on stderr saying what replaces it."""

    def __init__(self, option_strings, dest, replacement: str, kind: str = "store", **kwargs):
        self.replacement, self.kind = replacement, kind
        if kind == "store_true":
            kwargs["nargs"] = 0
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: {option_string} is deprecated and goes in the next release; use {self.replacement}",
              file=sys.stderr)
        if self.kind == "store_true":
            setattr(namespace, self.dest, True)
        elif self.kind == "append":
            setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), values])
        else:
            setattr(namespace, self.dest, values)


def deprecated(parser: argparse.ArgumentParser, old: str, replacement: str, dest: str, kind: str = "store",
               **kwargs) -> None:
    """Keep `old` working for one release as a hidden alias of `replacement` (stored in `dest`)."""
    parser.add_argument(old, dest=dest, action=Deprecated, replacement=replacement, kind=kind, default=argparse.SUPPRESS,
                        **kwargs)
