"""Tables of benchmark results, as the suites' markdown files show them."""
from __future__ import annotations

import math


def format_auc(summary: dict | None, ci: bool = True) -> str:
    """"0.973 [0.91, 1.00]" for a summarize_scores dict ("n/a" when undefined)."""
    if not summary or summary.get("auc") is None or not math.isfinite(summary["auc"]):
        return "n/a"
    text = f"{summary['auc']:.3f}"
    low_high = summary.get("auc_ci")
    if ci and low_high and all(math.isfinite(v) for v in low_high):
        text += f" [{low_high[0]:.2f}, {low_high[1]:.2f}]"
    return text


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


UNDER_POWERED = "\u2020"      # marks a figure resting on fewer videos than its suite asked for


def shortfall_note(shortfalls: list[dict]) -> str:
    """The footnote under a table with under-powered cells."""
    return (f"{UNDER_POWERED} under-powered (run with --allow-smaller): "
            + "; ".join(f"{s['what']} {s['split']} {s['got']} of {s['wanted']} videos" for s in shortfalls) + ".")
