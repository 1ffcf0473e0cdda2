"""H.264 MP4 output that is never seen half-written.

Frames are encoded into a temporary file beside the target and renamed onto it only when the writer
closes cleanly, so an exception (or Ctrl-C) mid-way leaves no partial video where a reader or a
resumed job would trust it. The MP4 index is moved to the front (faststart): players can start
before the download ends, and a copy cut short still yields its first frames.
"""
from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

from ..io import atomic_path
from ._av import DECODE_ERRORS, quiet_ffmpeg
from .errors import MediaError, ffmpeg_reason

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
# Rates like 29.97 are stored exactly as 30000/1001 rather than as an ugly 2997/100 approximation.
MAX_RATE_DENOMINATOR = 1001


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, crf: int = 23,
                preset: str = "medium") -> Path:
    """Encode RGB uint8 HxWx3 frames to an H.264 (libx264, yuv420p) MP4, atomically.

    Odd widths/heights are padded by one edge-replicated pixel on the right/bottom (yuv420p needs
    even sizes; padding keeps every original pixel and every coordinate valid). An empty frame
    sequence raises MediaError and writes nothing.
    """
    with VideoWriter(path, fps, crf=crf, preset=preset) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


class VideoWriter:
    """Context-manager form of `write_video`: `with VideoWriter(p, fps) as w: w.write(frame)`.

    The target appears only after a clean exit; on an exception inside the block (or `abort()`),
    nothing is left behind. Without a `with`, call `close()` to commit or `abort()` to discard.
    """

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 23, preset: str = "medium"):
        if not (isinstance(fps, (int, float, Fraction)) and fps > 0):
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if not (isinstance(crf, int) and 0 <= crf <= 51):
            raise ValueError(f"crf must be an integer in 0..51, got {crf!r}")
        if preset not in X264_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}")
        self.path = Path(path)
        self.rate = Fraction(fps).limit_denominator(MAX_RATE_DENOMINATOR)
        self.crf = crf
        self.preset = preset
        self.frames_written = 0
        self._size: tuple[int, int] | None = None     # input (height, width) every frame must match
        self._stack: contextlib.ExitStack | None = None
        self._container = None
        self._stream = None
        self._done = False

    # -- public ----------------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        if self._done:
            raise RuntimeError("VideoWriter is closed")
        frame = self._check_frame(frame)
        if self._container is None:
            self._open(frame.shape[0], frame.shape[1])
        picture = av.VideoFrame.from_ndarray(_pad_to_even(frame), format="rgb24")
        picture.pts = self.frames_written
        picture.time_base = 1 / self.rate
        self._mux(self._stream.encode(picture))
        self.frames_written += 1

    def close(self) -> Path:
        """Flush, finalise and move the file into place."""
        if self._done:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise MediaError(self.path, "no frames to write (empty frame sequence)")
        try:
            self._mux(self._stream.encode(None))
            self._container.close()
            self._container = None
        except BaseException as exc:
            self.abort(exc)
            raise
        self._done = True
        stack, self._stack = self._stack, None
        stack.close()                      # renames the finished temp file onto the target
        return self.path

    def abort(self, exc: BaseException | None = None) -> None:
        """Discard everything written so far; the target is left untouched."""
        self._done = True
        if self._container is not None:
            with contextlib.suppress(*DECODE_ERRORS):
                self._container.close()
            self._container = None
        stack, self._stack = self._stack, None
        if stack is not None:
            # Passing an exception into atomic_path makes it delete the temp file instead of renaming.
            error = exc if exc is not None else _Discard()
            with contextlib.suppress(type(error)):
                stack.__exit__(type(error), error, error.__traceback__)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc)

    # -- internals -------------------------------------------------------------------------------
    def _open(self, height: int, width: int) -> None:
        self._size = (height, width)
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(quiet_ffmpeg())
        tmp = self._stack.enter_context(atomic_path(self.path, suffix=".mp4"))
        try:
            container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
            stream = container.add_stream("libx264", rate=self.rate)
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": self.preset}
        except DECODE_ERRORS as exc:
            self.abort(exc)
            raise MediaError(self.path, f"cannot create video: {ffmpeg_reason(exc)}") from None
        self._container, self._stream = container, stream

    def _mux(self, packets) -> None:
        self._container.mux(packets)

    def _check_frame(self, frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be HxWx3 uint8 RGB, got shape {frame.shape} {frame.dtype}")
        if frame.shape[0] < 2 or frame.shape[1] < 2:
            raise ValueError(f"frames must be at least 2x2 pixels, got {frame.shape[1]}x{frame.shape[0]}")
        if self._size is not None and frame.shape[:2] != self._size:
            raise ValueError(f"frame {self.frames_written} is {frame.shape[1]}x{frame.shape[0]},"
                             f" expected {self._size[1]}x{self._size[0]} like the first frame")
        return frame


class _Discard(Exception):
    """Internal signal that tells atomic_path to drop its temp file."""


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(frame)
