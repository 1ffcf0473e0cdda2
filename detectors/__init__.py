"""Frame detectors and their whole lifecycle: build (timm backbones, never downloaded, plus a frequency
branch), train (DetectorTask over a pluggable batch source), calibrate, predict, evaluate, save and load
(safetensors + JSON), promote in the model registry.

The architecture families register lazily (detectors.registry), and the names below are imported on first
use (PEP 562): importing the package, or its light modules (meta, bundle, runtime, onnx_runtime), does not
import timm or torch, which is what lets `forensics detect` start fast on onnxruntime.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "AGGREGATORS": "detectors.aggregate", "aggregate_scores": "detectors.aggregate",
    "FORMAT": "detectors.meta", "DetectorLoadError": "detectors.meta",
    "LoadedDetector": "detectors.checkpoint", "load_detector": "detectors.checkpoint",
    "save_detector": "detectors.checkpoint",
    "DetectorConfig": "detectors.config",
    "FrequencyBranch": "detectors.frequency",
    "FrameDetector": "detectors.model", "preprocess_crops": "detectors.model",
    "predict_logits": "detectors.predict",
    "DEFAULT_DETECTOR": "detectors.registry", "DETECTORS": "detectors.registry",
    "create_detector": "detectors.registry", "is_detector": "detectors.registry",
    "list_detectors": "detectors.registry", "register_detector": "detectors.registry",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'detectors' has no attribute {name!r}")
