"""Unsupervised keypoints (first-order-motion style): an hourglass predicts K heatmaps, soft-argmax turns
each into a point in [-1, 1]^2, and optionally a 2x2 local Jacobian describes how the neighbourhood moves.

Nothing tells the detector where keypoints should be: the reconstruction loss rewards points whose motion
explains the frame-to-frame change, and the equivariance loss (losses.py) makes them follow the image
under a known warp. Soft-argmax keeps the coordinate differentiable and inside the image by construction
(a convex combination of grid coordinates).

Coordinates everywhere in this family: (x, y) in [-1, 1], -1 at the centre of the first pixel and +1 at
the centre of the last, i.e. grid_sample's align_corners=True convention (`make_coordinate_grid`).
The shared convolutional blocks (Hourglass and friends) live here because every module of the family
uses them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def make_coordinate_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """[H, W, 2] (x, y) pixel-centre coordinates in [-1, 1]: the identity grid for grid_sample(align_corners=True)."""
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1)


def kp2gaussian(kp: torch.Tensor, spatial_size: tuple[int, int], variance: float) -> torch.Tensor:
    """Isotropic Gaussian bumps [B, K, H, W] centred on keypoints [B, K, 2]: how the dense-motion network
    is told where the keypoints are."""
    grid = make_coordinate_grid(*spatial_size, device=kp.device, dtype=kp.dtype)
    diff = grid[None, None] - kp[:, :, None, None, :]
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / variance)


def downsample(image: torch.Tensor, scale: float) -> torch.Tensor:
    """Anti-aliased resize by `scale` (identity at 1): keypoints and motion need shape, not texture, and
    run several times cheaper on a smaller image."""
    if scale == 1:
        return image
    return F.interpolate(image, scale_factor=scale, mode="bilinear", align_corners=False, antialias=True,
                         recompute_scale_factor=False)


def norm_layer(features: int) -> nn.Module:
    """GroupNorm where FOMM has BatchNorm: it behaves the same in training and evaluation (BatchNorm's
    running statistics lag far behind the weights in a short CPU run, and a keypoint should not depend on
    the other images of its batch), and on this CPU it is also several times faster."""
    return nn.GroupNorm(8 if features % 8 == 0 else 1, features)


class SameBlock2d(nn.Module):
    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=kernel_size // 2)
        self.norm = norm_layer(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """conv + norm + ReLU at full resolution, then a 2x average pool."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.block = SameBlock2d(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.block(x), 2)


class UpBlock2d(nn.Module):
    """Nearest 2x upsampling then conv + norm + ReLU (no transposed conv: no checkerboard artifacts)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.block = SameBlock2d(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(F.interpolate(x, scale_factor=2, mode="nearest"))


class ResBlock2d(nn.Module):
    """Pre-activation residual block keeping resolution and channels."""

    def __init__(self, features: int):
        super().__init__()
        self.norm1 = norm_layer(features)
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.norm2 = norm_layer(features)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return x + out


class Hourglass(nn.Module):
    """U-Net: `num_blocks` down blocks, as many up blocks, skip connections by concatenation.

    The output keeps the input concatenated to the last features (out_filters = block_expansion + in_features)
    so that heads see both context and the raw input. Inputs must be divisible by 2**num_blocks.
    """

    def __init__(self, in_features: int, block_expansion: int, num_blocks: int, max_features: int):
        super().__init__()
        widths = [min(max_features, block_expansion * (2 ** (i + 1))) for i in range(num_blocks)]
        self.down = nn.ModuleList(
            DownBlock2d(in_features if i == 0 else widths[i - 1], widths[i]) for i in range(num_blocks))
        ups = []
        for i in reversed(range(num_blocks)):
            in_f = widths[i] * (1 if i == num_blocks - 1 else 2)
            out_f = block_expansion if i == 0 else widths[i - 1]
            ups.append(UpBlock2d(in_f, out_f))
        self.up = nn.ModuleList(ups)
        self.out_filters = block_expansion + in_features
        self.multiple = 2 ** num_blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(f"Hourglass: input {tuple(x.shape[-2:])} is not divisible by {self.multiple}")
        skips = [x]
        for block in self.down:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.up:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out


class KeypointDetector(nn.Module):
    """Image [B, 3, H, W] in [0, 1] -> {"value": [B, K, 2] in [-1, 1], "jacobian": [B, K, 2, 2] (when
    estimated), "heatmap": [B, K, h, w] (softmax over space)}.

    temperature < 1 sharpens the softmax so that each heatmap commits to one place; the Jacobian head
    starts at the identity so that early training behaves like pure translation (FOMM's initialisation).
    head_kernel: FOMM's 7x7 heads cost more than the whole hourglass at 64 px; 3 is enough there.
    """

    def __init__(self, num_kp: int = 10, num_channels: int = 3, block_expansion: int = 32, num_blocks: int = 4,
                 max_features: int = 256, temperature: float = 0.1, estimate_jacobian: bool = True,
                 scale_factor: float = 0.5, head_kernel: int = 7):
        super().__init__()
        self.num_kp = num_kp
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.estimate_jacobian = estimate_jacobian
        self.predictor = Hourglass(num_channels, block_expansion, num_blocks, max_features)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=head_kernel, padding=head_kernel // 2)
        if estimate_jacobian:
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * num_kp, kernel_size=head_kernel,
                                      padding=head_kernel // 2)
            nn.init.zeros_(self.jacobian.weight)
            with torch.no_grad():
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(num_kp))
        else:
            self.jacobian = None

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.predictor(downsample(image, self.scale_factor))
        logits = self.kp(features)
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.float().reshape(b, k, -1) / self.temperature, dim=2).reshape(b, k, h, w)
        out = {"value": heatmap_to_keypoints(heatmap), "heatmap": heatmap}
        if self.jacobian is not None:
            jac_map = self.jacobian(features).float().reshape(b, k, 4, h, w)
            jac = (jac_map * heatmap.unsqueeze(2)).sum(dim=(-1, -2))
            out["jacobian"] = jac.reshape(b, k, 2, 2)
        return out


def heatmap_to_keypoints(heatmap: torch.Tensor) -> torch.Tensor:
    """Soft-argmax: expected (x, y) under each normalised heatmap [B, K, H, W] -> [B, K, 2]."""
    grid = make_coordinate_grid(heatmap.shape[2], heatmap.shape[3], device=heatmap.device, dtype=heatmap.dtype)
    return (heatmap.unsqueeze(-1) * grid[None, None]).sum(dim=(2, 3))
