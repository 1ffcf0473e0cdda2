"""A spectral-norm patch discriminator, trained (with the generator) by the shared hinge losses.

Why a patch discriminator: reconstruction losses (L1, SSIM) settle for the blurry average of plausible
faces; a discriminator that scores every receptive-field patch as real or generated pushes the decoders
toward sharp local texture, which is where an L1-trained autoencoder is visibly fake. Spectral norm keeps
the discriminator Lipschitz so that it cannot overpower a small generator early (Miyato et al. 2018).
The hinge losses live in generators/losses.py and are re-exported here.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from generators.losses import d_hinge_loss, g_hinge_loss

__all__ = ["PatchDiscriminator", "d_hinge_loss", "g_hinge_loss", "layers_for"]


class PatchDiscriminator(nn.Module):
    """Strided 4x4 convs (each spectrally normalised) down to a grid of real/fake logits, one per patch.

    With the default three strides a 64x64 crop gives an 8x8 grid whose cells see ~46x46 pixels: big enough
    to judge an eye or a mouth corner, small enough that D cannot just memorise whole faces.
    """

    def __init__(self, channels: int = 64, layers: int = 3, max_channels: int = 256, in_channels: int = 3):
        super().__init__()
        if layers < 1:
            raise ValueError(f"PatchDiscriminator: layers must be >= 1, got {layers}")
        blocks: list[nn.Module] = []
        c_in = in_channels
        for k in range(layers):
            c_out = min(channels * 2 ** k, max_channels)
            blocks += [spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        blocks += [spectral_norm(nn.Conv2d(c_in, c_in, 3, padding=1)), nn.LeakyReLU(0.2, inplace=True),
                   spectral_norm(nn.Conv2d(c_in, 1, 3, padding=1))]
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: RGB in [0, 1] -> patch logits [B, 1, h, w]."""
        return self.net(x * 2.0 - 1.0)


def layers_for(size: int, patch_grid: int = 8) -> int:
    """Strides needed for a `size` crop to end at about a patch_grid x patch_grid map (>= 1)."""
    return max(1, int(round(math.log2(max(size, 2) / patch_grid))))

