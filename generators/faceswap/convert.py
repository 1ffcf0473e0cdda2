"""Conversion: put identity A's face onto every frame of a video of B, and say exactly how it was made.

The face swap draws a face and a mask per aligned crop (encode, decode with the source identity's decoder);
everything around that (five points, colour match, feathered or Poisson blend, H.264) is the product path
every fake video shares, generators.compositing.rewrite_video. Two passes over the video: the first only
detects (on every `every`-th frame and the last one), so a video without any face fails before anything is
written, and the five points of the frames in between are interpolated from their neighbouring keyframes
rather than held (held points make the face jump). Every output comes with its recipe (generator,
checkpoint hash, mask, blending, colour, codec), because detectors and benchmarks are sliced by artifact.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch

from forensics.device import autocast
from forensics.faces import CropSpec, FaceDetectorConfig, get_face_detector
from generators.compositing import (BLENDS, COLOURS, check_choice, composite_frames, feather_mask, hull_mask_from_five,
                                    reinhard_transfer, rewrite_video, skin_region)
from generators.faceswap.checkpoint import LoadedFaceswap, load_faceswap

MASKS = ("learned", "hull")


def swap_video(checkpoint_dir: str | os.PathLike | LoadedFaceswap, target_video: str | os.PathLike,
               out_path: str | os.PathLike, source: str = "a", detector=None, blend: str = "feather",
               colour: str = "reinhard", every: int = 1, *, mask: str = "learned", erode: float = 0.0,
               blur: float = 0.05, crf: int = 18, device: str = "cpu", batch_size: int = 16) -> dict[str, Any]:
    """Swap the `source` decoder's identity onto the most confident face of every frame of target_video.

    erode / blur: mask erosion radius and feather sigma as fractions of the crop size. No erosion by default:
    the learned mask was trained toward an already eroded hull (FaceswapConfig.mask_erode), and eroding it again
    leaves a ring of the target's own face (a beard, say) around the swapped one, which keeps the target's
    identity (benchmarks/generators.py: B-onto-A ID retrieval 0.55 at erode 0.04, 0.98 at 0). Frames where no
    face is found are copied unchanged (and counted); a video with no face at all is an error. Returns the
    recipe dict (also what a manifest row of the fake should carry).
    """
    check_choice("blend", blend, BLENDS)
    check_choice("colour", colour, COLOURS)
    check_choice("mask", mask, MASKS)
    loaded = checkpoint_dir if isinstance(checkpoint_dir, LoadedFaceswap) else load_faceswap(checkpoint_dir, device)
    _check_source(loaded, source)
    detector = detector or get_face_detector(FaceDetectorConfig(device=device))
    crop = CropSpec(loaded.size, loaded.margin)
    stats = rewrite_video(target_video, out_path, lambda crops: generate(loaded, crops, source), crop, detector,
                          blend=blend, colour=colour, erode=erode, blur=blur, every=every, crf=crf,
                          batch_size=batch_size, masks=_hull if mask == "hull" else None)
    stats["mask"] = {"type": mask, **stats["mask"]}
    return {"generator": "faceswap", "checkpoint": str(loaded.path), "checkpoint_sha256": loaded.sha256,
            "source": source, "source_identity": (loaded.meta.get("identities") or {}).get(source), **stats}


def swap_frames(loaded: LoadedFaceswap, frames: Sequence[np.ndarray], points5: Sequence[np.ndarray], source: str,
                blend: str = "feather", colour: str = "reinhard", mask: str = "learned", erode: float = 0.0,
                blur: float = 0.05) -> list[np.ndarray]:
    """Swapped copies of RGB frames, given each frame's five points (one face per frame)."""
    return composite_frames(frames, points5, lambda crops: generate(loaded, crops, source),
                            CropSpec(loaded.size, loaded.margin), blend=blend, colour=colour, erode=erode, blur=blur,
                            masks=_hull if mask == "hull" else None)


def _hull(soft: np.ndarray, points5: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return hull_mask_from_five(points5, matrix, soft.shape[0])


def swap_crops(model: LoadedFaceswap | torch.nn.Module, crops: np.ndarray, source: str, batch_size: int = 64,
               composite: bool = False, colour: str = "none") -> np.ndarray:
    """Swap aligned uint8 crops [N, S, S, 3] (e.g. FaceSet.images) to `source`: uint8 [N, S, S, 3].

    Raw decoder output by default (what identity probes should judge); composite=True pastes it into the
    input crop through the learned mask (optionally colour-matched), as conversion does within a frame.
    """
    check_choice("colour", colour, COLOURS)
    rgb, masks = generate(model, crops, source, batch_size)
    if composite:
        base = np.asarray(crops, np.float32) / 255.0
        net = model.model if isinstance(model, LoadedFaceswap) else model
        skin = skin_region(net.config.size, net.config.margin)
        for i in range(len(rgb)):
            alpha = feather_mask(masks[i], 0.0, 0.0)
            face = reinhard_transfer(rgb[i], base[i], alpha, skin) if colour == "reinhard" else rgb[i]
            rgb[i] = alpha[..., None] * face + (1.0 - alpha[..., None]) * base[i]
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


@torch.no_grad()
def generate(model: LoadedFaceswap | torch.nn.Module, crops: np.ndarray, source: str, batch_size: int = 64
             ) -> tuple[np.ndarray, np.ndarray]:
    """(faces float32 [N, S, S, 3] in [0, 1], masks float32 [N, S, S]) drawn by decoder `source`."""
    net = model.model if isinstance(model, LoadedFaceswap) else model
    where = f"{model.path}: " if isinstance(model, LoadedFaceswap) else ""
    _check_source(model, source)
    crops = np.asarray(crops)
    size = net.config.size
    if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
        raise ValueError(f"swap_crops: expected uint8 crops [N, S, S, 3], got {crops.dtype} {crops.shape}")
    if crops.shape[1:3] != (size, size):
        raise ValueError(f"{where}model trained on {size}x{size} crops, got {crops.shape[2]}x{crops.shape[1]} "
                         f"(resolution mismatch)")
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    faces, masks = [], []
    try:
        for start in range(0, len(crops), batch_size):
            x = torch.from_numpy(crops[start:start + batch_size]).to(device).permute(0, 3, 1, 2).float() / 255.0
            with autocast(device):
                rgb, mask = net.decode(x, source)
            faces.append(rgb.float().permute(0, 2, 3, 1).cpu().numpy())
            masks.append(mask.float()[:, 0].cpu().numpy())
    finally:
        net.train(was_training)
    if not faces:
        return np.zeros((0, size, size, 3), np.float32), np.zeros((0, size, size), np.float32)
    return np.concatenate(faces), np.concatenate(masks)


def _check_source(model, source: str) -> None:
    net = model.model if isinstance(model, LoadedFaceswap) else model
    names = list(getattr(net, "decoders", {}).keys())
    if source not in names:
        where = f"{model.path}: " if isinstance(model, LoadedFaceswap) else ""
        raise ValueError(f"{where}no decoder {source!r} (this face-swap model has {', '.join(names)})")
