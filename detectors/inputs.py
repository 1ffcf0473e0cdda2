"""uint8 face crops -> a detector's normalised float input, in numpy: the one preprocessing that torch
(detectors.model.preprocess_crops) and onnxruntime (detectors.onnx_runtime) both feed their networks.

INTER_AREA when shrinking (it averages, so no aliasing is invented: aliasing would look like the very
upsampling traces the frequency branch hunts for), bilinear when enlarging. Non-square crops are stretched:
aligned face crops are square, so this only happens for foreign input.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def normalise_crops(crops: np.ndarray | Sequence[np.ndarray], size: int, mean: Sequence[float],
                    std: Sequence[float]) -> np.ndarray:
    """uint8 RGB crops of any size -> float32 [B, 3, size, size], /255, minus mean, over std."""
    if isinstance(crops, np.ndarray) and crops.ndim == 3:
        crops = crops[None]
    if len(crops) == 0:
        return np.zeros((0, 3, size, size), dtype=np.float32)
    batch = np.stack([_resize(_check_crop(crop, i), size) for i, crop in enumerate(crops)])
    images = batch.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    mean_a = np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std_a = np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((images - mean_a) / std_a)


def _check_crop(crop: np.ndarray, index: int) -> np.ndarray:
    crop = np.asarray(crop)
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or min(crop.shape[:2]) < 1:
        raise ValueError(f"preprocess: crop {index} is {crop.dtype} with shape {crop.shape} "
                         "(need uint8 RGB HxWx3)")
    return crop


def _resize(crop: np.ndarray, size: int) -> np.ndarray:
    height, width = crop.shape[:2]
    if (height, width) == (size, size):
        return np.ascontiguousarray(crop)
    shrinking = height > size or width > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(crop), (size, size), interpolation=interpolation)
