"""Dense motion (first-order-motion style): from K sparse keypoint motions to one per-pixel warp + occlusion.

Each keypoint k proposes a local transform for pixels near it, taking driving-frame coordinates z to
source-frame coordinates: T_k(z) = kp_source_k + J_k (z - kp_driving_k), with J_k = J_source_k J_driving_k^-1
(the first-order Taylor expansion of the unknown motion around the keypoint; J = I without Jacobians).
A background transform (the identity) is added as proposal 0. An hourglass looks at the source warped by
every proposal plus Gaussian "where the keypoints are" maps and predicts a softmax mask over the K + 1
proposals; the warp is their per-pixel mixture. Because the masks sum to one, equal source and driving
keypoints give exactly the identity warp, whatever the network has learned.

The occlusion map (sigmoid, 1 = visible in the source) tells the generator which warped features to trust
and which to in-paint. All grids are backward warps for grid_sample(align_corners=True).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .keypoints import Hourglass, downsample, kp2gaussian, make_coordinate_grid


class DenseMotionNetwork(nn.Module):
    """forward(source_image [B,C,H,W], kp_driving, kp_source) -> {"mask": [B,K+1,h,w], "sparse_deformed":
    [B,K+1,C,h,w], "deformation": [B,h,w,2], "occlusion_map": [B,1,h,w] (if estimated)} at h = H*scale_factor.

    kp_* are the KeypointDetector dicts ({"value": [B,K,2]} and optionally {"jacobian": [B,K,2,2]}).
    """

    def __init__(self, num_kp: int = 10, num_channels: int = 3, block_expansion: int = 32, num_blocks: int = 4,
                 max_features: int = 256, estimate_occlusion_map: bool = True, scale_factor: float = 0.5,
                 kp_variance: float = 0.01, head_kernel: int = 7):
        super().__init__()
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        in_features = (num_kp + 1) * (num_channels + 1)
        self.hourglass = Hourglass(in_features, block_expansion, num_blocks, max_features)
        pad = head_kernel // 2
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=head_kernel, padding=pad)
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=head_kernel, padding=pad)
                          if estimate_occlusion_map else None)

    def forward(self, source_image: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict[str, torch.Tensor]:
        source = downsample(source_image, self.scale_factor)
        b, c, h, w = source.shape
        with torch.autocast(source.device.type, enabled=False):  # geometry stays in float32
            heatmaps = heatmap_representation((h, w), kp_driving, kp_source, self.kp_variance)
            sparse = sparse_motions((h, w), kp_driving, kp_source)
            deformed = deform_per_keypoint(source, sparse)
        net_in = torch.cat([heatmaps, deformed], dim=2).reshape(b, -1, h, w)
        prediction = self.hourglass(net_in)
        mask = F.softmax(self.mask(prediction).float(), dim=1)
        deformation = (mask.unsqueeze(-1) * sparse.float()).sum(dim=1)
        out = {"mask": mask, "sparse_deformed": deformed, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction).float())
        return out


def heatmap_representation(spatial_size: tuple[int, int], kp_driving: dict, kp_source: dict,
                           variance: float) -> torch.Tensor:
    """[B, K+1, 1, H, W]: Gaussian at each driving keypoint minus one at its source keypoint (zeros for the
    background): a signed picture of where each point moves from and to."""
    gauss = (kp2gaussian(kp_driving["value"].float(), spatial_size, variance)
             - kp2gaussian(kp_source["value"].float(), spatial_size, variance))
    background = torch.zeros_like(gauss[:, :1])
    return torch.cat([background, gauss], dim=1).unsqueeze(2)


def sparse_motions(spatial_size: tuple[int, int], kp_driving: dict, kp_source: dict) -> torch.Tensor:
    """[B, K+1, H, W, 2]: the identity (background) and every keypoint's first-order transform of the grid."""
    kp_d, kp_s = kp_driving["value"].float(), kp_source["value"].float()
    b, k, _ = kp_d.shape
    grid = make_coordinate_grid(*spatial_size, device=kp_d.device, dtype=kp_d.dtype)
    relative = grid[None, None] - kp_d[:, :, None, None, :]                           # z - kp_driving
    if "jacobian" in kp_driving and "jacobian" in kp_source:
        jacobian = kp_source["jacobian"].float() @ torch.inverse(kp_driving["jacobian"].float())  # [B, K, 2, 2]
        relative = torch.einsum("bkij,bkhwj->bkhwi", jacobian, relative)
    driving_to_source = relative + kp_s[:, :, None, None, :]
    identity = grid[None, None].expand(b, 1, *grid.shape)
    return torch.cat([identity, driving_to_source], dim=1)


def deform_per_keypoint(source: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
    """The source warped by each of the K+1 proposals: [B, K+1, C, H, W]."""
    b, n, h, w, _ = sparse.shape
    repeated = source.unsqueeze(1).expand(b, n, *source.shape[1:]).reshape(b * n, *source.shape[1:])
    warped = warp(repeated, sparse.reshape(b * n, h, w, 2))
    return warped.reshape(b, n, -1, h, w)


def warp(features: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Backward warp: output(z) = features(grid(z)). Border padding: a face crop's surroundings continue
    past its edge (background, hair), so the nearest border pixel is a better guess than black."""
    if grid.shape[1:3] != features.shape[2:]:
        grid = resize_grid(grid, features.shape[2:])
    # float32 both: a bf16 grid (under CUDA autocast) would be off by a pixel at 256 px.
    return F.grid_sample(features.float(), grid.float(), mode="bilinear", padding_mode="border",
                         align_corners=True)


def resize_grid(grid: torch.Tensor, size) -> torch.Tensor:
    """A [B, h, w, 2] warp resampled to another resolution (coordinates are resolution-free)."""
    resized = F.interpolate(grid.permute(0, 3, 1, 2), size=tuple(size), mode="bilinear", align_corners=True)
    return resized.permute(0, 2, 3, 1)
