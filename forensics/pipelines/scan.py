"""Scan many inputs with one detector: what `forensics detect` does, as a library call.

Each input's record is written as soon as it is analysed (appended and flushed to the JSONL, or printed on
stdout), so an interrupted scan keeps its work and `resume=True` carries on after the records already in
the JSONL. Inputs are expanded (folders recursed), analysed in order, and one bad input becomes an error
record, never the end of the scan. The detector is loaded only if some input still needs analysing, so a
finished scan can be resumed without one.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from tqdm import tqdm

from forensics.io import append_jsonl, read_jsonl
from forensics.pipelines.detect import DetectConfig, DetectPipeline
from forensics.pipelines.inputs import InputError, collect_inputs, done_paths, path_key
from forensics.pipelines.record import ERROR, FAKE, NO_FACE, DetectRecord

RecordCallback = Callable[[DetectRecord], None]


class ScanError(ValueError):
    """Why a scan cannot start: a missing input, no media, no usable model or device. One line, meant for
    the user as it is (`forensics detect` exits 2 on it)."""


@dataclass
class ScanResult:
    """Every input's record (JSON form, input order; resumed ones exactly as read back) and the tally."""

    records: list[dict]
    resumed: int = 0                     # how many of `records` a previous run had already written

    @property
    def statuses(self) -> list[str | None]:
        return [r.get("status") for r in self.records]

    @property
    def counts(self) -> Counter:
        """Inputs per status ("ok", "no_face", "error")."""
        return Counter(self.statuses)

    @property
    def exit_status(self) -> int:
        """`forensics detect`'s exit status: 0 every input analysed (ok or no face), 1 some input failed."""
        return 1 if ERROR in self.statuses else 0


class ReportSink(Protocol):
    """Where HTML reports go (forensics.report.ReportWriter): handed in by the caller, so that scanning without
    --report does not load the plotting stack."""

    def resume(self, records: list[dict]) -> None: ...

    def add(self, record: DetectRecord, thumbnails: list[dict]) -> DetectRecord: ...


def scan(inputs: Sequence[str | os.PathLike], model: Path | str | Callable[[], Path],
         config: DetectConfig | None = None, jsonl: Path | str | None = None, reports: ReportSink | None = None,
         resume: bool = False, progress: bool = True, on_record: RecordCallback | None = None) -> ScanResult:
    """Analyse `inputs` (files, or folders recursed) and write one record per input.

    model: a detector folder, or a function that finds one; it is called only if some input still needs
        analysing, and may raise ScanError (e.g. with detectors.promote.NO_CHAMPION) when there is none.
    jsonl: append each record here as soon as it is done; None prints them on stdout.
    reports: also write an HTML page per input and an index of the scan (forensics.report.ReportWriter).
    resume: skip inputs that already have a record in `jsonl` (their records are kept as they are).
    progress: a progress bar (and a note on resuming) on stderr.
    on_record: called with each new record once it is written (see `print_summary`).
    Raises ScanError before anything is analysed if the scan cannot start.
    """
    if resume and jsonl is None:
        raise ScanError("resuming needs the JSONL file of the previous run")
    paths = _collect(inputs)
    done = done_paths(read_jsonl(jsonl)) if resume else {}
    todo = [p for p in paths if path_key(p) not in done]
    if done and progress:
        print(f"forensics detect: resuming, {len(paths) - len(todo)} of {len(paths)} inputs already done",
              file=sys.stderr)
    analysed: dict[str, dict] = {}
    if todo:
        if reports is not None:
            reports.resume([done[path_key(p)] for p in paths if path_key(p) in done])
        pipeline = _load_pipeline(model() if callable(model) else Path(model), config or DetectConfig(),
                                  thumbnails=reports is not None)
        analysed = _analyse_all(pipeline, todo, jsonl, reports, progress, on_record)
    records = [done[key] if key in done else analysed[key] for key in map(path_key, paths)]
    return ScanResult(records=records, resumed=len(paths) - len(todo))


def _analyse_all(pipeline: DetectPipeline, paths: list[Path], jsonl: Path | str | None, reports: ReportSink | None,
                 progress: bool, on_record: RecordCallback | None) -> dict[str, dict]:
    """Analyse and write each input in turn; the written records by `path_key`."""
    written: dict[str, dict] = {}
    bar = tqdm(total=len(paths), unit="file", desc="detect", file=sys.stderr, disable=not progress,
               dynamic_ncols=True)
    try:
        for path in paths:
            analysis = pipeline.analyse(path)
            record = analysis.record
            if reports is not None:
                record = reports.add(record, analysis.thumbnails)
            write_record(record, jsonl)
            written[path_key(path)] = record.to_json()
            if on_record is not None:
                on_record(record)
            bar.update(1)
    finally:
        bar.close()
    return written


def _collect(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    try:
        paths = collect_inputs(inputs)
    except InputError as err:
        raise ScanError(str(err)) from err
    if not paths:
        raise ScanError(f"no media files found in {' '.join(map(str, inputs))}")
    return paths


def _load_pipeline(model_path: Path, config: DetectConfig, thumbnails: bool) -> DetectPipeline:
    """The detector, with face crops kept for the reports only when there are reports to show them."""
    if not thumbnails:
        config = dataclasses.replace(config, thumbnails=0)
    try:
        return DetectPipeline.from_path(model_path, config)
    except ValueError as err:  # DetectorLoadError, an unusable device
        raise ScanError(" ".join(str(err).split())) from err


def write_record(record: DetectRecord, jsonl: Path | str | None) -> None:
    """Append the record to the JSONL (flushed to disk), or print it on stdout as one line."""
    if jsonl is not None:
        append_jsonl(jsonl, record.to_json())
    else:
        sys.stdout.write(json.dumps(record.to_json()) + "\n")
        sys.stdout.flush()


def summary_line(record: DetectRecord) -> str:
    """The record in one line for a person: verdict, score and file, or what went wrong."""
    if record.status == ERROR:
        return f"ERROR  {record.error}"
    if record.status == NO_FACE:
        text = f"no face       {record.path}"
    else:
        verdict = "FAKE" if record.label == FAKE else "real"
        text = f"{verdict:5}  {record.score:.3f}  {record.path}"
    return f"{text}  (warning: {record.warning})" if record.warning else text


def print_summary(record: DetectRecord) -> None:
    """`summary_line` on stderr, above scan's progress bar rather than through it (an `on_record`)."""
    tqdm.write(summary_line(record), file=sys.stderr)
