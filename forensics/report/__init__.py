"""HTML reports of `forensics detect --report DIR`: one self-contained page per input and an index."""
from forensics.report.html import (
    INDEX_NAME,
    render_index,
    render_report,
    report_name,
    track_series,
    write_index,
    write_report,
)
from forensics.report.writer import ReportWriter

__all__ = ["INDEX_NAME", "ReportWriter", "render_index", "render_report", "report_name", "track_series", "write_index",
           "write_report"]
