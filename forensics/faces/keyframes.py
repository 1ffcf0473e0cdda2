"""Frames in, faces per frame out, with MTCNN run only on keyframes.

MTCNN is the expensive stage (its image pyramid costs tens of milliseconds per HD frame), while faces in
consecutive video frames barely move. So in every-frame mode only every `detect_every`-th frame (a
keyframe) goes through MTCNN; the frames in between get faces carried from their two neighbouring
keyframes: a face found at both (matched by box overlap) has its box and landmarks interpolated linearly,
a face found at only one of them is held for the half of the gap nearest to it. The last frame of the
stream is always a keyframe, so no frame is left without a right-hand neighbour.

Frames are consumed in chunks (keyframes of a chunk go through MTCNN as one batch) and emitted as soon as
their faces are known, so memory is bounded by the chunk size however long the video is.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from forensics.faces.detector import Face
from forensics.faces.tracking import box_iou
from forensics.media.types import Frame

# A keyframe face and a face at the next keyframe are the same person when their boxes overlap this much.
MATCH_IOU = 0.3
# Keyframe spacing in source frames that auto mode aims for in every-frame mode (0.2 s at 25 fps):
# a talking head moves a few pixels in that time, well within what linear interpolation follows.
AUTO_KEYFRAME_SPACING = 5

DetectFn = Callable[[Sequence[np.ndarray]], list[list[Face]]]


@dataclass
class FaceFrame:
    """One decoded frame with its faces; `detected` is False when the faces were carried from keyframes."""

    frame: Frame
    faces: list[Face]
    detected: bool


def auto_detect_every(every: int | None) -> int:
    """Keyframe stride for a stream of every `every`-th frame (None = evenly sampled, far apart frames).

    Sampled frames are seconds apart, so each is detected; in every-frame mode keyframes land about
    AUTO_KEYFRAME_SPACING source frames apart whatever the --every step.
    """
    if every is None:
        return 1
    return max(1, round(AUTO_KEYFRAME_SPACING / every))


def interpolate_faces(start: list[Face], end: list[Face], fraction: float) -> list[Face]:
    """Faces at `fraction` (0..1) of the way from one keyframe to the next."""
    pairs, only_start, only_end = match_faces(start, end)
    faces = [_blend(start[i], end[j], fraction) for i, j in pairs]
    if fraction < 0.5:
        faces += [start[i] for i in only_start]
    else:
        faces += [end[j] for j in only_end]
    return faces


def match_faces(start: list[Face], end: list[Face]) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Greedy one-to-one pairing by IoU, best overlap first: (pairs, unmatched start, unmatched end)."""
    pairs: list[tuple[int, int]] = []
    if start and end:
        iou = box_iou(np.stack([f.box for f in start]), np.stack([f.box for f in end]))
        used_start: set[int] = set()
        used_end: set[int] = set()
        for flat in np.argsort(-iou, axis=None, kind="stable"):
            i, j = (int(v) for v in np.unravel_index(flat, iou.shape))
            if iou[i, j] < MATCH_IOU:
                break
            if i in used_start or j in used_end:
                continue
            pairs.append((i, j))
            used_start.add(i)
            used_end.add(j)
    matched_start = {i for i, _ in pairs}
    matched_end = {j for _, j in pairs}
    return (pairs, [i for i in range(len(start)) if i not in matched_start],
            [j for j in range(len(end)) if j not in matched_end])


def _blend(a: Face, b: Face, fraction: float) -> Face:
    box = (1.0 - fraction) * a.box.astype(np.float64) + fraction * b.box.astype(np.float64)
    landmarks = (1.0 - fraction) * a.landmarks.astype(np.float64) + fraction * b.landmarks.astype(np.float64)
    return Face(box=box.astype(np.float32), prob=min(a.prob, b.prob), landmarks=landmarks.astype(np.float32))


class KeyframeFaces:
    """Streams FaceFrames from Frames, running `detect` on keyframes only (see the module docstring).

    `seconds` accumulates the time spent inside `detect`, for per-stage timing.
    """

    def __init__(self, detect: DetectFn, detect_every: int = 1, chunk: int = 64) -> None:
        if detect_every < 1 or chunk < 1:
            raise ValueError(f"KeyframeFaces: detect_every and chunk must be >= 1, got {detect_every}, {chunk}")
        self.detect = detect
        self.detect_every = detect_every
        # Whole keyframe intervals per chunk, so at most detect_every-1 frames wait for the next chunk.
        self.chunk = max(detect_every, chunk - chunk % detect_every)
        self.seconds = 0.0

    def run(self, frames: Iterable[Frame]) -> Iterator[FaceFrame]:
        pending: list[tuple[int, Frame]] = []      # (position in the stream, frame) not yet emitted
        previous: tuple[int, list[Face]] | None = None
        position = 0
        for frame in frames:
            pending.append((position, frame))
            position += 1
            if len(pending) >= self.chunk:
                previous, pending = yield from self._flush(pending, previous, final=False)
        if pending:
            yield from self._flush(pending, previous, final=True)

    def _flush(self, pending: list[tuple[int, Frame]], previous: tuple[int, list[Face]] | None, final: bool):
        """Detect the keyframes among `pending`, emit every frame up to the last of them, and return
        (last keyframe, frames still waiting for a later keyframe)."""
        keys = [k for k, (pos, _) in enumerate(pending) if pos % self.detect_every == 0]
        if final and (not keys or keys[-1] != len(pending) - 1):
            keys.append(len(pending) - 1)
        started = time.perf_counter()
        detected = self.detect([pending[k][1].image for k in keys]) if keys else []
        self.seconds += time.perf_counter() - started
        faces_at = dict(zip(keys, detected))
        for k, (pos, frame) in enumerate(pending[: keys[-1] + 1] if keys else []):
            if k in faces_at:
                yield FaceFrame(frame, faces_at[k], detected=True)
                previous = (pos, faces_at[k])
                continue
            right = min(key for key in keys if key > k)
            right_pos, right_faces = pending[right][0], faces_at[right]
            if previous is None:  # frames before the first keyframe cannot happen (position 0 is one)
                faces = right_faces
            else:
                fraction = (pos - previous[0]) / (right_pos - previous[0])
                faces = interpolate_faces(previous[1], right_faces, fraction)
            yield FaceFrame(frame, faces, detected=False)
        rest = pending[keys[-1] + 1:] if keys else pending
        return previous, rest
