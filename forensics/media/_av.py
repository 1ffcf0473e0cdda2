"""Thin, failure-tolerant wrappers around PyAV: quiet logging, opening, packet-by-packet decoding.

Decoding goes packet by packet through `container.demux` (not `container.decode`) so that one damaged
packet costs one frame instead of ending the whole read: each failure is counted in a `DecodeReport`
and the loop moves on.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import av.error
import av.logging

from .errors import MediaError, ffmpeg_reason

# Everything PyAV/FFmpeg raises for bad data. InvalidDataError is a ValueError and av's EOFError an
# OSError; PyAV also raises plain ValueError/RuntimeError for some malformed inputs.
DECODE_ERRORS = (av.error.FFmpegError, OSError, ValueError, RuntimeError, EOFError)

_log_lock = threading.Lock()
_log_depth = 0
_saved_level: int | None = None


@contextlib.contextmanager
def quiet_ffmpeg() -> Iterator[None]:
    """Keep FFmpeg's messages off stderr and out of Python logging while we decode.

    Level PANIC emits nothing, yet PyAV still records the last ERROR-level message and attaches it to
    the exception it raises, which gives our reasons their detail ("moov atom not found").
    Nesting- and thread-safe; the caller's previous level comes back when the outermost block exits.
    """
    global _log_depth, _saved_level
    with _log_lock:
        if _log_depth == 0:
            _saved_level = av.logging.get_level()
            av.logging.set_level(av.logging.PANIC)
        _log_depth += 1
    try:
        yield
    finally:
        with _log_lock:
            _log_depth -= 1
            if _log_depth == 0:
                av.logging.set_level(_saved_level)


def open_input(path: Path, demuxer: str | None) -> av.container.InputContainer:
    """Open for reading; the sniffed demuxer (when known) overrides FFmpeg's extension-based guess. Metadata
    that is not UTF-8 (a Latin-1 title tag) is read with replacement characters: a tag must never decide
    whether a video gets a verdict."""
    try:
        return av.open(str(path), mode="r", format=demuxer, metadata_errors="replace")
    except DECODE_ERRORS as exc:
        raise MediaError(path, f"truncated or corrupt: {ffmpeg_reason(exc)}") from None


def pick_video_stream(container, path: Path) -> av.video.stream.VideoStream:
    """The main video stream; cover art (an attached picture in an audio file) does not count."""
    videos = [s for s in container.streams.video
              if not (s.disposition & av.stream.Disposition.attached_pic)]
    if videos:
        # Prefer the stream FFmpeg calls best (largest, default-flagged), else the first.
        try:
            best = container.streams.best("video")
        except DECODE_ERRORS:
            best = None
        return best if best in videos else videos[0]
    kinds = sorted({s.type for s in container.streams
                    if not (s.disposition & av.stream.Disposition.attached_pic)})
    if not container.streams:
        raise MediaError(path, "no video stream (the container holds no streams: empty or truncated)")
    if kinds == ["audio"]:
        raise MediaError(path, "no video stream (audio only)")
    if not kinds:
        raise MediaError(path, "no video stream (only a cover picture)")
    raise MediaError(path, f"no video stream (only {', '.join(kinds)} streams; truncated or not a video)")


@dataclass
class DecodeReport:
    """What went wrong while decoding, kept so a damaged file yields frames plus a warning."""

    frames: int = 0                  # frames produced by the decoder (before any selection)
    packet_errors: int = 0           # packets the decoder rejected after the first good frame
    leading_errors: int = 0          # rejected before any frame came out (e.g. a stream cut mid-GOP)
    corrupt_frames: int = 0          # frames FFmpeg flagged as decoded with concealed errors
    corrupt_packets: int = 0         # packets the demuxer flagged as damaged (an MPEG-TS continuity break)
    stopped: str | None = None       # reason reading ended before the end of the file
    damaged_file: str | None = None  # damage visible in the file itself (e.g. it ends mid-packet)
    first_error: str | None = None

    def note_packet_error(self, exc: BaseException) -> None:
        if self.frames:
            self.packet_errors += 1
        else:
            self.leading_errors += 1
        if self.first_error is None:
            self.first_error = ffmpeg_reason(exc)

    def problems(self) -> list[str]:
        out = [self.damaged_file] if self.damaged_file else []
        if self.stopped:
            out.append(f"reading stopped early ({self.stopped})")
        if self.packet_errors:
            out.append(f"{self.packet_errors} undecodable packet{'s' if self.packet_errors != 1 else ''}"
                       + (f" ({self.first_error})" if self.first_error else ""))
        if self.corrupt_packets:
            out.append(f"{self.corrupt_packets} damaged packet{'s' if self.corrupt_packets != 1 else ''}"
                       " (the container's continuity is broken)")
        if self.corrupt_frames:
            out.append(f"{self.corrupt_frames} frame{'s' if self.corrupt_frames != 1 else ''}"
                       " decoded with errors")
        return out


def decode_packets(container, stream, report: DecodeReport) -> Iterator[av.VideoFrame]:
    """Yield decoded frames of `stream`, skipping packets the decoder rejects.

    A demuxer failure (truncated file, broken index) ends the read, but the decoder is still flushed
    so frames it had buffered are not lost.
    """
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except DECODE_ERRORS as exc:
            report.stopped = ffmpeg_reason(exc)
            yield from _flush(stream, report)
            return
        if packet.size and packet.is_corrupt:
            report.corrupt_packets += 1
        try:
            frames = packet.decode()
        except DECODE_ERRORS as exc:
            report.note_packet_error(exc)
            continue
        yield from _counted(frames, report)


def _flush(stream, report: DecodeReport) -> Iterator[av.VideoFrame]:
    try:
        frames = stream.decode(None)
    except DECODE_ERRORS:
        return
    yield from _counted(frames, report)


def _counted(frames, report: DecodeReport) -> Iterator[av.VideoFrame]:
    """Pass frames through, tallying them (and those FFmpeg flags corrupt) in the report."""
    for frame in frames:
        report.frames += 1
        if frame.is_corrupt:
            report.corrupt_frames += 1
        yield frame


def count_packets(container, stream) -> int:
    """Frame count by demuxing without decoding: cheap, for containers whose header has no count."""
    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:
                count += 1
    except DECODE_ERRORS:
        pass
    return count
