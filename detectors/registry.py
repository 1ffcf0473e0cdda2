"""One name -> constructor table for frame detectors, filled by each family module's decorator (timm style)."""
from __future__ import annotations

from typing import Any, Callable

from forensics.registry import Registry

DEFAULT_DETECTOR = "mobilenetv3-small"

# Built-ins are lazy (the module that registers each name is imported on first lookup), so that importing the
# package for its light parts (checkpoint facts, the ONNX runtime) does not import timm and torch.
_FAMILIES = {
    "detectors.mobilenet": ("mobilenetv3-small", "mobilenetv3-small-freq", "mobilenetv3-large"),
    "detectors.efficientnet": ("efficientnet-b0", "efficientnet-b0-freq", "efficientnet-b4"),
    "detectors.xception": ("xception", "xception-freq"),
    "detectors.temporal": ("temporal-small", "temporal-large"),
}
DETECTORS: Registry[Callable[..., Any]] = Registry(
    "detector", builtins={name: module for module, names in _FAMILIES.items() for name in names})


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
