"""Settings of the self-blending generator and the checks every public entry point applies to its inputs.

Sizes are fractions of the crop's shorter side wherever the effect is about the face (hull wobble, feather
width, shift), so one config serves 64, 128 and 224 pixel crops; pixel-level effects (blur and sharpen of
the source) stay in pixels because the artifacts a detector must see live at that scale.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

KNOWN_MASK_TYPES = ("face", "extended", "inner")
KNOWN_FREQUENCY_KINDS = ("resize", "sharpen", "blur")
MIN_SIDE = 16


@dataclass(frozen=True)
class SBIConfig:
    """Ranges the generator samples from; defaults follow Shiohara & Yamasaki (2022), kept subtle."""

    margin: float = 0.25                        # crop margin of align_face, used when no landmarks are given
    # mask
    mask_types: tuple[str, ...] = ("face", "face", "extended", "inner")   # drawn uniformly (repeats weight)
    hull_scale: tuple[float, float] = (0.9, 1.08)
    elastic_prob: float = 0.7
    elastic: tuple[float, float] = (0.01, 0.04)          # max displacement, fraction of the crop
    elastic_grid: tuple[int, int] = (3, 6)               # coarse field cells per side
    morph: tuple[float, float] = (-0.05, 0.03)           # erode (<0) / dilate (>0) radius, fraction of crop
    blur: tuple[float, float] = (0.015, 0.06)            # feather sigma, fraction of the crop
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
    # colour of the source
    rgb_shift_prob: float = 0.3
    rgb_shift: float = 8.0                               # per channel, uint8 levels
    hue_shift: float = 3.0                               # OpenCV hue units (0..180)
    saturation: float = 0.12                             # relative
    value: float = 0.08                                  # relative
    brightness: float = 0.06                             # fraction of full scale
    contrast: float = 0.1                                # relative
    # frequency content of the source
    frequency_kinds: tuple[str, ...] = KNOWN_FREQUENCY_KINDS
    resize_scale: tuple[float, float] = (0.45, 0.8)
    sharpen: tuple[float, float] = (0.2, 0.6)            # unsharp-mask amount
    blur_px: tuple[float, float] = (0.5, 1.2)            # Gaussian sigma in pixels
    # geometry of the source
    shift: float = 0.03                                  # max translation, fraction of the crop
    scale: tuple[float, float] = (0.95, 1.05)

    def __post_init__(self):
        problem = _config_problem(self)
        if problem:
            raise ValueError(f"SBIConfig: {problem}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _config_problem(c: SBIConfig) -> str | None:
    for name in ("hull_scale", "elastic", "elastic_grid", "morph", "blur", "resize_scale", "sharpen", "blur_px",
                 "scale"):
        lo, hi = getattr(c, name)
        if not lo <= hi:
            return f"{name} must be a (low, high) pair with low <= high, got {getattr(c, name)}"
    if c.margin < 0:
        return f"margin must be >= 0, got {c.margin}"
    if not c.mask_types or set(c.mask_types) - set(KNOWN_MASK_TYPES):
        return f"mask_types must be drawn from {KNOWN_MASK_TYPES}, got {c.mask_types}"
    if not c.frequency_kinds or set(c.frequency_kinds) - set(KNOWN_FREQUENCY_KINDS):
        return f"frequency_kinds must be drawn from {KNOWN_FREQUENCY_KINDS}, got {c.frequency_kinds}"
    if not c.blend_ratios or not all(0 < r <= 1 for r in c.blend_ratios):
        return f"blend_ratios must be in (0, 1], got {c.blend_ratios}"
    if not (0 <= c.elastic_prob <= 1 and 0 <= c.rgb_shift_prob <= 1):
        return "elastic_prob and rgb_shift_prob must be probabilities in [0, 1]"
    if c.hull_scale[0] <= 0 or c.scale[0] <= 0 or c.resize_scale[0] <= 0 or c.resize_scale[1] > 1:
        return "hull_scale and scale must be > 0 and resize_scale within (0, 1]"
    if c.elastic_grid[0] < 2:
        return f"elastic_grid needs at least 2 cells, got {c.elastic_grid}"
    return None


def check_face(face) -> np.ndarray:
    """The face crop must already be what the pipeline produces: HxWx3 uint8 RGB; nothing is guessed."""
    if not isinstance(face, np.ndarray):
        raise ValueError(f"self_blend: face must be a numpy array, got {type(face).__name__}")
    if face.ndim != 3 or face.shape[2] != 3:
        raise ValueError(f"self_blend: face must be HxWx3, got shape {face.shape}")
    if face.dtype != np.uint8:
        raise ValueError(f"self_blend: face must be uint8, got {face.dtype}")
    if min(face.shape[:2]) < MIN_SIDE:
        raise ValueError(f"self_blend: face must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {face.shape[1]}x{face.shape[0]}")
    return np.ascontiguousarray(face)


def check_landmarks(landmarks, who: str = "self_blend") -> np.ndarray:
    """(5, 2) MTCNN-style or (68, 2) iBUG points in crop pixels, finite."""
    try:
        lm = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: landmarks must be numeric, got {type(landmarks).__name__}") from None
    if lm.ndim != 2 or lm.shape[1] != 2 or len(lm) not in (5, 68):
        raise ValueError(f"{who}: landmarks must have shape (5, 2) or (68, 2), got {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError(f"{who}: landmarks contain NaN or infinity")
    return lm
