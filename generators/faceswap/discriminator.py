"""A spectral-norm patch discriminator and the hinge losses that train it and the generator.

Why a patch discriminator: reconstruction losses (L1, SSIM) settle for the blurry average of plausible
faces; a discriminator that scores every receptive-field patch as real or generated pushes the decoders
toward sharp local texture, which is where an L1-trained autoencoder is visibly fake. Spectral norm keeps
the discriminator Lipschitz so that it cannot overpower a small generator early (Miyato et al. 2018);
the hinge loss saturates on confident patches so D stops spending capacity on them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


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


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """max(0, 1 - D(real)) + max(0, 1 + D(fake)), averaged over patches."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The generator raises D's score of its output; no margin (hinge GAN's usual generator loss)."""
    return -fake_logits.float().mean()
