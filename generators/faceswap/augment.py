"""Training inputs for the face-swap autoencoder: random warps of the input, and landmark-hull mask targets.

Why warp the input only: an autoencoder fed its own target learns to copy pixels; one fed a randomly
*warped* face and asked for the unwarped face must learn what a face of this person looks like in this
pose, which is exactly what it has to do when the input is the other person. A random affine shared by
input and target (plus its mask) is ordinary augmentation: more poses than the footage holds.

All warps are drawn in numpy from the caller's generator (reproducible per (seed, epoch, rank)) and
applied in torch with grid_sample, so they run on the training device.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from generators.blending.masks import erode_or_dilate, face_polygon, feather, fill_polygon


@dataclass
class WarpConfig:
    """Angles in degrees; scales and shifts as fractions of the crop; elastic in normalised units
    (the crop spans [-1, 1]) on a grid x grid control lattice."""
    aug_rotation: float = 0.0
    aug_scale: float = 0.0
    aug_shift: float = 0.0
    flip: bool = True
    warp_rotation: float = 3.0
    warp_scale: float = 0.03
    warp_shift: float = 0.03
    warp_elastic: float = 0.05
    warp_grid: int = 5


def _thetas(rng: np.random.Generator, n: int, rotation: float, scale: float, shift: float) -> np.ndarray:
    """[n, 2, 3] affine_grid matrices (output coords -> input coords) of random similarity transforms."""
    angle = np.deg2rad(rng.uniform(-rotation, rotation, n))
    zoom = 1.0 + rng.uniform(-scale, scale, n)
    move = rng.uniform(-shift, shift, (n, 2)) * 2.0        # fraction of the crop -> normalised units
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    theta = np.zeros((n, 2, 3), np.float32)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cos, -sin, move[:, 0]
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sin, cos, move[:, 1]
    return theta


def sample_warps(rng: np.random.Generator, n: int, config: WarpConfig) -> dict[str, torch.Tensor]:
    """Random parameters for n crops: "shared" affine (input, target and mask), "jitter" affine and
    "elastic" coarse displacement field [n, 2, g, g] (input only)."""
    shared = _thetas(rng, n, config.aug_rotation, config.aug_scale, config.aug_shift)
    if config.flip:
        flips = rng.random(n) < 0.5
        shared[flips, :, 0] *= -1.0
    jitter = _thetas(rng, n, config.warp_rotation, config.warp_scale, config.warp_shift)
    grid = max(2, int(config.warp_grid))
    elastic = rng.uniform(-1.0, 1.0, (n, 2, grid, grid)).astype(np.float32) * float(config.warp_elastic)
    elastic[:, :, [0, -1], :] = 0.0      # pin the border: the warp moves features, not the crop frame
    elastic[:, :, :, [0, -1]] = 0.0
    return {"shared": torch.from_numpy(shared), "jitter": torch.from_numpy(jitter),
            "elastic": torch.from_numpy(elastic)}


def apply_warps(images: torch.Tensor, masks: torch.Tensor, warps: dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(warped input, target, target mask) from float images [n, 3, S, S] and masks [n, 1, S, S].

    The input grid is the target grid composed with the jitter and the elastic field, so the input is
    sampled once from the original crop (no double interpolation blur).
    """
    n, _, h, w = images.shape
    device, dtype = images.device, images.dtype
    shared = warps["shared"].to(device, dtype)
    target_grid = F.affine_grid(shared, [n, 1, h, w], align_corners=False)
    target = F.grid_sample(images, target_grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    target_mask = F.grid_sample(masks, target_grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    jitter_grid = F.affine_grid(warps["jitter"].to(device, dtype), [n, 1, h, w], align_corners=False)
    elastic = F.interpolate(warps["elastic"].to(device, dtype), size=(h, w), mode="bicubic", align_corners=True)
    local = jitter_grid + elastic.permute(0, 2, 3, 1)
    input_grid = torch.einsum("nhwk,nik->nhwi", local, shared[:, :, :2]) + shared[:, None, None, :, 2]
    warped = F.grid_sample(images, input_grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return warped, target, target_mask


def hull_masks(landmarks: np.ndarray, size: int, hull: str = "face", erode: float = 0.02,
               blur: float = 0.02) -> np.ndarray:
    """Soft face masks float32 [N, S, S] from 68-point landmarks in crop pixels: the convex hull, eroded by
    `erode` x size pixels (keeps the composite edge inside the face, where skin is) and feathered with a
    Gaussian of sigma `blur` x size (a mask head can fit a soft edge; a hard one it can only blur)."""
    radius = int(round(erode * size))
    sigma = float(blur * size)
    out = np.zeros((len(landmarks), size, size), np.float32)
    for i, lm in enumerate(np.asarray(landmarks, np.float64)):
        mask = fill_polygon((size, size), face_polygon(lm, hull, 1.0))
        eroded = erode_or_dilate(mask, -radius)
        out[i] = feather(eroded if eroded.max() > 0 else mask, sigma)
    return out
