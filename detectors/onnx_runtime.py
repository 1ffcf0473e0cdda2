"""The onnxruntime runtime of `forensics detect`: a checkpoint's weights run as their checked ONNX export.

The export lives in the model cache under the weights' sha256 (detectors.runtime.onnx_file), written by
detectors.export after it agreed with torch on the same crops; so loading here reads config.json for the
scoring rules, hashes the weights to find their export, and never imports torch. Crops are normalised by the
same numpy code torch's path uses (detectors.inputs), so the two runtimes differ only by float rounding
inside the network (the export check bounds it). Frame detectors only: clip detectors (and bundles holding
one) run on torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from detectors.inputs import normalise_crops
from detectors.meta import (CLIP_KIND, WEIGHTS_FILE, CheckpointInfo, DetectorLoadError, checkpoint_dir, kind_of,
                            read_config)
from detectors.runtime import ONNX, RUNTIMES, onnx_file
from forensics.io import sha256_file


@dataclass(kw_only=True)
class OnnxDetector(CheckpointInfo):
    session: Any

    def place(self, device: str) -> None:
        """Sessions run on the CPU; nothing to move."""

    def logits(self, crops, batch_size: int = 64) -> np.ndarray:
        """Frame logits for uint8 RGB crops: float64 [N] (as LoadedDetector.logits)."""
        config, crops = self.meta["detector"], list(crops)
        name = self.session.get_inputs()[0].name
        out = [np.zeros(0, np.float64)]
        for start in range(0, len(crops), batch_size):
            batch = normalise_crops(crops[start:start + batch_size], self.input_size, config["mean"], config["std"])
            out.append(np.asarray(self.session.run(None, {name: batch})[0], dtype=np.float64).reshape(-1))
        return np.concatenate(out)


def load_onnx_detector(path: str | os.PathLike, device: str = "cpu") -> OnnxDetector:
    """The checkpoint at `path` with its ONNX export as the network; one-line DetectorLoadError otherwise."""
    directory = checkpoint_dir(path)
    meta = read_config(directory)
    if kind_of(meta) == CLIP_KIND:
        raise DetectorLoadError(f"{directory}: a clip detector; only frame detectors run on onnxruntime for now")
    sha = sha256_file(directory / WEIGHTS_FILE)
    if meta.get("weights_sha256") not in (None, sha):
        raise DetectorLoadError(f"{directory / WEIGHTS_FILE}: does not match config.json (sha256 differs; the pair "
                                "was written by different saves)")
    exported = onnx_file(sha)
    if not exported.is_file():
        raise DetectorLoadError(f"{directory}: no ONNX export of these weights in {exported.parent} "
                                "(forensics export --onnx --cache writes it)")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(exported), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - a damaged cache file: one line, and torch still works
        raise DetectorLoadError(f"{exported}: not a loadable ONNX model ({' '.join(str(exc).split())[:200]})") from None
    return OnnxDetector(meta=meta, sha256=sha, name=str(meta["detector"].get("name")), path=directory,
                        session=session)


RUNTIMES.add(ONNX, load_onnx_detector)
