"""Writing `forensics detect --report DIR`: a page per input as it finishes, and the index of every scan
written into DIR."""
from __future__ import annotations

from pathlib import Path

from forensics.io import append_jsonl, read_jsonl
from forensics.report.html import write_index, write_report

INDEX_RECORDS = "index.jsonl"      # every record the index lists, appended as pages are written


class ReportWriter:
    """One HTML page per input plus an index, rewritten after each input so it is current even if the scan is
    interrupted. The index accumulates across scans into the same folder (its records are kept in
    DIR/index.jsonl): a page rewritten by a later scan (the same input again) is listed once, as last written.
    A page that cannot be written becomes a warning in the record, not a failure of the analysis: the record
    itself is complete.

    Records are `forensics detect`'s typed records: anything with to_json() and with_report(page, problem).
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.records = _latest_per_page(read_jsonl(self.out_dir / INDEX_RECORDS))   # what the index lists

    def resume(self, records: list[dict]) -> None:
        """Records of inputs a resumed scan already did (JSON form): listed unless the index has them."""
        self.records = _latest_per_page(list(records) + self.records)

    def add(self, record, thumbnails: list[dict]):
        """Write the record's page and the index; return the record with its `report` (and any problem)."""
        try:
            page = str(write_report(record.to_json(), thumbnails, self.out_dir))
        except Exception as err:  # noqa: BLE001 - a report problem must not lose the record
            return record.with_report(None, problem=_not_written(err))
        record = record.with_report(page)
        try:
            append_jsonl(self.out_dir / INDEX_RECORDS, record.to_json())
            self.records = _latest_per_page(self.records + [record.to_json()])
            write_index(self.records, self.out_dir)
        except Exception as err:  # noqa: BLE001 - as above; the index lists the record with its warning
            record = record.with_report(page, problem=_not_written(err))
            self.records = _latest_per_page(self.records + [record.to_json()])
        return record


def _latest_per_page(records: list[dict]) -> list[dict]:
    """One entry per report page (the last one written), in the order the pages were first listed."""
    latest: dict[str, dict] = {}
    for record in records:
        latest[str(record.get("report") or record.get("path"))] = record
    order = list(dict.fromkeys(str(r.get("report") or r.get("path")) for r in records))
    return [latest[key] for key in order]


def _not_written(err: Exception) -> str:
    return f"report not written: {type(err).__name__}: {' '.join(str(err).split())}"
