"""Frequency-aware branch: fixed high-pass residuals and the radial power spectrum of the face crop.

Why a second branch: generators build images by upsampling (transposed convolutions, nearest/bilinear
resize + conv), which leaves periodic high-frequency traces such as checkerboards (Odena et al. 2016)
and a high-frequency spectrum that does not decay like a camera image's (Durall et al. 2020, "Watch
your up-convolution"). An ImageNet backbone is trained to ignore exactly that band, and a blended face
boundary is a noise-level discontinuity. So the branch looks only at what is left after removing the
image content:

* SRM residuals: three fixed zero-sum high-pass kernels from steganalysis (Fridrich and Kodovsky 2012,
  used for manipulation detection by Zhou et al. 2018, who also sum them over the colour channels) on
  the grey image, truncated so that edges (content) saturate while noise-level traces pass; a small
  learned CNN pools their texture statistics. Grey rather than per channel: colour mismatches are the
  RGB backbone's job, and at full resolution this layer would otherwise cost more than the backbone.
* Radial spectrum: the azimuthal average of the log amplitude spectrum of the windowed, mean-free grey
  image, one value per frequency band; a linear layer reads its shape.

Both front-ends are exactly zero for a constant image (zero-sum kernels with reflect padding, mean
removal before the FFT): only spatial variation, and mostly its finest scales, reaches the head.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# 5x5 forms of the SRM kernels: "KV" (square 5x5), second-order 3x3 and second-order horizontal 1-D.
_SRM_KERNELS = (
    [[-1, 2, -2, 2, -1],
     [2, -6, 8, -6, 2],
     [-2, 8, -12, 8, -2],
     [2, -6, 8, -6, 2],
     [-1, 2, -2, 2, -1]],
    [[0, 0, 0, 0, 0],
     [0, -1, 2, -1, 0],
     [0, 2, -4, 2, 0],
     [0, -1, 2, -1, 0],
     [0, 0, 0, 0, 0]],
    [[0, 0, 0, 0, 0],
     [0, 0, 0, 0, 0],
     [0, 1, -2, 1, 0],
     [0, 0, 0, 0, 0],
     [0, 0, 0, 0, 0]],
)
_SRM_SCALES = (12.0, 4.0, 2.0)  # each kernel's normaliser, so a unit step gives comparable responses

# Generator traces are a few grey levels; edges are tens to hundreds. Clipping residuals here keeps the
# former intact and stops the latter (image content) from dominating the learned statistics.
RESIDUAL_TRUNCATION = 12.0 / 255.0
SPECTRUM_BINS = 32
# Amplitudes are measured in units of one grey level of white noise (the orthonormal FFT keeps that
# level at 1/255 at every size), so log1p(amplitude / unit) is a true log for anything above the
# noise floor and exactly zero for a flat image.
SPECTRUM_UNIT = 1.0 / 255.0


def srm_kernels() -> torch.Tensor:
    """[3, 1, 5, 5] conv weights, one output map per kernel."""
    base = torch.tensor(_SRM_KERNELS, dtype=torch.float32) / torch.tensor(_SRM_SCALES).view(3, 1, 1)
    return base.unsqueeze(1)


def radial_bins(height: int, width: int, bins: int, device=None) -> torch.Tensor:
    """Band index of every rfft2 coefficient, by radius in cycles/pixel; -1 marks the DC term.

    Bands are in normalised frequency, so a profile means the same thing at every input size.
    """
    fy = torch.fft.fftfreq(height, device=device).abs().view(-1, 1)
    fx = torch.fft.rfftfreq(width, device=device).view(1, -1)
    radius = torch.sqrt(fy ** 2 + fx ** 2)
    r_max = float(radius.max())
    index = torch.clamp((radius / r_max * bins).long(), max=bins - 1)
    index[0, 0] = -1
    return index


class FrequencyBranch(nn.Module):
    """Texture features from SRM residuals plus a radial-spectrum profile, from a normalised RGB batch."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], residual_width: int = 64,
                 spectrum_width: int = 64, bins: int = SPECTRUM_BINS):
        super().__init__()
        # The backbone's normalisation is undone first so the truncation threshold is in grey levels.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        # Persistent, so a checkpoint carries the exact filters its head was trained on.
        self.register_buffer("srm", srm_kernels())
        self.bins = bins
        self.residual_net = nn.Sequential(
            _conv_bn_relu(self.srm.shape[0], residual_width // 4),
            _conv_bn_relu(residual_width // 4, residual_width // 2),
            _conv_bn_relu(residual_width // 2, residual_width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        # No BatchNorm here: the log already puts every band on a similar scale, and BatchNorm1d would
        # refuse a training batch of one (a ragged last batch).
        self.spectrum_net = nn.Sequential(nn.Linear(bins, spectrum_width), nn.ReLU(inplace=True))
        self.out_features = residual_width + spectrum_width
        self._bin_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def grey(self, x: torch.Tensor) -> torch.Tensor:
        """Back to [0, 1] pixels, averaged over RGB: [B, 1, H, W]."""
        return (x.float() * self.std + self.mean).mean(dim=1, keepdim=True)

    def residuals(self, x: torch.Tensor) -> torch.Tensor:
        """Truncated SRM residuals scaled to [-1, 1]: [B, 3, H, W]; zero wherever the image is flat."""
        return self._residuals(self.grey(x))

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """Mean log(1 + |FFT| / SPECTRUM_UNIT) per radial band of the windowed, mean-free grey image: [B, bins]."""
        return self._spectrum(self.grey(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = self.grey(x)
        return torch.cat([self.residual_net(self._residuals(grey)), self.spectrum_net(self._spectrum(grey))], dim=1)

    def _residuals(self, grey: torch.Tensor) -> torch.Tensor:
        response = F.conv2d(F.pad(grey, (2, 2, 2, 2), mode="reflect"), self.srm)
        return torch.clamp(response, -RESIDUAL_TRUNCATION, RESIDUAL_TRUNCATION) / RESIDUAL_TRUNCATION

    def _spectrum(self, grey: torch.Tensor) -> torch.Tensor:
        grey = grey[:, 0]
        grey = grey - grey.mean(dim=(1, 2), keepdim=True)
        height, width = grey.shape[-2:]
        window = torch.outer(torch.hann_window(height, periodic=False, device=grey.device),
                             torch.hann_window(width, periodic=False, device=grey.device))
        amplitude = torch.log1p(torch.fft.rfft2(grey * window, norm="ortho").abs() / SPECTRUM_UNIT)
        index, counts = self._bands(height, width, grey.device)
        keep = index >= 0
        sums = torch.zeros(grey.shape[0], self.bins, device=grey.device, dtype=amplitude.dtype)
        sums.index_add_(1, index[keep], amplitude.flatten(1)[:, keep])
        return sums / counts

    def _bands(self, height: int, width: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (height, width, str(device))
        if key not in self._bin_cache:
            index = radial_bins(height, width, self.bins, device=device).flatten()
            counts = torch.bincount(index[index >= 0], minlength=self.bins).clamp(min=1).float()
            self._bin_cache[key] = (index, counts)
        return self._bin_cache[key]


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
