"""Which runtime scores crops for `forensics detect`: torch (the checkpoint as a module) or onnxruntime (its
ONNX export), behind one registry, and the rule that picks one.

Why two: a scan on a CPU spends most of a cold start importing torch (about 1.9 s and 600 MB on the 2-core
machine, against 0.2 s and 80 MB for onnxruntime, PyAV and OpenCV). The ONNX runtime runs the same weights,
exported and checked against torch (detectors.export), and the same face detector (MTCNN's three networks
exported from facenet-pytorch, forensics.faces.mtcnn_onnx). Torch stays the runtime for training, GPUs, and
any model that has no checked export yet.

"auto" picks onnx when every member of the model has an export in the cache (keyed by its weights' sha256, so
an export never outlives the weights it was made from), MTCNN's export is there too, onnxruntime imports, and
the device is a CPU: --device cpu, or auto on a machine without an NVIDIA driver. Everything else runs torch.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Callable

from forensics.faces.backends import mtcnn_export_ready
from forensics.registry import Registry
from forensics.runtime import onnx_cache_dir

TORCH, ONNX, AUTO = "torch", "onnx", "auto"
CHOICES = (AUTO, TORCH, ONNX)

# name -> load(path, device) returning a CheckpointInfo that can place(), logits() and clip_logits()
RUNTIMES: Registry[Callable[..., Any]] = Registry("detector runtime", builtins={
    TORCH: "detectors.checkpoint", ONNX: "detectors.onnx_runtime"})


def onnx_file(weights_sha256: str) -> Path:
    """Where the checked ONNX export of the weights with this sha256 lives (beside it, its .json)."""
    return onnx_cache_dir() / f"{weights_sha256}.onnx"


def gpu_present() -> bool:
    """An NVIDIA driver is loaded (where torch would pick CUDA), told without importing torch."""
    return os.path.exists("/proc/driver/nvidia/version")


def choose(asked: str, device: str, weights_sha256s: list[str]) -> str:
    """The runtime for a model whose members have these weights: see the module docstring."""
    if asked != AUTO:
        return asked
    on_cpu = device == "cpu" or (device == AUTO and not gpu_present())
    ready = (on_cpu and importlib.util.find_spec("onnxruntime") is not None and mtcnn_export_ready()
             and all(onnx_file(sha).is_file() for sha in weights_sha256s))
    return ONNX if ready else TORCH
