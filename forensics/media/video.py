"""One open video: container, chosen stream, timing, rotation, and the first decoded frame.

Opening always decodes the first frame: it proves the file is usable (a header without decodable
frames is rejected here, with a reason), and it carries the display matrix that tells the rotation.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ._av import DecodeReport, decode_packets, open_input, pick_video_stream, quiet_ffmpeg
from .errors import MediaError
from .types import MAX_VIDEO_PIXELS, MIN_SIDE, VIDEO, MediaInfo, fit_pixels

MAX_PLAUSIBLE_FPS = 1000.0


@dataclass(frozen=True)
class StreamClock:
    """Maps a frame's timestamp to (index, seconds) and back."""

    time_base: Fraction | None
    start_pts: int
    fps: float | None
    constant_rate: bool = True   # False for variable-frame-rate streams (phones, screen captures)

    @property
    def has_timestamps(self) -> bool:
        return self.time_base is not None and self.fps is not None

    def seconds(self, frame: av.VideoFrame) -> float | None:
        if frame.pts is None or self.time_base is None:
            return None
        return float((frame.pts - self.start_pts) * self.time_base)

    def pts_of(self, index: int) -> int:
        """Timestamp of frame `index` (only meaningful when `has_timestamps`)."""
        return self.start_pts + int(round(index / self.fps / self.time_base))


class VideoSource:
    """An open video positioned just after its first frame. Use as a context manager.

    `scan()` decodes from the start (re-using the first frame); `seek(index)` jumps near a frame.
    FFmpeg logging stays silenced for the lifetime of the source.
    """

    def __init__(self, path: Path, demuxer: str | None, recognised: bool = True):
        self.path = path
        self.demuxer = demuxer
        self.report = DecodeReport()
        self._quiet = quiet_ffmpeg()
        self._quiet.__enter__()
        self._closed = False
        self.container = None
        try:
            self.container = open_input(path, demuxer)
            if not recognised and not self.container.streams.video:
                raise MediaError(path, "not a video or image (unrecognised content)")
            self.stream = pick_video_stream(self.container, path)
            _check_pixels(path, self.stream.codec_context.width, self.stream.codec_context.height)
            self._decoded = decode_packets(self.container, self.stream, self.report)
            self.first = self._first_frame(recognised)
            self.rotation = _rotation_of(self.first, self.stream)
            self.clock = _clock_of(self.stream, self.first)
            self.info = _info_of(path, self.container, self.stream, self.first, self.rotation, self.clock)
            self.report.damaged_file = _ends_mid_packet(path, self.container)
        except BaseException:
            self.close()
            raise
        self._scanned = False

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.container is not None:
                self.container.close()
        finally:
            self._quiet.__exit__(None, None, None)

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # a forgotten iterator must not keep FFmpeg silenced or the file open
        try:
            self.close()
        except Exception:
            pass

    # -- decoding --------------------------------------------------------------------------------
    def scan(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        """(index, t, frame) for every frame from the start, indices strictly increasing."""
        if self._scanned:
            raise RuntimeError("VideoSource.scan() can only run once, before any seek")
        self._scanned = True
        yield from self._locate(itertools.chain([self.first], self._decoded))

    def seek(self, index: int) -> Iterator[tuple[int, float, av.VideoFrame]]:
        """Jump to the keyframe at or before frame `index`; yield (index, t, frame) from there on."""
        if index <= 0:
            # Back to the very beginning: a stream-less seek to 0 rewinds every demuxer, whereas a
            # timestamp seek to the start pts can land on the second keyframe (MPEG-TS, B-frames).
            self.container.seek(0, backward=True, any_frame=False)
        else:
            self.container.seek(self.clock.pts_of(index), stream=self.stream, backward=True,
                                any_frame=False)
        self._scanned = True
        return self._locate(decode_packets(self.container, self.stream, self.report), after=None)

    def _locate(self, frames, after: int | None = -1) -> Iterator[tuple[int, float, av.VideoFrame]]:
        """Attach index and time; `after=-1` enforces increasing indices from the start of a scan.

        Variable-frame-rate video can round two timestamps to the same index; bumping keeps indices
        unique. Frames before the stream start (codec pre-roll) are dropped.
        """
        last = after
        for counter, frame in enumerate(frames):
            t = self.clock.seconds(frame)
            if t is None or self.clock.fps is None:
                index = counter if last is None else last + 1
                t = index / self.clock.fps if self.clock.fps else (t or 0.0)
            else:
                if t < -1e-6:
                    continue
                t = max(t, 0.0)
                index = int(round(t * self.clock.fps))
                if last is not None and index <= last:
                    index = last + 1
            last = index
            yield index, t, frame

    def rgb(self, frame: av.VideoFrame) -> np.ndarray:
        return frame_to_rgb(frame, self.rotation)

    def _first_frame(self, recognised: bool) -> av.VideoFrame:
        for frame in self._decoded:
            return frame
        if not recognised:
            raise MediaError(self.path, "not a video or image (unrecognised content)")
        declared = self.stream.frames or 0
        detail = self.report.stopped or self.report.first_error
        if declared > 0:
            raise MediaError(self.path, f"truncated or corrupt: header lists {declared} frames but none"
                             " could be decoded" + (f" ({detail})" if detail else ""))
        if detail:
            raise MediaError(self.path, f"video has no decodable frames ({detail})")
        raise MediaError(self.path, "video has no decodable frames (the stream is empty)")


def frame_to_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    """HxWx3 uint8 RGB, rotated clockwise by `rotation` degrees for display, C-contiguous; a frame above
    MAX_FRAME_PIXELS is scaled down by FFmpeg on the way (the full-size RGB picture never exists)."""
    width, height = fit_pixels(frame.width, frame.height)
    if (width, height) != (frame.width, frame.height):
        frame = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    rgb = frame.to_ndarray(format="rgb24")
    if rotation:
        rgb = np.rot90(rgb, k=-(rotation // 90))  # np.rot90 turns counter-clockwise for k > 0
    return np.ascontiguousarray(rgb)


def _rotation_of(frame: av.VideoFrame, stream) -> int:
    """Clockwise display rotation, a multiple of 90.

    FFmpeg's display matrix says how far to turn the picture counter-clockwise; we report the
    clockwise turn, like the legacy `rotate` tag and OpenCV's CAP_PROP_ORIENTATION_META.
    """
    degrees = None
    try:
        ccw = frame.rotation
        if ccw is not None and not (isinstance(ccw, float) and math.isnan(ccw)):
            degrees = -float(ccw)
    except (AttributeError, ValueError):
        degrees = None
    if not degrees:
        tag = (stream.metadata or {}).get("rotate")
        try:
            degrees = float(tag) if tag is not None else 0.0
        except ValueError:
            degrees = 0.0
    return int(round(degrees / 90.0)) % 4 * 90


def _fps_of(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        try:
            fps = float(rate) if rate else 0.0
        except (TypeError, ZeroDivisionError):
            fps = 0.0
        if 0.0 < fps <= MAX_PLAUSIBLE_FPS:
            return fps
    return None


def _is_constant_rate(stream) -> bool:
    """FFmpeg's average rate drifts from the nominal rate when frame durations vary."""
    try:
        average, nominal = float(stream.average_rate or 0), float(stream.guessed_rate or 0)
    except (TypeError, ZeroDivisionError):
        return False
    return average > 0 and nominal > 0 and abs(average - nominal) <= 0.01 * nominal


def _clock_of(stream, first: av.VideoFrame) -> StreamClock:
    time_base = stream.time_base or (first.time_base if first.pts is not None else None)
    if stream.start_time is not None:
        start = int(stream.start_time)
    else:
        start = int(first.pts) if first.pts is not None else 0
    return StreamClock(time_base=time_base, start_pts=start, fps=_fps_of(stream),
                       constant_rate=_is_constant_rate(stream))


def _duration_of(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _info_of(path: Path, container, stream, first: av.VideoFrame, rotation: int,
             clock: StreamClock) -> MediaInfo:
    coded_w, coded_h = first.width, first.height
    if coded_w < MIN_SIDE or coded_h < MIN_SIDE:
        raise MediaError(path, f"video too small ({coded_w}x{coded_h}; minimum {MIN_SIDE}x{MIN_SIDE})")
    _check_pixels(path, coded_w, coded_h)
    kept_w, kept_h = fit_pixels(coded_w, coded_h)
    stored = None
    if (kept_w, kept_h) != (coded_w, coded_h):
        stored = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    width, height = (kept_h, kept_w) if rotation in (90, 270) else (kept_w, kept_h)
    duration = _duration_of(container, stream)
    frames = int(stream.frames) if stream.frames else None
    if frames is None and duration and clock.fps:
        frames = max(1, int(round(duration * clock.fps)))
    try:
        codec = stream.codec_context.name
    except AttributeError:
        codec = None
    return MediaInfo(path=str(path), kind=VIDEO, width=width, height=height, fps=clock.fps,
                     frames=frames, duration=duration, rotation=rotation, codec=codec,
                     container=_container_name(path, container), stored_size=stored)


def _check_pixels(path: Path, width: int | None, height: int | None) -> None:
    """Refuse frames above MAX_VIDEO_PIXELS before any is decoded (the header's size, when it has one)."""
    if width and height and width * height > MAX_VIDEO_PIXELS:
        side = int(MAX_VIDEO_PIXELS ** 0.5)
        raise MediaError(path, f"frames of {width}x{height} are above the {MAX_VIDEO_PIXELS / 1e6:.0f}-megapixel "
                               f"limit ({side}x{side}); downscale the video first")


def _ends_mid_packet(path: Path, container) -> str | None:
    """MPEG-TS is a sequence of 188-byte packets (192 in M2TS): a size that fits neither means the
    file was cut, which the demuxer itself never reports."""
    if "mpegts" not in (container.format.name or ""):
        return None
    size = path.stat().st_size
    if size % 188 and size % 192:
        return "file ends mid-packet (cut short)"
    return None


def _container_name(path: Path, container) -> str | None:
    """Short demuxer name; FFmpeg's "mov,mp4,m4a,..." becomes "mp4" or "mov" by the file's brand."""
    name = (container.format.name or "").split(",")[0] or None
    if name == "mov":
        with open(path, "rb") as fh:
            head = fh.read(12)
        return "mov" if head[4:8] != b"ftyp" or head[8:12] == b"qt  " else "mp4"
    return name
