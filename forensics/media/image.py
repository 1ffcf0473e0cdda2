"""Still images through Pillow: EXIF orientation applied, every pixel format reduced to RGB uint8."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import MediaError, one_line
from .sniff import check_readable_file, read_head, sniff_signature
from .types import IMAGE, MIN_SIDE, VIDEO, MediaInfo, fit_pixels

EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientation -> clockwise rotation needed for display (the mirrored variants share a rotation).
_ORIENTATION_TO_ROTATION = {1: 0, 2: 0, 3: 180, 4: 180, 5: 90, 6: 90, 7: 270, 8: 270}
# Pillow raises an assortment of exception types on damaged files; all of them mean "bad image".
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
               ZeroDivisionError, AttributeError, RuntimeError, Image.DecompressionBombError)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """HxWx3 uint8 RGB as displayed (EXIF orientation applied), C-contiguous."""
    p = check_readable_file(path)
    return _decode(p)[0]


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, MediaInfo]:
    """Pixels and info from a single decode."""
    p = check_readable_file(path)
    rgb, rotation, fmt, stored, frames = _decode(p)
    height, width = rgb.shape[:2]
    info = MediaInfo(path=str(p), kind=IMAGE, width=width, height=height, fps=None, frames=frames,
                     duration=None, rotation=rotation, codec=fmt, container=None,
                     stored_size=stored if stored != (width, height) else None)
    return rgb, info


def is_decodable_image(path: Path) -> bool:
    """Cheap header check used when the magic bytes were not recognised (TGA, PPM and friends)."""
    try:
        with Image.open(path) as im:
            return im.size[0] > 0 and im.size[1] > 0
    except _PIL_ERRORS:
        return False


def _decode(path: Path) -> tuple[np.ndarray, int, str | None, tuple[int, int], int]:
    """Full decode (so truncation is caught here, not later in a detector); returns rgb (downscaled to
    MAX_FRAME_PIXELS when larger), rotation, format, the displayed size in the file and its frame count
    (animated GIF/WebP/PNG have several; the first is returned)."""
    try:
        with Image.open(path) as im:
            fmt = (im.format or "").lower() or None
            frames = int(getattr(im, "n_frames", 1) or 1)
            orientation = _exif_orientation(im)
            _check_size(path, im.size)
            im.load()
            upright = ImageOps.exif_transpose(im) if orientation not in (0, 1) else im
            stored = upright.size
            if fit_pixels(*stored) != stored:
                upright = _downscale(upright, fit_pixels(*stored))
            rgb = to_rgb_uint8(upright)
    except MediaError:
        raise
    except Image.DecompressionBombError as exc:
        raise MediaError(path, f"image too large ({one_line(exc)})") from None
    except Image.UnidentifiedImageError:
        signature = sniff_signature(read_head(path))
        if signature is not None and signature.kind == VIDEO:
            raise MediaError(path, f"not an image (the content is {signature.label} video)") from None
        if signature is not None and signature.kind == IMAGE:
            raise MediaError(path, f"{signature.label} images are not supported (no decoder for them is installed); "
                                   "convert it to JPEG or PNG first") from None
        raise MediaError(path, "not a video or image (unrecognised content)") from None
    except MemoryError:
        raise MediaError(path, "image too large to decode (out of memory)") from None
    except _PIL_ERRORS as exc:
        raise MediaError(path, f"truncated or corrupt: {one_line(exc) or type(exc).__name__}") from None
    return rgb, _ORIENTATION_TO_ROTATION.get(orientation, 0), fmt, stored, frames


def _downscale(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Area-averaged where the mode allows it (some high-bit-depth and palette modes only resample nearest)."""
    try:
        return im.resize(size, Image.Resampling.BOX)
    except ValueError:
        return im.resize(size, Image.Resampling.NEAREST)


def _exif_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
    except _PIL_ERRORS:
        return 1  # an unreadable EXIF block should not cost us the pixels


def _check_size(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if width < MIN_SIDE or height < MIN_SIDE:
        raise MediaError(path, f"image too small ({width}x{height}; minimum {MIN_SIDE}x{MIN_SIDE})")


def to_rgb_uint8(im: Image.Image) -> np.ndarray:
    """Reduce any Pillow mode to HxWx3 uint8.

    High-bit-depth greys are rescaled rather than clipped (Pillow's own convert() clips 16-bit values
    to 255, which turns most photos white). Transparent pixels are composited on white, as a browser
    shows them, instead of exposing whatever colour the encoder left under alpha=0.
    """
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _gray_to_rgb(_rescale_to_uint8(np.asarray(im), mode))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:4] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def _rescale_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    values = values.astype(np.float64)
    if mode == "F":
        top = 1.0 if values.size and np.nanmax(values) <= 1.0 else 255.0
    elif mode == "I" and values.size and values.max() <= 255:
        top = 255.0
    else:
        top = 65535.0
    scaled = np.nan_to_num(values / top * 255.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
