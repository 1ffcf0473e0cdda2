"""The one typed error for bad media, and helpers that turn library exceptions into one-line reasons.

Every reader in the project reports unreadable input through `MediaError`, so callers (the CLI, dataset
adapters, the data loader) need a single `except` clause and can print `str(err)` as is: it is always one
line, `"<path>: <reason>"`, and never a traceback.
"""
from __future__ import annotations

import os

MAX_REASON_CHARS = 240


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """Collapse whitespace (FFmpeg and Pillow messages often end in newlines) and cap the length."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class MediaError(Exception):
    """Bad or unreadable media. `str(err) == f"{path}: {reason}"`, always a single line."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = one_line(os.fspath(path), limit=4096)
        self.reason = one_line(reason)
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):
        # Exceptions with a custom __init__ do not survive pickling by default; data-loader worker
        # processes send them back to the parent, so keep them picklable.
        return (type(self), (self.path, self.reason))


def ffmpeg_reason(exc: BaseException) -> str:
    """The most specific one-line text from a PyAV/FFmpeg exception.

    With FFmpeg logging captured (see `_av.quiet_ffmpeg`), PyAV attaches the last error logged by the
    demuxer or decoder (e.g. "moov atom not found"), which says far more than the errno text
    ("Invalid data found when processing input"), so prefer it.
    """
    log = getattr(exc, "log", None)
    if isinstance(log, tuple) and len(log) == 2 and isinstance(log[1], tuple) and len(log[1]) == 3:
        message = one_line(log[1][2])
        if message:
            return message
    strerror = getattr(exc, "strerror", None)
    if strerror:
        return one_line(strerror)
    return one_line(str(exc) or type(exc).__name__)
