"""The one batched inference of a frame detector: uint8 crops in, fake logits out.

Training validation, calibration, the co-evolution game, benchmarks and `forensics detect` all score crops
here, so preprocessing (resize + normalisation) and precision (bf16 autocast on CUDA only) never differ
between the number a model was selected on and the number a user gets.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from forensics.device import autocast


def predict_logits(model: torch.nn.Module, crops: Sequence[np.ndarray] | np.ndarray, device: torch.device,
                   batch_size: int = 128) -> np.ndarray:
    """Fake logits (float32 [N]) for uint8 RGB crops, in batches, without gradients; the model's train/eval
    mode is restored afterwards."""
    was_training = model.training
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
