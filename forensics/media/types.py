"""Plain records returned by the media layer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VIDEO = "video"
IMAGE = "image"

# Below this, face detectors find nothing and "images" are usually tracking pixels or icons.
MIN_SIDE = 16


@dataclass
class MediaInfo:
    """What a file holds, as a viewer would display it.

    `width`/`height` are the size of the frames this layer returns (rotation already applied).
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
