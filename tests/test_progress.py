"""Progress in a log: whole lines, no carriage returns, a last line with the count and time."""
from __future__ import annotations

import io

from forensics.progress import LogProgress, progress_bar


def test_progress_in_a_log_is_whole_lines():
    log = io.StringIO()
    bar = progress_bar(total=3, desc="epoch 1", unit="batch", stream=log, interval=0.0)
    assert isinstance(bar, LogProgress)
    with bar:
        for step in range(3):
            bar.set_postfix({"loss": f"{1.0 / (step + 1):.3g}"})
            bar.update(1)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 4            # one per update (interval 0) + the last
    assert lines[0].startswith("epoch 1: 1/3 batches (33%)") and "s left" in lines[0]
    assert lines[-1].startswith("epoch 1: 3/3 batches in ")
    assert lines[-1].endswith("loss=0.333")


def test_progress_over_an_iterable_reports_once_at_the_end_when_quick():
    log = io.StringIO()
    assert list(progress_bar(range(5), desc="preprocess", unit="file", stream=log)) == list(range(5))
    (line,) = log.getvalue().splitlines()
    assert line.startswith("preprocess: 5/5 files in ") and line.endswith(" s")


def test_disabled_or_terminal_only_progress_writes_nothing_to_a_log():
    log = io.StringIO()
    for enabled in (False, None):
        with progress_bar(total=2, stream=log, enabled=enabled) as bar:
            bar.update(2)
    assert log.getvalue() == ""


def test_one_of_a_thing_is_singular_in_a_log():
    log = io.StringIO()
    with progress_bar(total=1, desc="detect", unit="file", stream=log) as bar:
        bar.update(1)
    assert log.getvalue().startswith("detect: 1/1 file in ")
