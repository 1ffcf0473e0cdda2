"""Detector checkpoints: model.safetensors + config.json in one directory; loading never unpickles.

config.json = {"format": FORMAT, "detector": <DetectorConfig>, "weights_sha256": ..., **meta}. The weights'
hash is recorded so that a torn overwrite (new weights, old config or the reverse) is caught at load
time instead of silently running a model with the wrong threshold or calibration.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from detectors.meta import (CONFIG_FILE, FORMAT, WEIGHTS_FILE, CheckpointInfo, DetectorLoadError,  # noqa: F401
                            checkpoint_dir, read_config)
from detectors.mlmodel import write_mlmodel
from detectors.model import FrameDetector
from detectors.predict import predict_clip_logits, predict_logits
from detectors.registry import create_detector, is_detector, list_detectors
from detectors.runtime import RUNTIMES, TORCH
from forensics.device import resolve_device
from forensics.io import atomic_path, atomic_write_json, one_line, sha256_file
from forensics.weights import place, read_weights, state_mismatch

_RESERVED = ("format", "detector", "weights_sha256")


@dataclass(kw_only=True)
class LoadedDetector(CheckpointInfo):
    """A checkpoint as a torch module (the training, calibration and game side; detect's torch runtime)."""
    model: FrameDetector

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def place(self, device: str) -> None:
        """Move the model to `device` (auto | cpu | cuda[:N]) for scoring, in eval mode."""
        self.model = self.model.to(resolve_device(device)).eval()

    def logits(self, crops, batch_size: int = 64) -> np.ndarray:
        """Frame logits for uint8 RGB crops (detectors.predict_logits on this model's device): float64 [N]."""
        return predict_logits(self.model, crops, self.device, batch_size).astype(np.float64)

    def clip_logits(self, clips) -> tuple[np.ndarray, np.ndarray]:
        """A clip detector's (clip logits [N], per-frame logits [N, T]) for uint8 clips [N, T, H, W, 3]."""
        return predict_clip_logits(self.model, clips, self.device)


def save_detector(directory: str | os.PathLike, model: FrameDetector, meta: dict[str, Any] | None = None) -> Path:
    """Write directory/model.safetensors, directory/config.json and directory/MLmodel (the folder is an MLflow
    pyfunc model too, see detectors.mlmodel), each atomically; returns the directory."""
    meta = dict(meta or {})
    clash = [k for k in _RESERVED if k in meta]
    if clash:
        raise ValueError(f"save_detector: meta may not set reserved key(s) {', '.join(clash)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # clone(): safetensors refuses tensors sharing storage, and the copies detach us from the device.
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "detector": model.config.name})
    config = {"format": FORMAT, "detector": model.config.to_dict(),
              "weights_sha256": sha256_file(directory / WEIGHTS_FILE), **meta}
    atomic_write_json(directory / CONFIG_FILE, config)
    write_mlmodel(directory)
    return directory


def load_detector(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedDetector:
    """Rebuild the architecture from config.json and load the weights strictly, in eval mode."""
    directory = checkpoint_dir(path)
    weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    meta = read_config(directory)
    state, sha = read_weights(weights, meta.get("weights_sha256"), CONFIG_FILE, DetectorLoadError)
    model = _build(meta["detector"], config_path)
    problem = state_mismatch(model, state)
    if problem:
        raise DetectorLoadError(f"{weights}: weights do not fit {model.config.name}: {problem}")
    model.load_state_dict(state, strict=True)
    model = place({"model": model}, device, DetectorLoadError, directory)["model"]
    return LoadedDetector(model=model, meta=meta, sha256=sha, name=model.config.name, path=directory)


def _build(config: dict[str, Any], config_path: Path) -> FrameDetector:
    options = dict(config)
    name = options.pop("name", None)
    if not is_detector(name):
        raise DetectorLoadError(f"{config_path}: unknown detector architecture {name!r} "
                                f"(known: {', '.join(list_detectors())})")
    # The saved weights replace any initial weights, and the file may not exist on this machine.
    options["pretrained_file"] = None
    try:
        return create_detector(name, **options)
    except (ValueError, TypeError) as exc:
        raise DetectorLoadError(f"{config_path}: cannot build {name}: {one_line(exc)}") from None


RUNTIMES.add(TORCH, load_detector)
