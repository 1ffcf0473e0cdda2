"""Media I/O: every other part of forensics decodes through here.

Videos go through PyAV (bundled FFmpeg: reads what OpenCV's wheel cannot, e.g. XVID AVI, and writes
libx264); still images through Pillow. Content, not the file extension, picks the decoder. Bad input
raises `MediaError` with a one-line "<path>: <reason>"; a video damaged mid-file yields the frames that
could be decoded with `complete=False` and a warning.
"""
from .errors import MediaError
from .image import load_image
from .reader import FrameIterator, iter_frames, media_kind, probe, sample_frames
from .types import Frame, FrameSample, MediaInfo
from .writer import VideoWriter, write_video

__all__ = [
    "MediaError",
    "MediaInfo",
    "Frame",
    "FrameSample",
    "FrameIterator",
    "media_kind",
    "probe",
    "load_image",
    "sample_frames",
    "iter_frames",
    "write_video",
    "VideoWriter",
]
