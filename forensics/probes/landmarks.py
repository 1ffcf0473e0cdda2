"""Landmark probe: where are the 68 points (iBUG order) of the face in an aligned crop?

Pose and expression preservation (face swap) and keypoint distance to the driver (animation) are measured
on generated images, which have no ground truth; this regressor, trained on real synthetic crops whose
68 landmarks are exact, reads the landmarks off them. It sees the whole aligned crop (jaw and chin touch
its border) and was trained with small random shifts, rotations and scalings, so a generated face that
sits slightly off the template is still read correctly.

Output is in continuous unit coordinates internally (see common.py) and in pixels of the caller's crop
outside, whatever that crop's size and margin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


from .common import TrainedProbe, as_uint8_batch, conv_trunk, margin_scale, normalise_pixels

KIND = "landmark-probe"
POINTS = 68


@dataclass
class LandmarkConfig:
    """size/margin: the aligned crops the probe reads (others are resized/re-framed to these)."""
    size: int = 64
    margin: float = 0.25
    widths: tuple[int, ...] = (32, 64, 128, 256)
    hidden: int = 256

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if self.size < 2 ** len(self.widths):
            raise ValueError(f"LandmarkConfig: size {self.size} is too small for {len(self.widths)} stride-2 stages")


class LandmarkNet(nn.Module):
    """crop in [0,1] -> [B, 68, 2] landmarks in normalised coordinates (-1..1 across the crop)."""

    def __init__(self, config: LandmarkConfig):
        super().__init__()
        self.config = config
        self.trunk = conv_trunk(3, config.widths)
        cells = -(-config.size // 2 ** len(config.widths))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(config.widths[-1] * cells * cells, config.hidden),
                                  nn.ReLU(inplace=True), nn.Linear(config.hidden, POINTS * 2))

    def start_from_mean_shape(self, mean_normalised: np.ndarray) -> None:
        """Bias the output at the mean layout and shrink the last weights: training starts at the mean-shape
        baseline instead of spending its first epochs finding where faces are."""
        last = self.head[-1]
        with torch.no_grad():
            last.bias.copy_(torch.as_tensor(np.asarray(mean_normalised, np.float32).reshape(-1)))
            last.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(normalise_pixels(x))).float().view(len(x), POINTS, 2)


def pixels_to_normalised(landmarks: np.ndarray | torch.Tensor, size: int):
    """Crop pixels (centres at integers) -> -1..1 (grid_sample, align_corners=False)."""
    return (landmarks + 0.5) / size * 2 - 1


def normalised_to_pixels(normalised: np.ndarray | torch.Tensor, size: int):
    return (normalised + 1) / 2 * size - 0.5


class LandmarkProbe(TrainedProbe):
    """Reads 68 landmarks off aligned face crops (see module docstring)."""

    KIND, CONFIG, NET, WHAT = KIND, LandmarkConfig, LandmarkNet, "landmark"

    def predict(self, crops, margin: float | None = None, batch_size: int = 256) -> np.ndarray:
        """float32 [N, 68, 2] landmarks in pixels of the given uint8 crops [N,S,S,3] aligned at `margin`
        (default: the probe's)."""
        crops = as_uint8_batch(crops)
        margin = self.config.margin if margin is None else margin
        normalised = self.outputs(crops, margin, batch_size)[0].astype(np.float64)
        # back from the probe's framing to the caller's: undo the re-framing scale about the centre
        normalised /= margin_scale(margin, self.config.margin)
        return normalised_to_pixels(normalised, crops.shape[1]).astype(np.float32)
