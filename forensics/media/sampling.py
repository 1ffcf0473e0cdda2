"""Choosing and decoding frames from a video: every frame, every k-th, N spread evenly, or N in clips.

Clips (N frames as N / L windows of L consecutive frames, the windows spread evenly) are what a temporal
detector needs: motion and flicker live between neighbouring frames, which evenly spread frames of a long
video never are. A frame detector loses nothing by them, so `forensics detect` samples clips by default.

N evenly spaced frames from a long video are fetched by seeking (jump to the keyframe before each
target, decode forward to it) when the targets are further apart than a keyframe interval; otherwise
one forward pass is cheaper. Both paths pick the same frame for a target: the first one whose index
is >= the target.
"""
from __future__ import annotations

import math

from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ._av import DECODE_ERRORS, count_packets, open_input, quiet_ffmpeg
from .errors import ffmpeg_reason
from .types import Frame, FrameSample
from .video import VideoSource

# x264's default keyframe interval; assumed when the container has no index to count keyframes in.
DEFAULT_KEYFRAME_INTERVAL = 250
# How many frames short of the header's (or duration's) promise still counts as a complete read:
# duration x fps estimates are off by a frame or so.
END_SLACK_FRAMES = 2
# Where only the duration is known, a read ending this close to it is complete (the last frame is held).
END_SLACK_SECONDS = 0.5
# Give up on a seek target after this many back-offs (each doubles the distance).
MAX_SEEK_RETRIES = 4
SEEK = "seek"
SCAN = "scan"


def evenly_spaced(total: int, n: int) -> list[int]:
    """N indices spread over [0, total-1], both ends included (all indices when n >= total)."""
    if n >= total:
        return list(range(total))
    return sorted({int(i) for i in np.round(np.linspace(0, total - 1, n))})


def clip_windows(total: int, n: int, clip_len: int) -> list[int]:
    """N indices as ceil(N / clip_len) windows of clip_len consecutive frames, the windows' starts spread
    evenly over [0, total - clip_len] (first and last window included); all indices when n >= total.
    A video shorter than one window gives all its frames."""
    if n >= total or clip_len >= total:
        return list(range(total))
    clip_len = max(1, min(clip_len, n))
    windows = max(1, -(-n // clip_len))
    starts = evenly_spaced(total - clip_len + 1, windows)
    return sorted({s + k for s in starts for k in range(clip_len)})


def keyframe_interval(stream) -> int | None:
    """Average frames per keyframe from the container index (MP4, AVI); None when there is none."""
    try:
        entries = stream.index_entries
        count = min(len(entries), 20000)
        if count < 2:
            return None
        keyframes = sum(1 for i in range(count) if entries[i].is_keyframe)
    except DECODE_ERRORS + (AttributeError, IndexError):
        return None
    return max(1, round(count / keyframes)) if keyframes else None


def choose_strategy(total: int | None, n: int, interval: int | None, has_timestamps: bool) -> str:
    """Seek when consecutive targets sit at least one keyframe interval apart."""
    if not has_timestamps or not total or n >= total:
        return SCAN
    spacing = total / max(n, 1)
    return SEEK if spacing >= (interval or DEFAULT_KEYFRAME_INTERVAL) else SCAN


def sample_video(source: VideoSource, n: int | None = None, every: int | None = None,
                 max_frames: int | None = None, strategy: str | None = None,
                 clip_len: int | None = None) -> FrameSample:
    """Frames from an open video. For n, `strategy` forces "seek" (a seek per target) or "scan"
    (one forward pass) instead of the automatic choice; `clip_len` takes the n frames as windows of
    that many consecutive frames (clip_windows)."""
    if n is None:
        return _scan_selected(source, every=every or 1, limit=max_frames)
    n = min(n, max_frames) if max_frames else n
    total = source.info.frames or _count_frames(source)
    if not total:
        return _scan_selected(source, every=1, limit=n)
    targets = clip_windows(total, n, clip_len) if clip_len and clip_len > 1 else evenly_spaced(total, n)
    jumps = -(-len(targets) // clip_len) if clip_len and clip_len > 1 else len(targets)
    interval = keyframe_interval(source.stream)
    chosen = strategy or choose_strategy(total, jumps, interval, source.clock.has_timestamps)
    if chosen == SEEK and source.clock.has_timestamps and _seekable(source):
        # Automatic seeking still decodes forward to a target less than a keyframe interval ahead.
        forward = 0 if strategy == SEEK else (interval or DEFAULT_KEYFRAME_INTERVAL)
        return _by_seeking(source, targets, forward)
    return _by_scanning(source, targets)


def _seekable(source: VideoSource) -> bool:
    """Timestamp seeking needs timestamps; raw elementary streams (bare .h264) have none."""
    return source.first.pts is not None and source.stream.time_base is not None


def _count_frames(source: VideoSource) -> int:
    with quiet_ffmpeg():
        container = open_input(Path(source.path), source.demuxer)
        try:
            return count_packets(container, container.streams[source.stream.index])
        finally:
            container.close()


def finish(source: VideoSource, frames: list[Frame], extra: list[str]) -> FrameSample:
    problems = extra + source.report.problems()
    warning = "truncated or corrupt: " + "; ".join(problems) if problems else None
    return FrameSample(frames=frames, info=source.info, complete=not problems, warning=warning)


def _scan_selected(source: VideoSource, every: int, limit: int | None) -> FrameSample:
    """Every `every`-th frame from the start; checks the frame count when the read reaches the end."""
    frames: list[Frame] = []
    seen, last_t = 0, None
    reached_end = True
    for index, t, frame in source.scan():
        seen, last_t = seen + 1, t
        if index % every:
            continue
        frames.append(Frame(index=index, t=t, image=source.rgb(frame)))
        if limit and len(frames) >= limit:
            reached_end = False
            break
    return finish(source, frames, shortfall(source, seen, last_t) if reached_end else [])


def shortfall(source: VideoSource, seen: int, last_t: float | None) -> list[str]:
    """A read that reached the end but clearly fell short of what the file promises lost some.

    The promise is the frame count where the container lists one (MP4, MOV, AVI). Elsewhere (MKV, WebM,
    MPEG-TS) only the duration is known, and a count estimated from it overshoots wherever frames are held
    (a variable-frame-rate pause), so the read is checked against the duration: it must get to its end."""
    declared = int(source.stream.frames or 0)
    if declared:
        if seen < declared - END_SLACK_FRAMES - declared // 50:
            return [f"decoded {seen} of {declared} frames"]
        return []
    duration, fps = source.info.duration, source.clock.fps
    if duration and fps and last_t is not None:
        slack = max((END_SLACK_FRAMES + 1) / fps, END_SLACK_SECONDS, duration / 50)
        if last_t < duration - slack:
            return [f"decoding ended at {last_t:.1f} s of {duration:.1f} s"]
    return []


def _by_scanning(source: VideoSource, targets: list[int]) -> FrameSample:
    """One forward pass, keeping the first frame at or after each target; stops after the last."""
    frames: list[Frame] = []
    pending = list(targets)
    last: tuple[int, float, av.VideoFrame] | None = None
    for index, t, frame in source.scan():
        last = (index, t, frame)
        if index >= pending[0]:
            frames.append(Frame(index=index, t=t, image=source.rgb(frame)))
            while pending and pending[0] <= index:
                pending.pop(0)
            if not pending:
                break
    return finish(source, frames, _settle_tail(source, frames, pending, last, targets))


def _settle_tail(source: VideoSource, frames: list[Frame], pending: list[int],
                 last: tuple[int, float, av.VideoFrame] | None, targets: list[int]) -> list[str]:
    """Targets left at the end of the file: a frame count estimated from the duration can overshoot
    by a frame or two, so the final frame stands in for them; anything further is missing.

    A target answered by a frame two or more indices later means the frames in between were lost only
    where the rate is known to be constant: the container lists every frame (MP4, MOV, AVI: the frame
    count and FFmpeg's average rate come from the index). Elsewhere (MKV, WebM, MPEG-TS) the rate is a
    guess from the first packets, and variable-frame-rate video (phones, screen recorders) holding a
    frame over a pause jumps the indices legitimately; loss there shows in DecodeReport instead."""
    indexed = bool(source.stream.frames)
    problems = _gaps(frames, targets) if source.clock.constant_rate and indexed else []
    if pending and last is not None and pending[0] - last[0] <= END_SLACK_FRAMES:
        if not frames or frames[-1].index < last[0]:
            frames.append(Frame(index=last[0], t=last[1], image=source.rgb(last[2])))
        pending = [p for p in pending if p - last[0] > END_SLACK_FRAMES]
    if pending:
        problems.append(f"{len(pending)} of {len(targets)} requested frames could not be decoded"
                        f" (from frame {pending[0]})")
    return problems


def _gaps(frames: list[Frame], targets: list[int]) -> list[str]:
    chosen = iter(frames)
    frame = next(chosen, None)
    lost = []
    for target in targets:
        while frame is not None and frame.index < target:
            frame = next(chosen, None)
        if frame is None:
            break
        if frame.index - target >= 2:
            lost.append(target)
    if lost:
        return [f"frames missing at {len(lost)} requested position{'s' if len(lost) != 1 else ''}"
                f" (first at frame {lost[0]})"]
    return []


def _by_seeking(source: VideoSource, targets: list[int], forward: float) -> FrameSample:
    frames: list[Frame] = []
    pending = list(targets)
    # Opening already decoded frame 0: start from there, so an early target costs no seek.
    decoder: Iterator | None = source.scan()
    position = 0                     # index of the next frame the current decoder can reach
    seen: list = [None]              # last (index, t, frame) decoded, for the end-of-file rule
    while pending:
        target = pending[0]
        if decoder is None or target - position > forward:
            decoder, found, rewound = _seek_to(source, target, seen)
            if rewound:              # seeking lands on no decodable frame here: decode forward from now on
                forward = math.inf
        else:
            found = _advance(decoder, target, seen)
        if found is None:            # end of file (or unreadable) before the target
            break
        index, t, frame = found
        position = index
        frames.append(Frame(index=index, t=t, image=source.rgb(frame)))
        while pending and pending[0] <= index:
            pending.pop(0)
    return finish(source, frames, _settle_tail(source, frames, pending, seen[0], targets))


def _advance(decoder: Iterator, target: int, seen: list):
    for found in decoder:
        seen[0] = found
        if found[0] >= target:
            return found
    return None


def _seek_to(source: VideoSource, target: int, seen: list):
    """Seek so decoding starts at or before `target`, then decode forward to it: (decoder, frame found,
    whether it took a rewind to the start).

    Containers index by decode timestamps and MPEG-TS seeks by bisection, so the keyframe found can
    sit after the target; back off (doubling) until the first decoded frame is at or before it. The
    last try rewinds to the start: in a stream with one keyframe (a long-GOP MPEG-TS) no other seek
    gives a decodable frame at all.
    """
    backoff = 0
    step = max(1, int(source.clock.fps or 25))       # one second of frames
    landed_after = None
    landed_nowhere = False           # a seek that gave no decodable frame at all
    for attempt in range(MAX_SEEK_RETRIES + 1):
        start = 0 if attempt == MAX_SEEK_RETRIES else max(0, target - backoff)
        try:
            decoder = source.seek(start)
        except DECODE_ERRORS as exc:
            source.report.stopped = f"seek failed: {ffmpeg_reason(exc)}"
            return None, None, False
        first = next(decoder, None)
        if first is not None:
            if first[0] <= target:
                seen[0] = first
                found = first if first[0] >= target else _advance(decoder, target, seen)
                return decoder, found, start == 0 and landed_nowhere
            landed_after = (decoder, first)
        else:
            landed_nowhere = True
        if start == 0:
            break
        backoff = max(step, backoff * 2)
    if landed_after is not None:     # even the start of the file decodes past the target
        seen[0] = landed_after[1]
        return (*landed_after, False)
    return None, None, False
