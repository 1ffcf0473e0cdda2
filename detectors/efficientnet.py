"""EfficientNet detectors: the DFDC-era baselines (the challenge's top entries were EfficientNet ensembles).

Input sizes are the ones timm trained these backbones at (224 for B0, 320 for B4), so local ImageNet
weights see the scale they were fitted to.
"""
from __future__ import annotations

from detectors.model import FrameDetector, build_detector
from detectors.registry import register_detector


@register_detector
def efficientnet_b0(**overrides) -> FrameDetector:
    return build_detector("efficientnet-b0", "efficientnet_b0", 224, overrides=overrides)


@register_detector
def efficientnet_b0_freq(**overrides) -> FrameDetector:
    return build_detector("efficientnet-b0-freq", "efficientnet_b0", 224, frequency=True, overrides=overrides)


@register_detector
def efficientnet_b4(**overrides) -> FrameDetector:
    return build_detector("efficientnet-b4", "efficientnet_b4", 320, overrides=overrides)
