"""`forensics detect`: score videos and images for manipulated faces, one JSON record per input.

Records follow the contract in docs/ARCHITECTURE.md. With --jsonl each record is appended and flushed as soon
as its input finishes, so an interrupted run keeps its work and --resume carries on after it. The work is
forensics.pipelines.scan; this module parses and checks arguments, finds the model, prints, and exits.
Heavy imports (torch, the pipeline) are deferred into the functions so that `--help` stays fast.
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forensics.pipelines.record import DetectRecord

USAGE_ERROR = 2

EXAMPLES = """\
examples:
  forensics detect clip.mp4                           # record on stdout, verdict on stderr
  forensics detect videos/ --jsonl results.jsonl      # a folder, recursively; re-run with --resume
  forensics detect clip.mp4 --every 1 --report out/   # every frame, plus an HTML report per input
  forensics detect photo.jpg --model runs/detector/model   # a detector directory instead of the registered one
  forensics detect clip.mp4 --model runs/bundle       # a frame + clip detector bundle (forensics bundle)
  forensics detect /archive --jsonl out.jsonl --ray head:6379 --resume   # on a Ray cluster, records as here

exit status: 0 every input analysed (ok or no_face), 1 some input failed (the others are still
reported), 2 usage error (bad arguments, missing input, no model).
"""


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="score videos and images for face manipulation",
                       description="Find faces (MTCNN), align them, score them with a trained detector and write "
                                   "one JSON record per input: verdict, score, per-face and per-frame scores.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(p)


def configure(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="video or image files, or folders (recursed)")
    p.add_argument("--model", default=None, metavar="MODEL",
                   help="detector directory (or its model.safetensors), a bundle of a frame and a clip detector "
                        "(forensics bundle), or a registry alias: champion, challenger, "
                        "models:/forensics-detector@ALIAS; default: the registered champion")
    p.add_argument("--jsonl", default=None, metavar="FILE", help="append records here instead of printing them")
    p.add_argument("--report", default=None, metavar="DIR", help="also write one HTML report per input here")
    p.add_argument("--frames", type=int, default=None, metavar="N",
                   help="frames sampled per video (default 32), as clips of --clip-len consecutive frames")
    p.add_argument("--clip-len", type=int, default=None, metavar="L",
                   help="consecutive frames per sampled clip (default 8; 1 = frames spread evenly); a model "
                        "bundle's clip detector scores each clip")
    p.add_argument("--every", type=int, default=None, metavar="K",
                   help="analyse every K-th frame instead (1 = every frame), streamed")
    p.add_argument("--detect-every", type=int, default=None, metavar="D",
                   help="run the face detector on every D-th analysed frame and carry faces in between "
                        "(default: 1 when sampling, about every 5th source frame with --every)")
    p.add_argument("--batch-size", type=int, default=32, metavar="B", help="face crops per detector pass (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnx"),
                   help="what runs the networks: onnx (onnxruntime: the model's and MTCNN's checked ONNX exports, "
                        "cached when a champion is set or by `forensics export --cache`; starts in a fraction of "
                        "torch's time), torch, or auto: onnx on a CPU when the exports are cached, else torch "
                        "(default); each record says which ran")
    p.add_argument("--resume", action="store_true", help="skip inputs that already have a record in --jsonl")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="analyse on a Ray cluster: ADDRESS (host:port of its head), or alone for RAY_ADDRESS, else a "
                        "Ray started on this machine; one detector per worker, records as on one machine")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="with --ray: detector workers (default: one per GPU of the cluster, else one per CPU)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-input summary on stderr")
    p.set_defaults(func=run)
    return p


def usage(message: str) -> int:
    from forensics.io import printable

    print(f"forensics detect: {printable(message)}", file=sys.stderr)
    return USAGE_ERROR


def check_args(args) -> str | None:
    """The first usage problem, or None."""
    if not args.inputs:
        return "no INPUT given (video or image files, or folders)"
    for name in ("frames", "clip_len", "every", "detect_every", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be at least 1, got {value}"
    if args.frames is not None and args.every is not None:
        return "--frames and --every are alternatives: pass one"
    if args.resume and not args.jsonl:
        return "--resume needs --jsonl FILE (the records to resume from)"
    if args.workers is not None and (args.ray is None or args.workers < 1):
        return "--workers N (at least 1) goes with --ray"
    return None


def find_model(explicit: str | None) -> Path:
    """--model if given (a folder or bundle; or a registry alias: champion, challenger, or
    models:/forensics-detector@ALIAS, when no such folder exists), else the registered champion. ScanError (a
    usage error) when nothing is registered under the alias or the registry cannot be read: one line.

    A local sqlite registry is read directly (forensics.model_lookup: milliseconds, no MLflow import); MLflow
    answers whatever that cannot."""
    from detectors.aliases import CHAMPION, MODEL_NAME, NO_CHAMPION, alias_of
    from forensics.model_lookup import UNKNOWN, find_registered
    from forensics.pipelines.scan import ScanError

    alias = CHAMPION
    if explicit:
        alias = alias_of(explicit)
        if alias is None or Path(explicit).exists():
            return Path(explicit)
    found = find_registered(MODEL_NAME, alias)
    if found is UNKNOWN:
        from detectors.promote import resolve      # MLflow, only when the registry is not a local file

        try:
            found = resolve(alias)
        except Exception as err:  # noqa: BLE001 - registry trouble of any kind
            raise ScanError(f"cannot look up the registered model ({type(err).__name__}: "
                            f"{' '.join(str(err).split())})") from err
    if found is None:
        raise ScanError(NO_CHAMPION if alias == CHAMPION else
                        f"nothing is registered as {MODEL_NAME}@{alias}; pass --model PATH or another alias")
    return found


def model_or_say(command: str, explicit: str | None) -> Path | None:
    """find_model for a command that needs the model up front: None after one line on stderr (exit 2)."""
    from forensics.pipelines.scan import ScanError

    try:
        return find_model(explicit)
    except ScanError as exc:
        print(f"forensics {command}: {exc}", file=sys.stderr)
        return None


def run(args) -> int:
    from forensics.pipelines import DetectConfig
    from forensics.pipelines.scan import ScanError, print_summary, scan, totals_line

    problem = check_args(args)
    if problem:
        return usage(problem)
    config = DetectConfig(frames=args.frames or 32, clip_len=args.clip_len or 8, every=args.every, detect_every=args.detect_every,
                          batch_size=args.batch_size, device=args.device, runtime=args.runtime)
    reports = None
    if args.report:
        from forensics.report import ReportWriter    # the plotting stack, only when pages are asked for

        reports = ReportWriter(args.report)
    backend, cluster_errors = None, ()
    if args.ray is not None:
        from forensics.pipelines import ray_scan     # Ray, only when a cluster is asked for

        backend = partial(ray_scan.analyses, address=args.ray or ray_scan.default_address(), workers=args.workers)
        cluster_errors = (ray_scan.RayScanError,)
    try:
        # The model is looked up only if some input still needs it (a finished --resume needs none).
        result = scan(args.inputs, lambda: find_model(args.model), config, jsonl=args.jsonl,
                      reports=reports, resume=args.resume, progress=not args.quiet,
                      on_record=print_errors if args.quiet else print_summary, backend=backend)
    except ScanError as err:
        return usage(str(err))
    except cluster_errors as err:                     # the Ray cluster failed, not an input
        print(f"forensics detect: {err}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(totals_line(result, args.jsonl), file=sys.stderr)
    return result.exit_status


def print_errors(record: DetectRecord) -> None:
    """With --quiet only failures are worth a line on stderr."""
    from forensics.pipelines.scan import summary_line

    if record.status == "error":
        print(summary_line(record), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = configure(argparse.ArgumentParser(prog="forensics detect", epilog=EXAMPLES,
                                               formatter_class=argparse.RawDescriptionHelpFormatter))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
