"""The one batched inference of a detector: uint8 crops (or clips of crops) in, fake logits out.

Training validation, calibration, the co-evolution game, benchmarks and `forensics detect` all score crops
here, so preprocessing (resize + normalisation) and precision (bf16 autocast on CUDA only) never differ
between the number a model was selected on and the number a user gets.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from detectors.temporal import pool_frame_logits
from forensics.device import autocast


def predict_logits(model: torch.nn.Module, crops: Sequence[np.ndarray] | np.ndarray, device: torch.device,
                   batch_size: int = 128) -> np.ndarray:
    """Fake logits (float32 [N]) for uint8 RGB crops, in batches, without gradients; the model's train/eval
    mode is restored afterwards."""
    was_training = model.training
    if getattr(model, "kind", "frame") == "clip":     # a sample is a clip of T crops: keep batches of frames alike
        batch_size = max(1, batch_size // max(1, model.config.clip_len))
    model.eval()
    out: list[np.ndarray] = []
    try:
        with torch.inference_mode(), autocast(device):
            for start in range(0, len(crops), batch_size):
                batch = model.preprocess(np.stack(list(crops[start:start + batch_size])))
                out.append(model(batch.to(device, non_blocking=True)).float().reshape(-1).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def predict_clip_logits(model: torch.nn.Module, clips: Sequence[np.ndarray] | np.ndarray, device: torch.device,
                        batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A clip detector's (clip logits float32 [N], per-frame logits float32 [N, T]) for uint8 clips
    [N, T, H, W, 3] of one length: the verdict and which frames drove it."""
    was_training = model.training
    model.eval()
    clip_out: list[np.ndarray] = []
    frame_out: list[np.ndarray] = []
    try:
        with torch.inference_mode(), autocast(device):
            for start in range(0, len(clips), batch_size):
                batch = model.preprocess(np.stack(list(clips[start:start + batch_size]))).to(device)
                per_frame = model.frame_logits(batch).float()
                frame_out.append(per_frame.cpu().numpy())
                clip_out.append(pool_frame_logits(per_frame).cpu().numpy())
    finally:
        model.train(was_training)
    if not clip_out:
        return np.zeros(0, np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(clip_out), np.concatenate(frame_out)
