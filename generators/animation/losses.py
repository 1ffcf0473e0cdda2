"""Losses of the animation family: multi-scale reconstruction and keypoint equivariance.

Reconstruction. FOMM compares VGG-19 features at four pyramid scales; no pretrained VGG can be had here,
so each scale compares (a) pixels (L1) and (b) the features of a small *fixed random* conv net. Random
conv filters still respond to edges and local texture, so their L1 punishes the blur and misplaced edges
that pixel L1 alone tolerates (a blurry average is a good pixel-L1 minimiser); being fixed, they cannot be
gamed. The discriminator's feature matching (discriminator.py) adds the learned part of the signal.

Equivariance. Keypoints must move with the image: for a random smooth warp T (affine + thin-plate spline),
the keypoints of the warped frame, mapped through T, must equal the keypoints of the frame itself (and
likewise their Jacobians). Without it nothing stops keypoints from encoding appearance instead of geometry.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .keypoints import downsample, make_coordinate_grid


def image_pyramid(image: torch.Tensor, scales: tuple[float, ...]) -> dict[float, torch.Tensor]:
    return {float(s): downsample(image, float(s)) for s in scales}


class RandomFeatures(nn.Module):
    """A fixed, seeded, never-trained conv net whose activations serve as a perceptual-style feature space.

    Its weights come from `seed` alone, so they are not stored in checkpoints; parameters do not require
    grad (the training loop keeps such modules in eval mode and out of every optimizer).
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64), seed: int = 1234):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        layers, in_f = [], 3
        for i, out_f in enumerate(widths):
            conv = nn.Conv2d(in_f, out_f, kernel_size=3, stride=1 if i == 0 else 2, padding=1)
            with torch.no_grad():  # He init so activations keep their scale through the depth
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / (in_f * 9)) ** 0.5)
                conv.bias.zero_()
            layers.append(conv)
            in_f = out_f
        self.layers = nn.ModuleList(layers)
        self.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        out = (image - 0.5) / 0.25
        features = []
        for conv in self.layers:
            out = F.leaky_relu(conv(out), 0.2)
            features.append(out)
        return features


def reconstruction_loss(prediction: torch.Tensor, target: torch.Tensor, scales: tuple[float, ...],
                        pixel_weight: float = 10.0, feature_weight: float = 10.0,
                        features: RandomFeatures | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Sum over pyramid scales of pixel L1 and random-feature L1 (each a mean over elements)."""
    pred_pyr, target_pyr = image_pyramid(prediction.float(), scales), image_pyramid(target.float(), scales)
    pixel = prediction.new_zeros((), dtype=torch.float32)
    feature = prediction.new_zeros((), dtype=torch.float32)
    for scale in pred_pyr:
        pixel = pixel + (pred_pyr[scale] - target_pyr[scale]).abs().mean()
        if features is not None and feature_weight:
            with torch.autocast(prediction.device.type, enabled=False):
                both = features(torch.cat([pred_pyr[scale], target_pyr[scale]]))
            for layer in both:
                fake, real = layer.chunk(2)
                feature = feature + (fake - real.detach()).abs().mean()
    total = pixel_weight * pixel + feature_weight * feature
    return total, {"rec_pixel": pixel.detach(), "rec_feature": feature.detach()}


class RandomTransform:
    """A random smooth warp of the plane (affine noise + thin-plate spline on a control grid), applied both
    to images (transform_frame) and to coordinates (warp_coordinates), as in FOMM's equivariance loss.

    transform_frame(frame)(z) = frame(T(z)); so a keypoint p seen in the warped frame sits at T(p) in the
    original. sigma_* = 0 (or `identity`) gives T(z) = z exactly.
    """

    def __init__(self, batch: int, sigma_affine: float = 0.05, sigma_tps: float = 0.005, points_tps: int = 5,
                 device=None, generator: torch.Generator | None = None):
        noise = torch.randn((batch, 2, 3), generator=generator) * sigma_affine
        self.theta = (noise + torch.eye(2, 3)[None]).to(device)
        self.control_points = make_coordinate_grid(points_tps, points_tps).reshape(1, -1, 2).to(device)
        self.control_params = (torch.randn((batch, 1, points_tps ** 2), generator=generator) * sigma_tps).to(device)
        self.batch = batch

    @classmethod
    def identity(cls, batch: int, device=None) -> "RandomTransform":
        return cls(batch, sigma_affine=0.0, sigma_tps=0.0, device=device)

    def rows(self, index: slice, device=None) -> "RandomTransform":
        """The same warps for a subset of the batch (a rank's share of a global batch), on `device`."""
        part = object.__new__(RandomTransform)
        part.theta = self.theta[index].to(device)
        part.control_points = self.control_points.to(device)
        part.control_params = self.control_params[index].to(device)
        part.batch = len(part.theta)
        return part

    def transform_frame(self, frame: torch.Tensor) -> torch.Tensor:
        h, w = frame.shape[2:]
        grid = make_coordinate_grid(h, w, device=frame.device).reshape(1, h * w, 2).expand(self.batch, -1, -1)
        grid = self.warp_coordinates(grid).reshape(self.batch, h, w, 2)
        return F.grid_sample(frame.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=True)

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """T applied to [B, N, 2] points."""
        coordinates = coordinates.float()
        theta = self.theta.to(coordinates.device)
        transformed = coordinates @ theta[:, :, :2].transpose(1, 2) + theta[:, :, 2].unsqueeze(1)
        distances = (coordinates.unsqueeze(2) - self.control_points.to(coordinates.device).unsqueeze(1)).abs().sum(-1)
        radial = distances ** 2 * torch.log(distances + 1e-6)                          # [B, N, P]
        return transformed + (radial * self.control_params.to(coordinates.device)).sum(-1, keepdim=True)

    def jacobian(self, coordinates: torch.Tensor) -> torch.Tensor:
        """dT/dz at [B, N, 2] points -> [B, N, 2, 2] (rows: output x, y), differentiable w.r.t. the points."""
        with torch.enable_grad():
            points = coordinates if coordinates.requires_grad else coordinates.detach().requires_grad_(True)
            warped = self.warp_coordinates(points)
            grad_x = torch.autograd.grad(warped[..., 0].sum(), points, create_graph=True)[0]
            grad_y = torch.autograd.grad(warped[..., 1].sum(), points, create_graph=True)[0]
        return torch.stack([grad_x, grad_y], dim=-2)


def equivariance_loss(kp_frame: dict, kp_transformed: dict, transform: RandomTransform,
                      value_weight: float = 10.0, jacobian_weight: float = 10.0
                      ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """|kp(frame) - T(kp(T-warped frame))|, plus |I - J_frame^-1 (dT J_transformed)| for Jacobians."""
    value = (kp_frame["value"].float() - transform.warp_coordinates(kp_transformed["value"])).abs().mean()
    total = value_weight * value
    parts = {"equivariance_value": value.detach()}
    if jacobian_weight and "jacobian" in kp_frame and "jacobian" in kp_transformed:
        mapped = transform.jacobian(kp_transformed["value"]) @ kp_transformed["jacobian"].float()
        product = torch.inverse(kp_frame["jacobian"].float()) @ mapped
        eye = torch.eye(2, device=product.device).expand_as(product)
        jacobian = (eye - product).abs().mean()
        total = total + jacobian_weight * jacobian
        parts["equivariance_jacobian"] = jacobian.detach()
    return total, parts
