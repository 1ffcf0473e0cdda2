"""Animate a face: the source image's person, moving like the driving video's (first-order-motion transfer).

Both inputs go through the same face pipeline the model was trained on: MTCNN finds the face, five points
align it to the template at the model's crop size. Keypoints of the source and of every driving frame
are detected; in *relative* mode (FOMM's default for reenactment) the source keypoints are moved by the
driver's displacement since its first frame, kp = kp_source + (kp_driving - kp_driving_first) (Jacobians
likewise: J = J_driving J_driving_first^-1 J_source), so the source keeps its own face shape and only
the motion is transferred. Absolute mode uses the driver's keypoints as they are (self-reenactment).

The output is a full video at the source image's size: the source photo with each generated face blended
back into it the way every fake here is made (generators.compositing: Reinhard colour match to the source's
skin, a feathered hull mask of the source's face, pasted through the inverse of the alignment), one frame per
driving frame at the driver's frame rate: a talking photo. `composite=False` writes the generated crops
themselves instead (upscaled to `output_size`). A driving frame where no face is found reuses the nearest
earlier crop (or the first found one), and is counted in the recipe.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from forensics.device import autocast, resolve_device
from forensics.faces import CropSpec, FaceDetectorConfig, align_face, get_face_detector
from forensics.media import VideoWriter, iter_frames, load_image
from generators.blending.masks import face_polygon, fill_polygon
from generators.compositing import BLENDS, COLOURS, check_choice, composite_frames
from generators.images import to_tensor, to_uint8

from .checkpoint import AnimationModel, load_animation
from .config import FAMILY

DETECT_CHUNK = 32   # driving frames held in memory at a time (crops are kept, frames are not)
HULL_SCALE = 1.15   # the blend mask: the source's face hull, grown so a turning head stays inside it


@dataclass
class Reenactment:
    generated: np.ndarray      # uint8 [N, S, S, 3]
    kp_source: np.ndarray      # float32 [N, K, 2] keypoints the generator was given for the source
    kp_driving: np.ndarray     # float32 [N, K, 2] keypoints detected on the driving crops
    kp_target: np.ndarray      # float32 [N, K, 2] keypoints the generator was asked to produce (relative or not)
    kp_generated: np.ndarray   # float32 [N, K, 2] keypoints detected on the generated crops


def reenact_crops(model: AnimationModel, source_crops: np.ndarray, driving_crops: np.ndarray,
                  relative: bool = False, batch_size: int = 32) -> Reenactment:
    """Generate one crop per driving crop from aligned uint8 crops at the model's size (evaluation path).

    source_crops: one crop [S, S, 3] (animated by every driving crop) or one per driving crop [N, S, S, 3].
    Keypoints are in [-1, 1] crop coordinates (pixel = (kp + 1) * (S - 1) / 2).
    """
    sources, drivings = np.asarray(source_crops), np.asarray(driving_crops)
    if sources.ndim == 3:
        sources = sources[None]
    for name, crops in (("source", sources), ("driving", drivings)):
        if crops.ndim != 4 or crops.shape[1:] != (model.size, model.size, 3) or crops.dtype != np.uint8:
            raise ValueError(f"reenact_crops: {name} crops must be uint8 [N, {model.size}, {model.size}, 3] "
                             f"(the model's resolution), got {crops.dtype} {list(crops.shape)}")
    if len(sources) not in (1, len(drivings)):
        raise ValueError(f"reenact_crops: {len(sources)} source crops for {len(drivings)} driving crops")
    out = transfer(model.kp_detector, model.generator, sources, drivings, device=model.device, relative=relative,
                   batch_size=batch_size)
    return Reenactment(**out)


@torch.no_grad()
def transfer(kp_detector, generator, sources: np.ndarray, drivings: np.ndarray, device, relative: bool,
             batch_size: int = 32) -> dict[str, np.ndarray]:
    """Core of reenact_crops on raw modules (also used by the training task's evaluation)."""
    device = resolve_device(device)
    modes = (kp_detector.training, generator.training)
    kp_detector.eval(), generator.eval()
    try:
        with autocast(device):
            kp_drv = _keypoints(kp_detector, drivings, device, batch_size)
            kp_src = _keypoints(kp_detector, sources, device, batch_size)
            if len(sources) == 1:
                kp_src = {k: v.expand(len(drivings), *v.shape[1:]) for k, v in kp_src.items()}
            kp_tgt = relative_motion(kp_src, kp_drv, {k: v[:1] for k, v in kp_drv.items()}) if relative else kp_drv
            generated = []
            for start in range(0, len(drivings), batch_size):
                part = slice(start, start + batch_size)
                src = to_tensor(sources[part] if len(sources) > 1 else
                                np.repeat(sources, len(drivings[part]), axis=0), device)
                out = generator(src, kp_driving={k: v[part] for k, v in kp_tgt.items()},
                                kp_source={k: v[part] for k, v in kp_src.items()})
                generated.append(to_uint8(out["prediction"]))
            generated = np.concatenate(generated)
            kp_gen = _keypoints(kp_detector, generated, device, batch_size)
    finally:
        kp_detector.train(modes[0]), generator.train(modes[1])
    as_np = lambda kp: kp["value"].float().cpu().numpy()  # noqa: E731
    return {"generated": generated, "kp_source": as_np(kp_src), "kp_driving": as_np(kp_drv),
            "kp_target": as_np(kp_tgt), "kp_generated": as_np(kp_gen)}


def _keypoints(kp_detector, crops: np.ndarray, device, batch_size: int) -> dict[str, torch.Tensor]:
    parts = [kp_detector(to_tensor(crops[i:i + batch_size], device)) for i in range(0, len(crops), batch_size)]
    return {k: torch.cat([p[k].float() for p in parts]) for k in ("value", "jacobian") if k in parts[0]}


def relative_motion(kp_source: dict, kp_driving: dict, kp_initial: dict) -> dict[str, torch.Tensor]:
    """FOMM's relative transfer: the source keypoints moved by the driver's motion since its first frame."""
    out = {"value": kp_source["value"] + (kp_driving["value"] - kp_initial["value"])}
    if "jacobian" in kp_driving and "jacobian" in kp_source:
        change = kp_driving["jacobian"] @ torch.inverse(kp_initial["jacobian"])
        out["jacobian"] = change @ kp_source["jacobian"]
    return out


# ---------------------------------------------------------------------- files in, video out

def animate(checkpoint_dir: str | os.PathLike | AnimationModel, source_image, driving_video: str | os.PathLike,
            out_path: str | os.PathLike, relative: bool = True, output_size: int | None = 256,
            device: str = "auto", size: int | None = None, crf: int = 18, batch_size: int = 32,
            composite: bool = True, blend: str = "feather", colour: str = "reinhard", blur: float = 0.05) -> dict:
    """Write an H.264 video of the source face driven by `driving_video`; returns the recipe.

    source_image: an image path or an RGB uint8 array. composite: the full source photo with the animated
    face blended in (see the module docstring); else the generated crops, upscaled to output_size (bicubic;
    None keeps the model resolution). size: when given, the model's crop size must equal it. Errors are one
    line naming the file.
    """
    check_choice("blend", blend, BLENDS)
    check_choice("colour", colour, COLOURS)
    if isinstance(checkpoint_dir, AnimationModel):
        model = checkpoint_dir
        if size is not None and int(size) != model.size:
            raise ValueError(f"{model.path}: the model works on {model.size}px crops, not {int(size)}px")
    else:
        model = load_animation(checkpoint_dir, device=device, size=size)
    detector = get_face_detector(FaceDetectorConfig(device=device))
    source_name = str(source_image) if isinstance(source_image, (str, os.PathLike)) else "source image (array)"
    image = load_image(source_image) if isinstance(source_image, (str, os.PathLike)) else np.asarray(source_image)
    faces = detector.detect([image])[0]
    if not faces:
        raise ValueError(f"{source_name}: no face found in the source image")
    source_points = np.asarray(faces[0].landmarks, np.float64)
    source_crop, _ = align_face(image, source_points, size=model.size, margin=model.config.margin)

    frames = iter_frames(driving_video)
    fps = float(frames.info.fps or 25.0)
    crops: list[np.ndarray | None] = []
    chunk: list[np.ndarray] = []
    with frames:
        for frame in frames:
            chunk.append(frame.image)
            if len(chunk) == DETECT_CHUNK:
                crops += _aligned_crops(detector, chunk, model)
                chunk = []
        if chunk:
            crops += _aligned_crops(detector, chunk, model)
    missing = sum(c is None for c in crops)
    if not crops or missing == len(crops):
        raise ValueError(f"{driving_video}: no face found in any frame of the driving video")
    driving = np.stack(fill_gaps(crops))

    result = reenact_crops(model, source_crop, driving, relative=relative, batch_size=batch_size)
    recipe = {"generator": FAMILY, "checkpoint": str(model.path), "checkpoint_sha256": model.sha256,
              "source": source_name, "driving": str(driving_video), "output": str(out_path), "relative": relative,
              "frames": len(crops), "frames_without_face": int(missing), "fps": fps, "model_size": model.size,
              "margin": model.config.margin, "codec": "h264", "pixel_format": "yuv420p", "crf": crf}
    if composite:
        _write_talking_photo(out_path, fps, crf, image, source_points, result.generated, model, blend, colour, blur)
        return {**recipe, "output_kind": "full frame (source photo with the animated face blended in)",
                "output_size": [int(image.shape[1]), int(image.shape[0])], "colour_transfer": colour,
                "blending": blend, "mask": {"type": "source face hull", "scale": HULL_SCALE, "blur": blur}}
    side = int(output_size or model.size)
    with VideoWriter(out_path, fps, crf=crf) as writer:  # frame by frame: upscaled frames are not all kept
        for crop in result.generated:
            writer.write(crop if side == model.size else cv2.resize(crop, (side, side), interpolation=cv2.INTER_CUBIC))
    return {**recipe, "output_kind": "generated crops", "output_size": side,
            "upscale": "bicubic" if side != model.size else None}


def _write_talking_photo(out_path, fps: float, crf: int, image: np.ndarray, points: np.ndarray,
                         generated: np.ndarray, model: AnimationModel, blend: str, colour: str, blur: float) -> None:
    """The source photo with each generated crop blended back in, DETECT_CHUNK frames at a time."""
    crop = CropSpec(model.size, model.config.margin)
    _, matrix = align_face(image, points, size=crop.size, margin=crop.margin)
    in_crop = points @ matrix[:, :2].T + matrix[:, 2]
    hull = fill_polygon((crop.size, crop.size), face_polygon(in_crop, "face", HULL_SCALE))
    with VideoWriter(out_path, fps, crf=crf) as writer:
        for start in range(0, len(generated), DETECT_CHUNK):
            part = generated[start:start + DETECT_CHUNK]

            def draw(_crops: np.ndarray, part=part) -> tuple[np.ndarray, np.ndarray]:
                return part.astype(np.float32) / 255.0, np.repeat(hull[None], len(part), axis=0)

            for frame in composite_frames([image] * len(part), [points] * len(part), draw, crop, blend=blend,
                                          colour=colour, erode=0.0, blur=blur):
                writer.write(frame)


def _aligned_crops(detector, frames: Sequence[np.ndarray], model: AnimationModel) -> list[np.ndarray | None]:
    """The most confident face of each frame, aligned like the training crops; None where there is none."""
    out: list[np.ndarray | None] = []
    for frame, faces in zip(frames, detector.detect(list(frames))):
        if not faces:
            out.append(None)
            continue
        crop, _ = align_face(frame, faces[0].landmarks, size=model.size, margin=model.config.margin)
        out.append(crop)
    return out


def fill_gaps(crops: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """Replace missing crops by the nearest earlier one (leading gaps by the first found): the motion
    holds still through a missed detection instead of jumping to a default pose."""
    first = next(c for c in crops if c is not None)
    filled, last = [], first
    for crop in crops:
        last = crop if crop is not None else last
        filled.append(last)
    return filled

