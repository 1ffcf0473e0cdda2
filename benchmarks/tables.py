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
