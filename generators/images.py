"""Crops between numpy and torch for every generator family: uint8 NHWC in, float NCHW in [0, 1] out, and back."""
from __future__ import annotations

import numpy as np
import torch


def to_tensor(images: np.ndarray | torch.Tensor, device) -> torch.Tensor:
    """uint8 [B, S, S, 3] -> float [B, 3, S, S] in [0, 1] on device."""
    images = torch.as_tensor(images)
    return images.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [3, S, S] or [B, 3, S, S] in [0, 1] -> uint8 HWC (BHWC), rounded to nearest."""
    x = images.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8)
    return (x.permute(1, 2, 0) if x.ndim == 3 else x.permute(0, 2, 3, 1)).cpu().numpy()
