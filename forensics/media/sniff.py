"""Tell videos from images by their bytes, never by their file extension.

Datasets and user uploads are full of mislabelled files (PNGs saved as .mp4, MP4s saved as .jpg), so the
first bytes decide which decoder gets the file. A recognised video container also pins the FFmpeg
demuxer, so an `.jpg` extension cannot talk FFmpeg into its image demuxer.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import MediaError
from .types import IMAGE, VIDEO

HEAD_BYTES = 1024
TS_PACKET = 188

# ISO-BMFF brands that mark still images (HEIF/HEIC/AVIF) rather than movies.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
# Top-level QuickTime atoms that can open a .mov written without an 'ftyp' box.
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


@dataclass(frozen=True)
class Signature:
    kind: str             # VIDEO or IMAGE (audio containers route as VIDEO: FFmpeg reports them)
    label: str            # human name, used in messages ("MP4/MOV", "PNG")
    demuxer: str | None   # FFmpeg demuxer to force for videos; None lets FFmpeg probe


def check_readable_file(path: str | os.PathLike) -> Path:
    """Fail with a one-line reason for the cases no decoder should ever see."""
    p = Path(path)
    if not p.exists():
        raise MediaError(p, "file not found")
    if p.is_dir():
        raise MediaError(p, "is a directory, not a media file")
    if not p.is_file():
        raise MediaError(p, "not a regular file")
    try:
        size = p.stat().st_size
        with open(p, "rb"):
            pass
    except PermissionError:
        raise MediaError(p, "cannot read file (permission denied)") from None
    except OSError as exc:
        raise MediaError(p, f"cannot read file ({exc.strerror or exc})") from None
    if size == 0:
        raise MediaError(p, "file is empty (0 bytes)")
    return p


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def sniff_signature(head: bytes) -> Signature | None:
    """Match well-known magic bytes; None when the content is not one we can name."""
    if head.startswith(b"\xff\xd8\xff"):
        return Signature(IMAGE, "JPEG", None)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Signature(IMAGE, "PNG", None)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Signature(IMAGE, "GIF", None)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return Signature(IMAGE, "TIFF", None)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Signature(IMAGE, "WebP", None)
    if head[:2] == b"BM" and len(head) >= 26 and head[6:10] == b"\x00\x00\x00\x00":
        return Signature(IMAGE, "BMP", None)  # reserved bytes are zero in every real BMP
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"):
        return Signature(IMAGE, "JPEG 2000", None)
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return Signature(IMAGE, "HEIF/AVIF", None)
        return Signature(VIDEO, "MP4/MOV", "mov")
    if head[4:8] in _QUICKTIME_ATOMS:
        return Signature(VIDEO, "QuickTime", "mov")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Signature(VIDEO, "Matroska/WebM", "matroska")
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return Signature(VIDEO, "AVI", "avi")
    if head.startswith(b"FLV\x01"):
        return Signature(VIDEO, "FLV", "flv")
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return Signature(VIDEO, "ASF/WMV", "asf")
    if head.startswith(b"\x00\x00\x01\xba"):
        return Signature(VIDEO, "MPEG-PS", "mpeg")
    # Audio containers: FFmpeg opens them and the caller reports "no video stream (audio only)".
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Signature(VIDEO, "WAV", "wav")
    if head.startswith(b"ID3") or head.startswith(b"fLaC") or head.startswith(b"OggS"):
        return Signature(VIDEO, "audio/Ogg", None)
    if _looks_like_mpegts(head, 0, TS_PACKET) or _looks_like_mpegts(head, 4, TS_PACKET + 4):
        return Signature(VIDEO, "MPEG-TS", "mpegts")
    return None


def _looks_like_mpegts(head: bytes, offset: int, stride: int) -> bool:
    """Sync byte 0x47 at the start of three consecutive packets (188-byte TS or 192-byte M2TS)."""
    positions = [offset + i * stride for i in range(3)]
    if len(head) <= positions[-1]:
        positions = positions[:2]
        if len(head) <= positions[-1]:
            return False
    return all(head[pos] == 0x47 for pos in positions)
