"""The occlusion-aware generator (first-order-motion style): encode the source, warp its features with the
dense motion, damp what the source cannot show, decode.

Warping features rather than pixels lets the decoder repair what a warp does badly (stretching, newly
visible teeth or background); multiplying by the occlusion map marks those places as "to in-paint" so the
decoder does not copy stretched source texture into them.

With `warped_skips` (the default) every encoder resolution is warped and occlusion-masked, and the decoder
takes them as U-Net skip connections (as the thin-plate-spline motion model does), not only the bottleneck
as in FOMM: fine texture then travels through the warp at full resolution instead of being re-synthesised
from 1/4-resolution features, which is what makes a 64 px model sharp after minutes rather than hours.

With `pixel_skip` (the default) the decoder also outputs a mask m and the result is
m * (source image warped) + (1 - m) * (decoded image): where the warp is right the source's own pixels are
used, and the decoder only in-paints the rest (mouth interior, disoccluded background). On this CPU a
decoder alone stays blurry for thousands of steps while the warped source is already sharp and
correctly posed (half the copy-the-source error after 450 steps); the mask lets training use that.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dense_motion import DenseMotionNetwork, resize_grid, warp
from .keypoints import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d


class OcclusionAwareGenerator(nn.Module):
    """forward(source_image [B,3,H,W] in [0,1], kp_driving, kp_source) -> {"prediction": [B,3,H,W] in [0,1],
    "deformed": the source image warped by the dense motion, "pixel_mask" (with pixel_skip: where the
    warped source is used as is), "deformation", "mask", "sparse_deformed", "occlusion_map" (when estimated)}."""

    def __init__(self, num_channels: int = 3, num_kp: int = 10, block_expansion: int = 32, max_features: int = 256,
                 num_down_blocks: int = 2, num_bottleneck_blocks: int = 3, estimate_occlusion_map: bool = True,
                 dense_motion_params: dict | None = None, warped_skips: bool = True, pixel_skip: bool = True,
                 edge_kernel: int = 7):
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                                                       estimate_occlusion_map=estimate_occlusion_map,
                                                       **(dense_motion_params or {}))
        self.warped_skips = warped_skips
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=edge_kernel)
        widths = [min(max_features, block_expansion * (2 ** (i + 1))) for i in range(num_down_blocks)]
        self.down_blocks = nn.ModuleList(
            DownBlock2d(block_expansion if i == 0 else widths[i - 1], widths[i]) for i in range(num_down_blocks))
        bottleneck = widths[-1] if widths else block_expansion
        self.bottleneck = nn.Sequential(*[ResBlock2d(bottleneck) for _ in range(num_bottleneck_blocks)])
        skip = 2 if warped_skips else 1
        ups = []
        for i in reversed(range(num_down_blocks)):
            in_f = widths[i] * (1 if i == num_down_blocks - 1 else skip)
            ups.append(UpBlock2d(in_f, block_expansion if i == 0 else widths[i - 1]))
        self.up_blocks = nn.ModuleList(ups)
        self.pixel_skip = pixel_skip
        self.final = nn.Conv2d(block_expansion * skip, num_channels + int(pixel_skip), kernel_size=edge_kernel,
                               padding=edge_kernel // 2)
        self.multiple = 2 ** num_down_blocks

    def forward(self, source_image: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict[str, torch.Tensor]:
        if source_image.shape[-1] % self.multiple or source_image.shape[-2] % self.multiple:
            raise ValueError(f"OcclusionAwareGenerator: image {tuple(source_image.shape[-2:])} is not divisible "
                             f"by {self.multiple}")
        encoded = [self.first(source_image)]
        for block in self.down_blocks:
            encoded.append(block(encoded[-1]))
        motion = self.dense_motion_network(source_image, kp_driving=kp_driving, kp_source=kp_source)
        occlusion = motion.get("occlusion_map")
        out = self.bottleneck(self._warp(encoded.pop(), motion["deformation"], occlusion))
        for block in self.up_blocks:
            out = block(out)
            skip = encoded.pop()
            if self.warped_skips:
                out = torch.cat([out, self._warp(skip, motion["deformation"], occlusion).to(out.dtype)], dim=1)
        final = torch.sigmoid(self.final(out).float())
        deformed = warp(source_image, resize_grid(motion["deformation"], source_image.shape[2:]))
        if self.pixel_skip:
            keep = final[:, -1:]
            prediction = keep * deformed + (1.0 - keep) * final[:, :-1]
            return {"prediction": prediction, "deformed": deformed, "pixel_mask": keep, **motion}
        return {"prediction": final, "deformed": deformed.detach(), **motion}

    @staticmethod
    def _warp(features: torch.Tensor, deformation: torch.Tensor, occlusion: torch.Tensor | None) -> torch.Tensor:
        """Source features moved to where the driving frame has them, zeroed where the source cannot see."""
        warped = warp(features, deformation)
        if occlusion is None:
            return warped
        if occlusion.shape[2:] != warped.shape[2:]:
            occlusion = F.interpolate(occlusion, size=warped.shape[2:], mode="bilinear", align_corners=False)
        return warped * occlusion
