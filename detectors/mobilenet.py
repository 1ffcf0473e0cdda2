"""MobileNetV3 detectors: the fast CPU default.

128 px rather than ImageNet's 224: face crops from the pipeline are often smaller than that anyway, and
the cost falls with the square of the side, which is what makes frame-by-frame scoring usable on a laptop.
"""
from __future__ import annotations

from detectors.model import FrameDetector, build_detector
from detectors.registry import register_detector


@register_detector
def mobilenetv3_small(**overrides) -> FrameDetector:
    """Default detector: MobileNetV3-Small (1.5 M parameters) at 128 px."""
    return build_detector("mobilenetv3-small", "mobilenetv3_small_100", 128, overrides=overrides)


@register_detector
def mobilenetv3_small_freq(**overrides) -> FrameDetector:
    """The default plus the SRM-residual / radial-spectrum branch, for generator upsampling traces."""
    return build_detector("mobilenetv3-small-freq", "mobilenetv3_small_100", 128, frequency=True, overrides=overrides)


@register_detector
def mobilenetv3_large(**overrides) -> FrameDetector:
    """A step up in capacity that is still CPU-friendly: MobileNetV3-Large at 160 px."""
    return build_detector("mobilenetv3-large", "mobilenetv3_large_100", 160, overrides=overrides)
