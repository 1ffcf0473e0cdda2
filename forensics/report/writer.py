"""Writing `forensics detect --report DIR`: a page per input as it finishes, and the index of the scan."""
from __future__ import annotations

from pathlib import Path

from forensics.report.html import write_index, write_report


class ReportWriter:
    """One HTML page per input plus an index of the scan (resumed inputs included), rewritten after each
    input so it is current even if the scan is interrupted. A page that cannot be written becomes a warning
    in the record, not a failure of the analysis: the record itself is complete.

    Records are `forensics detect`'s typed records: anything with to_json() and with_report(page, problem).
    """

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.records: list[dict] = []                    # what the index lists, JSON form

    def resume(self, records: list[dict]) -> None:
        """Records of inputs a resumed scan already did (JSON form): the index lists them first."""
        self.records = list(records) + self.records

    def add(self, record, thumbnails: list[dict]):
        """Write the record's page and the index; return the record with its `report` (and any problem)."""
        try:
            page = str(write_report(record.to_json(), thumbnails, self.out_dir))
        except Exception as err:  # noqa: BLE001 - a report problem must not lose the record
            return record.with_report(None, problem=_not_written(err))
        record = record.with_report(page)
        self.records.append(record.to_json())
        try:
            write_index(self.records, self.out_dir)
        except Exception as err:  # noqa: BLE001 - as above; the index lists the record with its warning
            record = record.with_report(page, problem=_not_written(err))
            self.records[-1] = record.to_json()
        return record


def _not_written(err: Exception) -> str:
    return f"report not written: {type(err).__name__}: {' '.join(str(err).split())}"
