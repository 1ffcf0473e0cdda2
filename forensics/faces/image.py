"""Input normalisation shared by detection and cropping.

Frames reach this package from decoders, image files and generators with every channel layout and dtype
imaginable; MTCNN and cv2.warpAffine want HxWx3 uint8 RGB, so everything is funnelled through one function.
"""
from __future__ import annotations

import numpy as np


class FaceInputError(ValueError):
    """Bad input to the face pipeline; the message is one line naming the input and the reason."""


def to_rgb_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return `image` as a contiguous HxWx3 uint8 array (grayscale repeated, alpha dropped).

    Floats are taken as [0, 1] when their maximum is <= 1 (the torchvision convention), otherwise as
    [0, 255]; uint16 is scaled down by 257 so full white stays full white.
    """
    if not isinstance(image, np.ndarray):
        try:
            image = np.asarray(image)
        except Exception as exc:  # PIL images and tensors convert; anything else is the caller's bug
            raise FaceInputError(f"{name}: cannot be read as an array ({type(image).__name__}: {exc})") from None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise FaceInputError(f"{name}: expected HxW, HxWx1, HxWx3 or HxWx4 pixels, got shape {tuple(image.shape)}")
    image = image[:, :, :3]
    image = _to_uint8(image, name)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if image.dtype == np.uint16:
        return (image.astype(np.float32) / 257.0).round().astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and float(values.max()) <= 1.0:
            values = values * 255.0
        return np.clip(values, 0, 255).round().astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    raise FaceInputError(f"{name}: unsupported pixel type {image.dtype}")
