"""Frame detectors and their whole lifecycle: build (timm backbones, never downloaded, plus a frequency
branch), train (DetectorTask over a pluggable batch source), calibrate, predict, evaluate, save and load
(safetensors + JSON), promote in the model registry.

Importing the package registers every architecture family (mobilenet, xception, efficientnet) and stays
light enough for `forensics detect`; the training side (task, batches, train, calibrate, evaluate, promote)
is imported from its modules.
"""
from detectors import efficientnet, mobilenet, temporal, xception  # noqa: F401  (registration side effect)
from detectors.aggregate import AGGREGATORS, aggregate_scores
from detectors.checkpoint import FORMAT, DetectorLoadError, LoadedDetector, load_detector, save_detector
from detectors.config import DetectorConfig
from detectors.frequency import FrequencyBranch
from detectors.model import FrameDetector, preprocess_crops
from detectors.predict import predict_logits
from detectors.registry import DEFAULT_DETECTOR, DETECTORS, create_detector, is_detector, list_detectors, register_detector

__all__ = [
    "AGGREGATORS",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "DetectorConfig",
    "DetectorLoadError",
    "FORMAT",
    "FrameDetector",
    "FrequencyBranch",
    "LoadedDetector",
    "aggregate_scores",
    "create_detector",
    "is_detector",
    "list_detectors",
    "load_detector",
    "predict_logits",
    "preprocess_crops",
    "register_detector",
    "save_detector",
]
