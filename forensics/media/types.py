"""Plain records returned by the media layer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIDEO = "video"
IMAGE = "image"

# Below this, face detectors find nothing and "images" are usually tracking pixels or icons.
MIN_SIDE = 16
# Frames above 1440p-class pixel counts are downscaled to this many pixels before they are kept. MTCNN works
# on copies of at most 640 px, and the largest detector crop is 224 px, so only faces already larger than a
# crop lose detail; 32 sampled frames of an 8192x8192 video kept at full size would take 6.4 GB, and even 4K
# frames (796 MB for 32) put `forensics detect` at the edge of its 2 GB budget (benchmarks/detect_memory.py).
MAX_FRAME_PIXELS = 2560 * 1440
# Videos whose frames are larger than this are refused before decoding (8192x8192 covers 8K UHD, 7680x4320):
# one decoded 16000x16000 frame alone is 384 MB, and the decoder holds several.
MAX_VIDEO_PIXELS = 8192 * 8192


def fit_pixels(width: int, height: int, limit: int | None = None) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to at most `limit` (default MAX_FRAME_PIXELS) pixels, with
    even sides; unchanged if it fits."""
    limit = MAX_FRAME_PIXELS if limit is None else limit
    if width * height <= limit:
        return width, height
    scale = (limit / (width * height)) ** 0.5
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


@dataclass
class MediaInfo:
    """What a file holds, as a viewer would display it.

    `width`/`height` are the size of the frames this layer returns (rotation already applied; frames above
    MAX_FRAME_PIXELS are returned downscaled, and `stored_size` then gives the size in the file).
    `rotation` is the clockwise rotation, in degrees, that was applied to the stored pixels to display
    them (FFmpeg display matrix or EXIF orientation); it is informational only.
    `frames` is the header's frame count when the container stores one, else an estimate from
    duration x fps (None when neither is known).
    """

    path: str
    kind: str
    width: int
    height: int
    fps: float | None
    frames: int | None
    duration: float | None
    rotation: int
    codec: str | None
    container: str | None
    stored_size: tuple[int, int] | None = None     # (width, height) in the file when frames are downscaled


@dataclass
class Frame:
    """One decoded picture: HxWx3 uint8 RGB, rotation applied, C-contiguous.

    `index` is the frame number from the start of the stream (from the timestamp when there is one,
    index = round(t * fps), so a lost frame leaves a gap rather than shifting every later index);
    `t` is seconds from the stream start.
    """

    index: int
    t: float
    image: np.ndarray


@dataclass
class FrameSample:
    """Frames read from one file. `complete` is False when the file was damaged (frames lost or
    decoded with errors, reading stopped early); `warning` then says why in one line."""

    frames: list[Frame]
    info: MediaInfo
    complete: bool
    warning: str | None
