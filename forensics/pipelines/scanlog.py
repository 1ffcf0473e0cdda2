"""The JSONL of a scan as one scanner holds it: an exclusive lock, and a note of each input it starts.

- **One writer.** Two `forensics detect` processes appending to one JSONL would each analyse and record every
  input. The scanner takes an exclusive, non-blocking lock on the file (fcntl.flock, released by the kernel
  when the process ends, however it ends), and a second one stops in one line.
- **Inputs that kill the scanner.** Before an input is analysed its path is appended to `<jsonl>.started`; a
  scan interrupted in a way Python sees (Ctrl-C, an exception) appends a release. An input started but
  neither recorded nor released killed the process (out of memory, kill -9): `--resume` gives it an error
  record instead of trying again, so a hostile file cannot make every resumed scan die on it.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from forensics.io import append_jsonl, printable, read_jsonl
from forensics.pipelines.inputs import path_key, record_path

DIED = ("the previous scan stopped while analysing this file (the process was killed, e.g. out of memory); "
        "it is not analysed again: delete this record and its line in {started} to retry")


class ScanLogBusy(RuntimeError):
    """Another scanner holds the JSONL."""


class ScanLog:
    """Use as a context manager around the scan: `started(path)` before analysing an input, `released(path)`
    when its analysis is abandoned without a record, `died(done)` on resume."""

    def __init__(self, jsonl: str | os.PathLike):
        self.jsonl = Path(jsonl)
        self.started_path = Path(f"{self.jsonl}.started")
        self._lock = None

    def __enter__(self) -> "ScanLog":
        self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.jsonl, "a", encoding="utf-8")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise ScanLogBusy(f"{printable(self.jsonl)}: another forensics detect is writing to it; wait for it to "
                              "finish, or give this scan its own --jsonl") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._lock is not None:
            self._lock.close()              # closing the file releases the lock
            self._lock = None

    def started(self, path: str | os.PathLike) -> None:
        append_jsonl(self.started_path, {"path": str(path), "path_bytes": os.fsencode(path).hex()})

    def released(self, path: str | os.PathLike) -> None:
        append_jsonl(self.started_path, {"path": str(path), "path_bytes": os.fsencode(path).hex(), "released": True})

    def died(self, done: set[str]) -> dict[str, str]:
        """path_key -> reason, for inputs a previous scan started and never finished nor released."""
        last: dict[str, bool] = {}
        for entry in read_jsonl(self.started_path):
            if isinstance(entry.get("path"), str):
                last[path_key(record_path(entry))] = bool(entry.get("released"))
        reason = DIED.format(started=self.started_path)
        return {key: reason for key, released in last.items() if not released and key not in done}
