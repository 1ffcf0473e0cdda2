"""The networks behind FaceDetector: facenet-pytorch's MTCNN on torch, or the same three networks exported to
ONNX and run by onnxruntime with the rest of MTCNN in numpy (forensics.faces.mtcnn_onnx, checked against
facenet). A backend is `make(config) -> detect(batch uint8 [B, H, W, 3]) -> list[list[Face]]`, registered
lazily so that choosing the ONNX one never imports torch.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

from forensics.registry import Registry
from forensics.runtime import onnx_cache_dir

FACENET, ONNX = "facenet", "onnx"
FACE_BACKENDS: Registry[Callable[..., Any]] = Registry("face detector backend", builtins={
    FACENET: "forensics.faces.mtcnn_facenet", ONNX: "forensics.faces.mtcnn_onnx"})
MTCNN_FORMAT = "forensics-mtcnn-onnx/1"
MANIFEST = "mtcnn.json"       # written last by forensics.faces.mtcnn_export: its sha256s name a complete export


def facenet_version() -> str:
    try:
        return version("facenet-pytorch")
    except PackageNotFoundError:
        return "unknown"


def mtcnn_export_dir() -> Path:
    """MTCNN's ONNX export, one per facenet-pytorch version (the weights ship inside that package)."""
    return onnx_cache_dir() / f"mtcnn-facenet-{facenet_version()}"


def mtcnn_export_ready() -> bool:
    """The export is complete (its manifest is written last), without importing onnxruntime."""
    return (mtcnn_export_dir() / MANIFEST).is_file()
