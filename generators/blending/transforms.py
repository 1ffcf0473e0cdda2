"""What makes the self-blended "source" differ from its target: colour, frequency content and a small shift.

A real face swap pastes a face with slightly different colour statistics, a different resampling history
and imperfect alignment; these three transforms reproduce exactly those statistical mismatches on a copy
of the same face, so the only thing a detector can latch onto is the blending boundary they create.
"""
from __future__ import annotations

import cv2
import numpy as np

from generators.blending.config import SBIConfig

_LEVELS = np.arange(256, dtype=np.float32)


def _lut(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _r(x: float) -> float:
    return round(float(x), 4)


def colour_jitter(image: np.ndarray, rng: np.random.Generator, config: SBIConfig) -> tuple[np.ndarray, dict]:
    """HSV jitter, then brightness/contrast and an optional per-channel RGB shift, all as lookup tables so a
    crop costs a few tens of microseconds."""
    hue = float(rng.uniform(-config.hue_shift, config.hue_shift))
    sat = 1.0 + float(rng.uniform(-config.saturation, config.saturation))
    val = 1.0 + float(rng.uniform(-config.value, config.value))
    brightness = float(rng.uniform(-config.brightness, config.brightness))
    contrast = 1.0 + float(rng.uniform(-config.contrast, config.contrast))
    use_shift = bool(rng.random() < config.rgb_shift_prob)
    shift = rng.uniform(-config.rgb_shift, config.rgb_shift, 3) if use_shift else np.zeros(3)

    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)                   # uint8 hue is 0..179
    hsv_lut = np.stack([np.mod(np.rint(_LEVELS + hue), 180), _LEVELS * sat, _LEVELS * val], axis=1)
    hsv = cv2.LUT(hsv, _lut(hsv_lut).reshape(256, 1, 3))
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    base = (_LEVELS - 127.5) * contrast + 127.5 + 255.0 * brightness
    rgb_lut = np.stack([base + shift[c] for c in range(3)], axis=1)
    out = cv2.LUT(out, _lut(rgb_lut).reshape(256, 1, 3))
    recipe = {"hue": _r(hue), "saturation": _r(sat), "value": _r(val), "brightness": _r(brightness),
              "contrast": _r(contrast), "rgb_shift": [_r(s) for s in shift] if use_shift else None}
    return out, recipe


def frequency_change(image: np.ndarray, rng: np.random.Generator, config: SBIConfig) -> tuple[np.ndarray, dict]:
    """One of: down-and-up resampling (lost detail, like a low-resolution swap), unsharp masking (the halo of
    a sharpened generator output) or Gaussian blur."""
    kind = str(config.frequency_kinds[int(rng.integers(len(config.frequency_kinds)))])
    h, w = image.shape[:2]
    if kind == "resize":
        scale = float(rng.uniform(*config.resize_scale))
        small = cv2.resize(image, (max(4, round(w * scale)), max(4, round(h * scale))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), {"kind": kind, "scale": _r(scale)}
    if kind == "sharpen":
        amount = float(rng.uniform(*config.sharpen))
        soft = cv2.GaussianBlur(image, (0, 0), 1.0)
        return cv2.addWeighted(image, 1.0 + amount, soft, -amount, 0.0), {"kind": kind, "amount": _r(amount)}
    sigma = float(rng.uniform(*config.blur_px))
    return cv2.GaussianBlur(image, (0, 0), sigma), {"kind": kind, "sigma_px": _r(sigma)}


def small_warp(image: np.ndarray, rng: np.random.Generator, config: SBIConfig) -> tuple[np.ndarray, dict]:
    """Translate by a few percent and rescale about the centre: the misregistration of a pasted face."""
    h, w = image.shape[:2]
    tx = float(rng.uniform(-config.shift, config.shift))
    ty = float(rng.uniform(-config.shift, config.shift))
    scale = float(rng.uniform(*config.scale))
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    matrix = np.array([[scale, 0.0, (1 - scale) * cx + tx * w], [0.0, scale, (1 - scale) * cy + ty * h]])
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out, {"tx": _r(tx), "ty": _r(ty), "scale": _r(scale)}
