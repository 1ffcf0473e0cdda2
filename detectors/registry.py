"""One name -> constructor table for frame detectors, filled by each family module's decorator (timm style)."""
from __future__ import annotations

from typing import Any, Callable

DEFAULT_DETECTOR = "mobilenetv3-small"

_DETECTORS: dict[str, Callable[..., Any]] = {}


def register_detector(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Register `fn(**overrides) -> FrameDetector` under its name with '_' spelled '-'
    (mobilenetv3_small -> "mobilenetv3-small"), the spelling used in configs and on the command line."""
    name = fn.__name__.replace("_", "-")
    if name in _DETECTORS and _DETECTORS[name] is not fn:
        raise ValueError(f"detector {name!r} is registered twice")
    _DETECTORS[name] = fn
    return fn


def list_detectors() -> list[str]:
    return sorted(_DETECTORS)


def is_detector(name: str) -> bool:
    return name in _DETECTORS


def create_detector(name: str = DEFAULT_DETECTOR, **overrides: Any):
    """A fresh, randomly initialised FrameDetector (or backbone weights from overrides['pretrained_file'])."""
    if name not in _DETECTORS:
        raise ValueError(f"unknown detector {name!r} (known: {', '.join(list_detectors())})")
    return _DETECTORS[name](**overrides)
