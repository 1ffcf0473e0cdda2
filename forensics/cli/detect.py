"""`forensics detect`: score videos and images for manipulated faces, one JSON record per input.

Records follow the contract in ARCHITECTURE.md. With --jsonl each record is appended and flushed as soon
as its input finishes, so an interrupted run keeps its work and --resume carries on after it.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

USAGE_ERROR = 2
NO_MODEL = ("forensics detect: no detector model given and none is registered as forensics-detector@champion; "
            "train one with `make demo` (or `forensics train detector`), or pass --model PATH")

EXAMPLES = """\
examples:
  forensics detect clip.mp4                           # record on stdout, verdict on stderr
  forensics detect videos/ --jsonl results.jsonl      # a folder, recursively; re-run with --resume
  forensics detect clip.mp4 --every 1 --report out/   # every frame, plus an HTML report per input
  forensics detect photo.jpg --model runs/detector/model   # a detector directory instead of the registered one

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
    p.add_argument("--model", default=None, metavar="PATH",
                   help="detector directory (or its model.safetensors); default: the registered champion")
    p.add_argument("--jsonl", default=None, metavar="FILE", help="append records here instead of printing them")
    p.add_argument("--report", default=None, metavar="DIR", help="also write one HTML report per input here")
    p.add_argument("--frames", type=int, default=None, metavar="N", help="frames sampled evenly per video (default 32)")
    p.add_argument("--every", type=int, default=None, metavar="K",
                   help="analyse every K-th frame instead (1 = every frame), streamed")
    p.add_argument("--detect-every", type=int, default=None, metavar="D",
                   help="run the face detector on every D-th analysed frame and carry faces in between "
                        "(default: 1 when sampling, about every 5th source frame with --every)")
    p.add_argument("--batch-size", type=int, default=32, metavar="B", help="face crops per detector pass (default 32)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--resume", action="store_true", help="skip inputs that already have a record in --jsonl")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-input summary on stderr")
    p.set_defaults(func=run)
    return p


def usage(message: str) -> int:
    print(f"forensics detect: {message}", file=sys.stderr)
    return USAGE_ERROR


def check_args(args) -> str | None:
    """The first usage problem, or None."""
    if not args.inputs:
        return "no INPUT given (video or image files, or folders)"
    for name in ("frames", "every", "detect_every", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be at least 1, got {value}"
    if args.frames is not None and args.every is not None:
        return "--frames and --every are alternatives: pass one"
    if args.resume and not args.jsonl:
        return "--resume needs --jsonl FILE (the records to resume from)"
    return None


def find_model(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    try:
        from forensics.tracking import resolve_model
    except ImportError:
        return None
    return resolve_model(name="forensics-detector", alias="champion")


def run(args) -> int:
    from forensics.io import read_jsonl
    from forensics.pipelines import DetectConfig, InputError, collect_inputs, done_paths, path_key

    problem = check_args(args)
    if problem:
        return usage(problem)
    try:
        inputs = collect_inputs(args.inputs)
    except InputError as err:
        return usage(str(err))
    if not inputs:
        return usage(f"no media files found in {' '.join(args.inputs)}")
    reports = None
    if args.report:
        try:
            reports = Reports(Path(args.report))
        except ImportError:
            return usage("--report: HTML reports are not available in this installation")

    done = done_paths(read_jsonl(args.jsonl)) if args.resume else {}
    todo = [p for p in inputs if path_key(p) not in done]
    statuses = [done[path_key(p)].get("status") for p in inputs if path_key(p) in done]
    if done and not args.quiet:
        print(f"forensics detect: resuming, {len(inputs) - len(todo)} of {len(inputs)} inputs already done",
              file=sys.stderr)
    if todo:
        try:
            model_path = find_model(args.model)
        except Exception as err:  # noqa: BLE001 - registry trouble is one line, never a traceback
            return usage(f"cannot look up the registered model ({type(err).__name__}: {' '.join(str(err).split())})")
        if model_path is None:
            print(NO_MODEL, file=sys.stderr)
            return USAGE_ERROR
        config = DetectConfig(frames=args.frames or 32, every=args.every, detect_every=args.detect_every,
                              batch_size=args.batch_size, device=args.device,
                              thumbnails=8 if reports is not None else 0)
        try:
            pipeline = load_pipeline(model_path, config)
        except ValueError as err:  # DetectorLoadError, an unusable --device
            return usage(" ".join(str(err).split()))
        if reports is not None:
            reports.records = [done[path_key(p)] for p in inputs if path_key(p) in done]
        statuses += analyse_all(pipeline, todo, args, reports)
    return 1 if "error" in statuses else 0


def load_pipeline(model_path: Path, config):
    from forensics.pipelines import DetectPipeline

    return DetectPipeline.from_path(model_path, config)


def analyse_all(pipeline, paths: list[Path], args, reports: "Reports | None") -> list[str]:
    from tqdm import tqdm

    statuses = []
    bar = tqdm(total=len(paths), unit="file", desc="detect", file=sys.stderr, disable=args.quiet,
               dynamic_ncols=True)
    try:
        for path in paths:
            analysis = pipeline.analyse(path)
            record = analysis.record
            if reports is not None:
                reports.add(record, analysis.thumbnails)
            emit(record, args.jsonl)
            statuses.append(record["status"])
            line = summary_line(record)
            if not args.quiet:
                bar.write(line, file=sys.stderr)
            elif record["status"] == "error":
                print(line, file=sys.stderr)
            bar.update(1)
    finally:
        bar.close()
    return statuses


class Reports:
    """One HTML page per input plus an index of the run (resumed inputs included), rewritten after each
    input so it is current even if the run is interrupted. A page that cannot be written becomes a warning
    in the record, not a failure of the analysis: the record itself is complete."""

    def __init__(self, out_dir: Path) -> None:
        from forensics.report import write_index, write_report

        self.out_dir = out_dir
        self.write_report = write_report
        self.write_index = write_index
        self.records: list[dict] = []

    def add(self, record: dict, thumbnails: list[dict]) -> None:
        try:
            record["report"] = str(self.write_report(record, thumbnails, self.out_dir))
            self.records.append(record)
            self.write_index(self.records, self.out_dir)
        except Exception as err:  # noqa: BLE001 - a report problem must not lose the record
            record.setdefault("report", None)
            note = f"report not written: {type(err).__name__}: {' '.join(str(err).split())}"
            record["warning"] = f"{record['warning']}; {note}" if record.get("warning") else note


def emit(record: dict, jsonl: str | None) -> None:
    if jsonl:
        from forensics.io import append_jsonl

        append_jsonl(jsonl, record)
    else:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def summary_line(record: dict) -> str:
    status = record["status"]
    if status == "error":
        return f"ERROR  {record['error']}"
    if status == "no_face":
        text = f"no face       {record['path']}"
    else:
        verdict = "FAKE" if record["label"] == "fake" else "real"
        text = f"{verdict:5}  {record['score']:.3f}  {record['path']}"
    return f"{text}  (warning: {record['warning']})" if record.get("warning") else text


def main(argv: list[str] | None = None) -> int:
    parser = configure(argparse.ArgumentParser(prog="forensics detect", epilog=EXAMPLES,
                                               formatter_class=argparse.RawDescriptionHelpFormatter))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
