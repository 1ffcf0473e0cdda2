"""Detector checkpoints: model.safetensors + config.json in one directory; loading never unpickles.

config.json = {"format": FORMAT, "detector": <DetectorConfig>, "weights_sha256": ..., **meta}. The weights'
hash is recorded so that a torn overwrite (new weights, old config or the reverse) is caught at load
time instead of silently running a model with the wrong threshold or calibration.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from detectors.mlmodel import write_mlmodel
from detectors.model import FrameDetector
from detectors.predict import predict_logits
from detectors.registry import create_detector, is_detector, list_detectors
from forensics.faces.crops import CropSpec
from forensics.io import atomic_path, atomic_write_json, sha256_file
from forensics.weights import one_line, place, read_json_object, read_weights, state_mismatch

FORMAT = "forensics-detector/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_RESERVED = ("format", "detector", "weights_sha256")


class DetectorLoadError(ValueError):
    """A checkpoint that cannot be used; the message is one line: 'PATH: reason'."""


@dataclass
class LoadedDetector:
    model: FrameDetector
    meta: dict[str, Any]
    sha256: str
    name: str
    path: Path | None = field(default=None)

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    @property
    def crop(self) -> dict[str, Any]:
        """How faces must be aligned for this model (what it was trained on)."""
        return self.meta.get("crop", {"size": self.model.config.input_size, "margin": 0.25})

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def probability(self, logits: torch.Tensor | np.ndarray | float) -> np.ndarray:
        """Calibrated probability sigmoid(a * logit + b) with the Platt parameters fitted after training."""
        if torch.is_tensor(logits):
            logits = logits.detach().float().cpu().numpy()
        calibration = self.meta.get("calibration") or {}
        a, b = float(calibration.get("a", 1.0)), float(calibration.get("b", 0.0))
        z = a * np.asarray(logits, dtype=np.float64) + b
        return 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function without overflow for large |z|

    @property
    def threshold_logit(self) -> float:
        """The decision threshold in logit space: probability(z) >= threshold exactly when z >= this."""
        calibration = self.meta.get("calibration") or {}
        a, b = float(calibration.get("a", 1.0)), float(calibration.get("b", 0.0))
        p = min(max(self.threshold, 1e-12), 1 - 1e-12)
        return (float(np.log(p / (1.0 - p))) - b) / a

    def logits(self, crops, batch_size: int = 64) -> np.ndarray:
        """Frame logits for uint8 RGB crops (detectors.predict_logits on this model's device): float64 [N]."""
        return predict_logits(self.model, crops, self.device, batch_size).astype(np.float64)

    @property
    def crop_spec(self) -> CropSpec:
        """The crop this model was trained on, as the one crop function takes it."""
        return CropSpec.from_dict(self.crop, default_size=self.model.config.input_size)


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
    directory = _checkpoint_dir(Path(path))
    weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    if not weights.is_file():
        raise DetectorLoadError(f"{weights}: missing (a detector checkpoint is {WEIGHTS_FILE} + {CONFIG_FILE})")
    meta = _read_config(config_path)
    state, sha = read_weights(weights, meta.get("weights_sha256"), CONFIG_FILE, DetectorLoadError)
    model = _build(meta["detector"], config_path)
    problem = state_mismatch(model, state)
    if problem:
        raise DetectorLoadError(f"{weights}: weights do not fit {model.config.name}: {problem}")
    model.load_state_dict(state, strict=True)
    model = place({"model": model}, device, DetectorLoadError, directory)["model"]
    return LoadedDetector(model=model, meta=meta, sha256=sha, name=model.config.name, path=directory)


def _checkpoint_dir(path: Path) -> Path:
    if path.is_dir():
        return path
    if not path.exists():
        raise DetectorLoadError(f"{path}: no such file or directory")
    if path.suffix != ".safetensors":
        raise DetectorLoadError(f"{path}: not a detector directory or a .safetensors file")
    if path.name != WEIGHTS_FILE:
        raise DetectorLoadError(f"{path}: expected the checkpoint's {WEIGHTS_FILE} (beside its {CONFIG_FILE})")
    return path.parent


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DetectorLoadError(f"{path}: missing (a detector checkpoint is {WEIGHTS_FILE} + {CONFIG_FILE})")
    meta = read_json_object(path, DetectorLoadError)
    if meta.get("format") != FORMAT:
        raise DetectorLoadError(f"{path}: unsupported format {meta.get('format')!r} (expected {FORMAT!r})")
    if not isinstance(meta.get("detector"), dict):
        raise DetectorLoadError(f"{path}: no 'detector' section describing the architecture")
    problem = meta_problem(meta)
    if problem:
        raise DetectorLoadError(f"{path}: {problem}")
    return meta


MIN_CROP, MAX_CROP = 16, 1024     # a crop outside this is a broken config (a 20000-px crop takes 3.4 GB per face)


def meta_problem(meta: dict[str, Any]) -> str | None:
    """What is wrong with the fields `detect` relies on (threshold, crop, calibration), or None."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)

    if "threshold" in meta and not (number(meta["threshold"]) and 0.0 <= meta["threshold"] <= 1.0):
        return f"threshold must be a probability in [0, 1], got {meta['threshold']!r}"
    crop = meta.get("crop")
    if crop is not None:
        if not isinstance(crop, dict):
            return f"crop must be an object with size and margin, got {crop!r}"
        size = crop.get("size")
        if not (isinstance(size, int) and not isinstance(size, bool) and MIN_CROP <= size <= MAX_CROP):
            return f"crop.size must be a whole number of pixels in [{MIN_CROP}, {MAX_CROP}], got {size!r}"
        if "margin" in crop and not (number(crop["margin"]) and 0.0 <= crop["margin"] <= 2.0):
            return f"crop.margin must be a number in [0, 2], got {crop['margin']!r}"
    calibration = meta.get("calibration")
    if calibration is not None:
        if not isinstance(calibration, dict) or not all(number(calibration.get(k, 0.0)) for k in ("a", "b")):
            return f"calibration must be an object with finite numbers a and b, got {calibration!r}"
        if calibration.get("a", 1.0) == 0:
            return "calibration.a must not be 0 (every score would be the same)"
    return None


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
