"""Where this machine keeps what it derives from models and may rebuild at will: registry downloads and ONNX
exports (FORENSICS_MODEL_CACHE, default ~/.cache/forensics/models). Torch- and MLflow-free, so the fast path of
`forensics detect` can find its files without importing either."""
from __future__ import annotations

import os
from pathlib import Path

MODEL_CACHE_ENV = "FORENSICS_MODEL_CACHE"


def model_cache_dir() -> Path:
    env = os.environ.get(MODEL_CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "forensics" / "models"


def onnx_cache_dir() -> Path:
    """ONNX exports: detectors by weights sha256, and MTCNN's three networks by facenet-pytorch version."""
    return model_cache_dir() / "onnx"
