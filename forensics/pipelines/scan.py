"""Scan many inputs with one detector: what `forensics detect` does, as a library call.

Each input's record is written as soon as it is analysed (appended and flushed to the JSONL, or printed on
stdout), so an interrupted scan keeps its work and `resume=True` carries on after the records already in
the JSONL. Inputs are expanded (folders recursed), analysed in order, and one bad input becomes an error
record, never the end of the scan; one that kills the process gets an error record on the next resume, and
one JSONL has one writer at a time (forensics.pipelines.scanlog). The detector is loaded only if some input
still needs analysing, so a finished scan can be resumed without one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from tqdm import tqdm

from forensics.io import append_jsonl, printable, read_jsonl, strict_json
from forensics.pipelines.detect import Analysis, DetectConfig, DetectPipeline
from forensics.pipelines.inputs import InputError, collect_inputs, done_paths, path_key
from forensics.pipelines.record import ERROR, FAKE, NO_FACE, DetectRecord
from forensics.pipelines.scanlog import ScanLog, ScanLogBusy
from forensics.progress import progress_bar

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


Backend = Callable[[list[Path], Path, DetectConfig, DetectPipeline], Iterator[tuple[Path, Analysis]]]


def scan(inputs: Sequence[str | os.PathLike], model: Path | str | Callable[[], Path],
         config: DetectConfig | None = None, jsonl: Path | str | None = None, reports: ReportSink | None = None,
         resume: bool = False, progress: bool = True, on_record: RecordCallback | None = None,
         backend: Backend | None = None) -> ScanResult:
    """Analyse `inputs` (files, or folders recursed) and write one record per input.

    model: a detector folder, or a function that finds one; it is called only if some input still needs
        analysing, and may raise ScanError (e.g. with detectors.promote.NO_CHAMPION) when there is none.
    jsonl: append each record here as soon as it is done; None prints them on stdout.
    reports: also write an HTML page per input and an index of the scan (forensics.report.ReportWriter).
    resume: skip inputs that already have a record in `jsonl` (their records are kept as they are).
    progress: a progress bar (and a note on resuming) on stderr.
    on_record: called with each new record once it is written (see `print_summary`).
    backend: analyses the inputs elsewhere, yielding (path, analysis) as each finishes (ray_scan.analyses:
        a Ray cluster); None analyses them here, one after another.
    Raises ScanError before anything is analysed if the scan cannot start.
    """
    if resume and jsonl is None:
        raise ScanError("resuming needs the JSONL file of the previous run")
    if jsonl is not None and Path(jsonl).is_dir():
        raise ScanError(f"{printable(jsonl)}: is a folder; --jsonl names the file the records are appended to")
    paths = _collect(inputs)
    skipped: list[int] = []
    done = done_paths(read_jsonl(jsonl, skipped)) if resume else {}
    if skipped:
        print(f"forensics detect: {printable(jsonl)}: skipped {len(skipped)} line(s) that are not JSON records "
              f"(line {', '.join(map(str, skipped[:5]))}{', ...' if len(skipped) > 5 else ''}); their inputs are "
              "analysed again", file=sys.stderr)
    todo = [p for p in paths if path_key(p) not in done]
    if done and progress:
        print(f"forensics detect: resuming, {len(paths) - len(todo)} of {len(paths)} inputs already done",
              file=sys.stderr)
    analysed: dict[str, dict] = {}
    if todo:
        if reports is not None:
            reports.resume([done[path_key(p)] for p in paths if path_key(p) in done])
        model_path = model() if callable(model) else Path(model)
        pipeline = _load_pipeline(model_path, config or DetectConfig(), thumbnails=reports is not None)
        try:
            with ScanLog(jsonl) if jsonl is not None else contextlib.nullcontext() as log:
                died = log.died(set(done)) if resume and log is not None else {}
                source = _here(pipeline, todo, log, died) if backend is None else _elsewhere(
                    backend, pipeline, model_path, todo, died)
                analysed = _analyse_all(source, len(todo), jsonl, reports, progress, on_record)
        except ScanLogBusy as busy:
            raise ScanError(str(busy)) from None
    records = [done[key] if key in done else analysed[key] for key in map(path_key, paths)]
    return ScanResult(records=records, resumed=len(paths) - len(todo))


def _here(pipeline: DetectPipeline, paths: list[Path], log: ScanLog | None,
          died: dict[str, str]) -> Iterator[tuple[Path, Analysis]]:
    """Each input analysed in this process, in turn (an input that killed an earlier scan gets an error record
    instead, see ScanLog)."""
    for path in paths:
        if path_key(path) in died:
            yield path, pipeline.failed(path, died[path_key(path)])
            continue
        if log is not None:
            log.started(path)
        try:
            analysis = pipeline.analyse(path)
        except BaseException:               # Ctrl-C, a bug: not the file's fault, so it may be retried
            if log is not None:
                log.released(path)
            raise
        yield path, analysis


def _elsewhere(backend: Backend, pipeline: DetectPipeline, model_path: Path, paths: list[Path],
               died: dict[str, str]) -> Iterator[tuple[Path, Analysis]]:
    """The backend's analyses; inputs that killed an earlier scan still get their error record, here."""
    for path in paths:
        if path_key(path) in died:
            yield path, pipeline.failed(path, died[path_key(path)])
    yield from backend([p for p in paths if path_key(p) not in died], model_path, pipeline.config, pipeline)


def _analyse_all(source: Iterator[tuple[Path, Analysis]], total: int, jsonl: Path | str | None,
                 reports: ReportSink | None, progress: bool, on_record: RecordCallback | None) -> dict[str, dict]:
    """Write each analysis as it comes; the written records by `path_key`."""
    written: dict[str, dict] = {}
    bar = progress_bar(total=total, unit="file", desc="detect", enabled=progress)
    try:
        for path, analysis in source:
            record = analysis.record
            if reports is not None:
                record = reports.add(record, analysis.thumbnails)
            try:
                write_record(record, jsonl)
            except OSError as exc:      # disk full, permissions changed mid-scan: keep the record, stop
                write_record(record, None)
                raise ScanError(f"{printable(jsonl)}: cannot write ({exc.strerror or exc}); the record of "
                                f"{printable(path)} is on stdout, {len(written)} earlier record(s) are in the file, "
                                "and the scan stopped (run again with --resume once it can be written)") from None
            written[path_key(path)] = record.to_json()
            if on_record is not None:
                on_record(record)
            bar.update(1)
    finally:
        bar.close()
    return written


def _collect(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The media files to scan, as absolute paths: records name files the same way from any working folder,
    so `--resume` run from elsewhere finds them (a path as typed, "clips/a.mp4", would not)."""
    unreadable: list[tuple[str, str]] = []
    try:
        paths = [Path(path_key(path)) for path in collect_inputs(inputs, unreadable)]
    except InputError as err:
        raise ScanError(str(err)) from err
    for folder, reason in unreadable:       # nothing in them is analysed: say so rather than skip silently
        print(f"forensics detect: {printable(folder)}: folder not read ({reason}); its files are not scanned",
              file=sys.stderr)
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
        sys.stdout.write(json.dumps(strict_json(record.to_json()), allow_nan=False) + "\n")
        sys.stdout.flush()


def totals_line(result: "ScanResult", jsonl: Path | str | None) -> str:
    """The scan in one line for a person: how many inputs, verdicts and failures, and where the records are."""
    labels = Counter(r.get("label") for r in result.records if r.get("status") == "ok")
    counts = result.counts
    parts = [f"{labels.get(FAKE, 0)} fake", f"{sum(labels.values()) - labels.get(FAKE, 0)} real",
             f"{counts.get(NO_FACE, 0)} no face", f"{counts.get(ERROR, 0)} error{'s' if counts.get(ERROR, 0) != 1 else ''}"]
    resumed = f" ({result.resumed} from the earlier run)" if result.resumed else ""
    where = f"; records in {printable(jsonl)}" if jsonl is not None else ""
    return f"{len(result.records)} input{'s' if len(result.records) != 1 else ''}{resumed}: {', '.join(parts)}{where}"


def summary_line(record: DetectRecord) -> str:
    """The record in one line for a person: verdict, score and file, or what went wrong."""
    if record.status == ERROR:
        return f"ERROR  {printable(record.error)}"
    if record.status == NO_FACE:
        text = f"no face       {printable(record.path)}"
    else:
        verdict = "FAKE" if record.label == FAKE else "real"
        text = f"{verdict:5}  {record.score:.3f}  {printable(record.path)}"
    return f"{text}  (warning: {printable(record.warning)})" if record.warning else text


def print_summary(record: DetectRecord) -> None:
    """`summary_line` on stderr, above scan's progress bar rather than through it (an `on_record`)."""
    tqdm.write(summary_line(record), file=sys.stderr)
