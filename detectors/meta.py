"""What a detector checkpoint says besides its weights, read without torch: the files, the config.json checks,
and how a logit becomes a verdict (threshold, Platt calibration, crop).

Both runtimes that score crops share this: detectors.checkpoint (torch, the weights as a module) and
detectors.onnx_runtime (onnxruntime, the weights as an exported graph). Keeping it free of torch is what lets
`forensics detect` start in well under two seconds on a CPU: importing torch alone takes about as long.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forensics.faces.crops import CropSpec
from forensics.io import read_json_object

FORMAT = "forensics-detector/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FRAME_KIND, CLIP_KIND = "frame", "clip"
MIN_CROP, MAX_CROP = 16, 1024     # a crop outside this is a broken config (a 20000-px crop takes 3.4 GB per face)


class DetectorLoadError(ValueError):
    """A checkpoint that cannot be used; the message is one line: 'PATH: reason'."""


@dataclass(kw_only=True)
class CheckpointInfo:
    """A loaded detector's checkpoint facts, whatever runs it: its config (meta), the weights' sha256, its
    architecture name and folder; and the scoring rules that come with them."""
    meta: dict[str, Any]
    sha256: str
    name: str
    path: Path | None = field(default=None)

    @property
    def kind(self) -> str:
        """"frame" (one crop in) or "clip" (T consecutive crops of one track in)."""
        return kind_of(self.meta)

    @property
    def input_size(self) -> int:
        return int(self.meta["detector"]["input_size"])

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    @property
    def crop(self) -> dict[str, Any]:
        """How faces must be aligned for this model (what it was trained on)."""
        return self.meta.get("crop", {"size": self.input_size, "margin": 0.25})

    @property
    def crop_spec(self) -> CropSpec:
        """The crop this model was trained on, as the one crop function takes it."""
        return CropSpec.from_dict(self.crop, default_size=self.input_size)

    def probability(self, logits) -> np.ndarray:
        """Calibrated probability sigmoid(a * logit + b) with the Platt parameters fitted after training."""
        if hasattr(logits, "detach"):                  # a torch tensor, without importing torch here
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


def kind_of(meta: dict[str, Any]) -> str:
    """A checkpoint's kind from its config.json, without building the model: clip detectors record a clip_len."""
    return CLIP_KIND if "clip_len" in (meta.get("detector") or {}) else FRAME_KIND


def checkpoint_dir(path: str | os.PathLike) -> Path:
    """The checkpoint folder `path` names (the folder itself, or its model.safetensors)."""
    path = Path(path)
    if path.is_dir():
        return path
    if not path.exists():
        raise DetectorLoadError(f"{path}: no such file or directory")
    if path.suffix != ".safetensors":
        raise DetectorLoadError(f"{path}: not a detector directory or a .safetensors file")
    if path.name != WEIGHTS_FILE:
        raise DetectorLoadError(f"{path}: expected the checkpoint's {WEIGHTS_FILE} (beside its {CONFIG_FILE})")
    return path.parent


def read_config(directory: Path) -> dict[str, Any]:
    """The checkpoint's config.json, checked; the weights file must be beside it."""
    weights, path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    if not weights.is_file():
        raise DetectorLoadError(f"{weights}: missing (a detector checkpoint is {WEIGHTS_FILE} + {CONFIG_FILE})")
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
