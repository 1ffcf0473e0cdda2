"""Multi-scale patch discriminator with spectral norm, and feature matching (hinge losses: generators/losses.py).

Patch outputs judge local realism (texture, edges of the in-painted regions) rather than the whole face,
which self-reconstruction already constrains. Spectral norm bounds the discriminator's Lipschitz constant,
so the hinge game stays stable at the small batch sizes a CPU affords. Feature matching (L1 between the
discriminator's intermediate features on real and generated frames) gives the generator a dense,
learned "perceptual" signal: the stand-in for the VGG loss nobody can download here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .keypoints import downsample


class DownBlockD(nn.Module):
    """4x4 conv (spectral norm) -> optional instance norm -> LeakyReLU -> optional 2x average pool."""

    def __init__(self, in_features: int, out_features: int, norm: bool, pool: bool):
        super().__init__()
        self.conv = spectral_norm(nn.Conv2d(in_features, out_features, kernel_size=4, padding=2))
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        return F.avg_pool2d(out, 2) if self.pool else out


class Discriminator(nn.Module):
    """Image -> (list of intermediate feature maps, patch logits [B, 1, h, w])."""

    def __init__(self, num_channels: int = 3, block_expansion: int = 32, num_blocks: int = 3,
                 max_features: int = 256):
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            in_f = num_channels if i == 0 else min(max_features, block_expansion * (2 ** i))
            out_f = min(max_features, block_expansion * (2 ** (i + 1)))
            blocks.append(DownBlockD(in_f, out_f, norm=i != 0, pool=i != num_blocks - 1))
        self.blocks = nn.ModuleList(blocks)
        self.head = spectral_norm(nn.Conv2d(out_f, 1, kernel_size=1))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        features = []
        out = x * 2.0 - 1.0  # images in [0, 1] -> centred
        for block in self.blocks:
            out = block(out)
            features.append(out)
        return features, self.head(out).float()


class MultiScaleDiscriminator(nn.Module):
    """One Discriminator per scale of the image pyramid; forward(image) -> {scale: (features, logits)}.

    Coarse scales see whole-face structure, fine ones texture; scales are stored as module names
    'scale_1', 'scale_0.5' (state-dict keys cannot contain dots, hence the dash).
    """

    def __init__(self, scales: tuple[float, ...] = (1.0,), **kwargs):
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        self.discs = nn.ModuleDict({scale_key(s): Discriminator(**kwargs) for s in self.scales})

    def forward(self, image: torch.Tensor) -> dict[float, tuple[list[torch.Tensor], torch.Tensor]]:
        return {s: self.discs[scale_key(s)](downsample(image, s)) for s in self.scales}


def scale_key(scale: float) -> str:
    return f"scale_{scale:g}".replace(".", "-")


def feature_matching_loss(real_features: list[torch.Tensor], fake_features: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between the discriminator's features on real (detached) and generated frames, over layers."""
    losses = [(fake.float() - real.detach().float()).abs().mean() for real, fake in zip(real_features, fake_features)]
    return torch.stack(losses).mean()
