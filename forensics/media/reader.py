"""Public read API: one entry point per question, the same for videos and images.

Which decoder a file gets is decided by its content (see `sniff`); images come back as a single frame
so callers can treat every input as a sequence of frames.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from ._av import open_input, pick_video_stream, quiet_ffmpeg
from .errors import MediaError
from .image import is_decodable_image, read_image
from .sampling import finish, sample_video, shortfall
from .sniff import check_readable_file, read_head, sniff_signature
from .types import IMAGE, VIDEO, Frame, FrameSample, MediaInfo
from .video import VideoSource

UNRECOGNISED = "not a video or image (unrecognised content)"


def _route(path: str | os.PathLike) -> tuple[Path, str, str | None, bool]:
    """(path, kind, demuxer, recognised): `recognised` is False when no magic bytes matched and the
    file is only a video if FFmpeg can open it *and* decode a frame from it."""
    p = check_readable_file(path)
    signature = sniff_signature(read_head(p))
    if signature is not None:
        return p, signature.kind, signature.demuxer, True
    if is_decodable_image(p):
        return p, IMAGE, None, False
    return p, VIDEO, None, False


def media_kind(path: str | os.PathLike) -> str:
    """"video" or "image", by content. Raises MediaError when the file is neither (or has no video
    stream, e.g. audio only). Reads headers only for recognised formats; unknown bytes count as
    video only if a frame decodes."""
    p, kind, demuxer, recognised = _route(path)
    if kind == IMAGE:
        return IMAGE
    if not recognised:
        _open_video(p, demuxer, recognised).close()
        return VIDEO
    with quiet_ffmpeg():
        container = open_input(p, demuxer)
        try:
            pick_video_stream(container, p)
        finally:
            container.close()
    return VIDEO


def probe(path: str | os.PathLike) -> MediaInfo:
    """Size, rate, length, rotation and codec; decodes one frame to prove the file is usable."""
    p, kind, demuxer, recognised = _route(path)
    if kind == IMAGE:
        return _read_image(p, recognised)[1]
    with _open_video(p, demuxer, recognised) as source:
        return source.info


def open_video(path: str | os.PathLike) -> VideoSource:
    """An open `VideoSource` (close it, or use `with`) for callers needing more control than
    `sample_frames` gives, e.g. `sampling.sample_video(source, n, strategy="seek")`."""
    p, kind, demuxer, recognised = _route(path)
    if kind == IMAGE:
        raise MediaError(p, "not a video (the content is an image)")
    return _open_video(p, demuxer, recognised)


def _open_video(p: Path, demuxer: str | None, recognised: bool) -> VideoSource:
    if recognised:
        return VideoSource(p, demuxer)
    try:
        return VideoSource(p, None, recognised=False)
    except MediaError as err:
        if err.reason.startswith("truncated or corrupt"):  # FFmpeg could not open it at all
            raise MediaError(p, UNRECOGNISED) from None
        raise


def sample_frames(path: str | os.PathLike, n: int | None = None, every: int | None = None,
                  max_frames: int | None = None, clip_len: int | None = None) -> FrameSample:
    """Frames from a video or image.

    n: N frames evenly spaced over the video (first and last included); seeks when targets are
       further apart than a keyframe interval. every: frames 0, k, 2k, ... Neither: every frame.
    clip_len (with n): the n frames as evenly spread windows of clip_len consecutive frames.
    max_frames caps the count. A damaged video yields what could be decoded with complete=False and
    a one-line warning; MediaError only when nothing at all can be decoded.
    """
    _check_counts(n=n, every=every, max_frames=max_frames, clip_len=clip_len)
    if n is not None and every is not None:
        raise ValueError("sample_frames: pass n or every, not both")
    p, kind, demuxer, recognised = _route(path)
    if kind == IMAGE:
        return _image_sample(p, recognised)
    with _open_video(p, demuxer, recognised) as source:
        return sample_video(source, n=n, every=every, max_frames=max_frames, clip_len=clip_len)


def iter_frames(path: str | os.PathLike, every: int = 1) -> "FrameIterator":
    """Stream frames 0, every, 2*every, ... one at a time (constant memory for long videos).

    Opens and validates the file immediately (bad input raises MediaError here, not mid-loop).
    After exhaustion the iterator's `complete` and `warning` say whether the file was damaged.
    """
    _check_counts(every=every)
    return FrameIterator(path, every)


class FrameIterator(Iterator[Frame]):
    """Iterator over Frames; `info` is known up front, `complete`/`warning` once exhausted."""

    def __init__(self, path: str | os.PathLike, every: int = 1):
        p, kind, demuxer, recognised = _route(path)
        self.complete: bool | None = None
        self.warning: str | None = None
        self._source: VideoSource | None = None
        if kind == IMAGE:
            sample = _image_sample(p, recognised)
            self.info = sample.info
            self._frames = iter(sample.frames)
            self.complete = True
        else:
            self._source = _open_video(p, demuxer, recognised)
            self.info = self._source.info
            self._frames = self._decode(self._source, every)

    def _decode(self, source: VideoSource, every: int) -> Iterator[Frame]:
        try:
            seen, last_t = 0, None
            for index, t, frame in source.scan():
                seen, last_t = seen + 1, t
                if index % every == 0:
                    yield Frame(index=index, t=t, image=source.rgb(frame))
            summary = finish(source, [], shortfall(source, seen, last_t))
            self.complete, self.warning = summary.complete, summary.warning
        finally:
            source.close()

    def __iter__(self) -> "FrameIterator":
        return self

    def __next__(self) -> Frame:
        return next(self._frames)

    def close(self) -> None:
        """Release the file early (stopping a loop with `break` and dropping the iterator also does)."""
        if self._source is not None:
            self._source.close()
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "FrameIterator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read_image(p: Path, recognised: bool):
    """Pillow also accepts formats without magic bytes (TGA); if such a guess fails to decode, the
    honest reason is that the content is unrecognised, not that an image is corrupt."""
    try:
        return read_image(p)
    except MediaError as err:
        if not recognised and err.reason.startswith("truncated or corrupt"):
            raise MediaError(p, UNRECOGNISED) from None
        raise


def _image_sample(p: Path, recognised: bool = True) -> FrameSample:
    image, info = _read_image(p, recognised)
    animated = (f"animated image: only the first of its {info.frames} frames is analysed (convert it to a video to "
                "analyse them all)") if (info.frames or 1) > 1 else None
    return FrameSample(frames=[Frame(index=0, t=0.0, image=image)], info=info, complete=True, warning=animated)


def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
