"""Reconstruction losses of the face-swap autoencoder.

Plain L1 alone lets the decoders settle for a blurry face; the image pyramid adds weight to the coarse
structure (where the face, eyes and mouth are) early in training, and SSIM rewards local contrast and
edges, which is what makes a swapped face look sharp. The face region (the landmark-hull mask) gets
extra weight: the background of a swapped crop is thrown away by the mask anyway.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2


def weighted_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |pred - target|, or the mean over crops of its weighted mean over each crop's pixels (weight
    broadcast over channels)."""
    diff = (pred - target).abs()
    if weight is None:
        return diff.mean()
    return per_crop_weighted_mean(diff, weight)


def per_crop_weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Each crop's weighted mean, then their plain mean: every crop counts the same whatever its face size,
    and a batch split over DDP ranks averages to the whole batch's loss (a weighted mean over the whole batch
    would not)."""
    weight = weight.expand_as(values)
    return ((values * weight).flatten(1).sum(1) / weight.flatten(1).sum(1).clamp_min(1e-6)).mean()


def pyramid_l1(pred: torch.Tensor, target: torch.Tensor, levels: int, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of the L1 at scales 1/2, 1/4, ... (levels - 1 of them); zero when levels <= 1."""
    total = pred.new_zeros(())
    for _ in range(max(0, levels - 1)):
        if min(pred.shape[-2:]) < 4:
            break
        pred, target = F.avg_pool2d(pred, 2), F.avg_pool2d(target, 2)
        weight = F.avg_pool2d(weight, 2) if weight is not None else None
        total = total + weighted_l1(pred, target, weight)
    return total / max(1, levels - 1)


def soft_bce(prob: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Binary cross-entropy of probabilities against soft targets, written out rather than
    F.binary_cross_entropy (which autocast refuses): unlike L1, it does not pull uncertain pixels of a
    mostly-background mask to 0, so the mask head learns the face early."""
    prob = prob.float().clamp(eps, 1.0 - eps)
    return -(target * prob.log() + (1.0 - target) * (1.0 - prob).log()).mean()


def _gaussian_window(size: int, sigma: float, channels: int, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, device=like.device, dtype=like.dtype) - (size - 1) / 2.0
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM [B, C, H, W] of images in [0, 1] (Wang et al. 2004, Gaussian window)."""
    channels = x.shape[1]
    kernel = _gaussian_window(window, sigma, channels, x)
    pad = window // 2

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, [pad] * 4, mode="replicate"), kernel, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return num / den


def dssim(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """(1 - SSIM) / 2, averaged (weighted by `weight` when given): 0 for identical images."""
    loss = (1.0 - ssim_map(pred, target)) / 2.0
    if weight is None:
        return loss.mean()
    return per_crop_weighted_mean(loss, weight)
