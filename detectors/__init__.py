"""Frame detectors: timm backbones (never downloaded), a frequency branch, checkpoints and clip aggregation.

Importing the package registers every family (mobilenet, xception, efficientnet) in the one registry.
"""
from detectors import efficientnet, mobilenet, xception  # noqa: F401  (registration side effect)
from detectors.aggregate import AGGREGATORS, aggregate_scores
from detectors.checkpoint import FORMAT, DetectorLoadError, LoadedDetector, load_detector, save_detector
from detectors.config import DetectorConfig
from detectors.frequency import FrequencyBranch
from detectors.model import FrameDetector, preprocess_crops
from detectors.registry import DEFAULT_DETECTOR, create_detector, is_detector, list_detectors, register_detector

__all__ = [
    "AGGREGATORS",
    "DEFAULT_DETECTOR",
    "FORMAT",
    "DetectorConfig",
    "DetectorLoadError",
    "FrameDetector",
    "FrequencyBranch",
    "LoadedDetector",
    "aggregate_scores",
    "create_detector",
    "is_detector",
    "list_detectors",
    "load_detector",
    "preprocess_crops",
    "register_detector",
    "save_detector",
]
