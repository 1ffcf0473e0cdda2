"""One name -> constructor table for frame detectors, filled by each family module's decorator (timm style)."""
from __future__ import annotations

from typing import Any, Callable

from forensics.registry import Registry

DEFAULT_DETECTOR = "mobilenetv3-small"

# Filled when the family modules are imported (detectors/__init__ imports every one of them).
DETECTORS: Registry[Callable[..., Any]] = Registry("detector")


def register_detector(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register `fn(**overrides) -> FrameDetector` under its name with '_' spelled '-'
    (mobilenetv3_small -> "mobilenetv3-small"), the spelling used in configs and on the command line."""
    return DETECTORS.register()(fn)


def detector_kind(name: str) -> str:
    """"frame" (a crop in, FrameDetector) or "clip" (T consecutive crops of one track in, ClipDetector)."""
    return getattr(DETECTORS.get(name), "kind", "frame")


def list_detectors() -> list[str]:
    return DETECTORS.names()


def is_detector(name: str) -> bool:
    return name in DETECTORS


def create_detector(name: str = DEFAULT_DETECTOR, **overrides: Any):
    """A fresh, randomly initialised FrameDetector (or backbone weights from overrides['pretrained_file'])."""
    return DETECTORS.get(name)(**overrides)
