"""Progress that works on a terminal and in a log.

On a terminal a tqdm bar redraws itself in place. Written to a log file (CI, `make bench > bench.log`,
nohup), the same bar is a stream of carriage returns: one unreadable line that grows for the whole run.
`progress_bar` gives tqdm on a terminal and, anywhere else, `LogProgress`: plain lines ("epoch 3: 40/120
batch (33%), 12 s, about 24 s left, loss=0.41") at most every `interval` seconds, plus one when it finishes.

    with progress_bar(total=len(batches), desc="epoch 3", unit="batch") as bar:
        for batch in batches:
            ...
            bar.update(1)
"""
from __future__ import annotations

import sys
import time
from typing import Iterable, TextIO

from tqdm import tqdm

LOG_INTERVAL_S = 30.0


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 enabled: bool | None = True, leave: bool = True, stream: TextIO | None = None,
                 interval: float = LOG_INTERVAL_S):
    """A tqdm bar when `stream` (default stderr) is a terminal, LogProgress otherwise, a silent tqdm when
    `enabled` is False. `enabled=None` means: only on a terminal (tqdm's own rule)."""
    stream = stream or sys.stderr
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    if enabled is False or (enabled is None and not terminal):
        return tqdm(iterable, total=total, disable=True)
    if terminal:
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, file=stream, dynamic_ncols=True)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, stream=stream, interval=interval)


class LogProgress:
    """The subset of tqdm the project uses (iterate, update, set_postfix, write, close, context manager),
    written as whole lines: one when `interval` seconds have passed since the last, and one at the end."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "", unit: str = "it",
                 stream: TextIO | None = None, interval: float = LOG_INTERVAL_S):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream or sys.stderr
        self.interval = interval
        self.n = 0
        self.postfix = ""
        self.started = self.last = time.monotonic()
        self.closed = False

    def __iter__(self):
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line(done=False)

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **kwargs) -> None:
        values = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._line(done=True)

    def _line(self, done: bool) -> None:
        count = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total and not done else ""
        elapsed = time.monotonic() - self.started
        eta = f", about {elapsed * (self.total - self.n) / self.n:.0f} s left" if self.total and self.n and not done else ""
        words = [f"{self.desc}: " if self.desc else "", f"{count} {plural(self.unit, self.total or self.n)}{share}",
                 f" in {elapsed:.0f} s" if done else f", {elapsed:.0f} s{eta}", f", {self.postfix}" if self.postfix else ""]
        print("".join(words), file=self.stream, flush=True)


def plural(unit: str, count: int) -> str:
    """"3/5 files", "1/1 file", "4 batches": a log line is read by people ("it" stays tqdm's it)."""
    if count == 1 or unit == "it":
        return unit
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")
