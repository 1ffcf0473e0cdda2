"""Xception: the FaceForensics++ baseline (Rossler et al. 2019) at its native 299 px.

timm's `legacy_xception` is the original Chollet architecture that the FF++ paper fine-tuned, so
weights published for that baseline map onto it key for key.
"""
from __future__ import annotations

from detectors.model import FrameDetector, build_detector
from detectors.registry import register_detector


@register_detector
def xception(**overrides) -> FrameDetector:
    return build_detector("xception", "legacy_xception", 299, overrides=overrides)


@register_detector
def xception_freq(**overrides) -> FrameDetector:
    return build_detector("xception-freq", "legacy_xception", 299, frequency=True, overrides=overrides)
