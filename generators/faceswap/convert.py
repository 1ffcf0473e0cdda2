"""Conversion: put identity A's face onto every frame of a video of B, and say exactly how it was made.

Per frame: MTCNN five points -> similarity-align at the model's size and margin -> encode, decode with
the source identity's decoder -> colour-match the generated face to the target crop (Reinhard: Lab mean
and std inside the mask) -> warp face and mask back with the inverse of the alignment -> feathered alpha
blend (eroded, Gaussian-blurred mask) or Poisson (cv2.seamlessClone) -> H.264 at the original rate.

Two passes over the video: the first only detects (on every `every`-th frame and the last one), so a
video without any face fails before anything is written, and the five points of the frames in between
are interpolated from their neighbouring keyframes rather than held (held points make the face jump).
Every output comes with its recipe (generator, checkpoint hash, mask, blending, colour, codec), because
detectors and benchmarks are sliced by artifact.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from generators.faceswap.checkpoint import LoadedFaceswap, load_faceswap

BLENDS = ("feather", "poisson")
COLOURS = ("reinhard", "none")
MASKS = ("learned", "hull")
BORDER_PX = 2          # crop pixels always outside the mask: nothing of the crop's edge reaches the frame


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
    from forensics.media import VideoWriter, iter_frames, probe

    _check_choice("blend", blend, BLENDS)
    _check_choice("colour", colour, COLOURS)
    _check_choice("mask", mask, MASKS)
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"swap_video: every must be a positive integer, got {every!r}")
    loaded = checkpoint_dir if isinstance(checkpoint_dir, LoadedFaceswap) else load_faceswap(checkpoint_dir, device)
    _check_source(loaded, source)
    target_video, out_path = Path(target_video), Path(out_path)
    info = probe(target_video)
    if detector is None:
        from forensics.faces import DetectorConfig, get_detector

        detector = get_detector(DetectorConfig(device=device))
    points = keyframe_points(target_video, detector, every, batch_size)
    if not any(p is not None for p in points.values()):
        raise ValueError(f"{target_video}: no face found in any frame; nothing to swap")
    fps = info.fps or 25.0
    swapped = without_face = total = 0
    with VideoWriter(out_path, fps, crf=crf) as writer:
        pending: list[tuple[np.ndarray, np.ndarray | None]] = []

        def flush() -> None:
            nonlocal swapped
            faces = [(frame, lm) for frame, lm in pending if lm is not None]
            results = iter(swap_frames(loaded, [f for f, _ in faces], [lm for _, lm in faces], source, blend=blend,
                                       colour=colour, mask=mask, erode=erode, blur=blur)) if faces else iter(())
            for frame, lm in pending:
                writer.write(next(results) if lm is not None else frame)
            swapped += len(faces)
            pending.clear()

        frames = iter_frames(target_video)
        for frame in frames:
            total += 1
            lm = interpolate_points(points, frame.index, every)
            without_face += lm is None
            pending.append((frame.image, lm))
            if len(pending) >= batch_size:
                flush()
        flush()
    size = loaded.size
    return {"generator": "faceswap", "checkpoint": str(loaded.path), "checkpoint_sha256": loaded.sha256,
            "source": source, "source_identity": (loaded.meta.get("identities") or {}).get(source),
            "target": str(target_video), "output": str(out_path),
            "crop": {"size": size, "margin": loaded.margin},
            "mask": {"type": mask, "erode": erode, "erode_px": _erode_px(erode, size), "blur": blur,
                     "blur_px": round(blur * size, 3), "space": "aligned crop"},
            "colour_transfer": colour, "blending": blend, "codec": "h264", "pixel_format": "yuv420p", "crf": crf,
            "fps": fps, "frames": total, "frames_swapped": swapped, "frames_without_face": without_face,
            "detect_every": every, "complete": frames.complete, "warning": frames.warning}


def keyframe_points(video: Path, detector, every: int, batch_size: int = 16) -> dict[int, np.ndarray | None]:
    """Five points (or None) of the most confident face on frames 0, every, 2*every, ... and the last frame."""
    from forensics.media import iter_frames

    points: dict[int, np.ndarray | None] = {}
    batch: list[tuple[int, np.ndarray]] = []
    last = None

    def detect() -> None:
        found = detector.detect([image for _, image in batch])
        for (index, _), faces in zip(batch, found):
            points[index] = np.asarray(faces[0].landmarks, np.float64) if faces else None
        batch.clear()

    for frame in iter_frames(video):
        last = frame
        if frame.index % every == 0:
            batch.append((frame.index, frame.image))
            if len(batch) >= batch_size:
                detect()
    if last is not None and last.index % every != 0:
        batch.append((last.index, last.image))
    if batch:
        detect()
    return points


def interpolate_points(points: dict[int, np.ndarray | None], index: int, every: int) -> np.ndarray | None:
    """The frame's own detection if it is a keyframe, else linear between the keyframes around it (None
    unless both have a face: a face that appears or vanishes in between is not invented)."""
    if index in points:
        return points[index]
    before = (index // every) * every
    after = before + every if before + every in points else max(points, default=-1)
    a, b = points.get(before), points.get(after) if after > index else None
    if a is None or b is None:
        return None
    w = (index - before) / float(after - before)
    return (1.0 - w) * a + w * b


def swap_frames(loaded: LoadedFaceswap, frames: Sequence[np.ndarray], points5: Sequence[np.ndarray], source: str,
                blend: str = "feather", colour: str = "reinhard", mask: str = "learned", erode: float = 0.0,
                blur: float = 0.05) -> list[np.ndarray]:
    """Swapped copies of RGB frames, given each frame's five points (one face per frame)."""
    from forensics.faces import align_face

    crops, matrices = zip(*(align_face(f, lm, size=loaded.size, margin=loaded.margin) for f, lm in zip(frames, points5)))
    rgb, masks = generate(loaded, np.stack(crops), source)
    skin = skin_region(loaded.size, loaded.margin)
    out = []
    for frame, crop, matrix, face, soft, lm in zip(frames, crops, matrices, rgb, masks, points5):
        if mask == "hull":
            soft = hull_mask_from_five(lm, matrix, loaded.size)
        alpha = feather_mask(soft, erode, blur)
        if colour == "reinhard":
            face = reinhard_transfer(face, crop.astype(np.float32) / 255.0, alpha, skin)
        out.append(paste_back(frame, face, alpha, matrix, blend))
    return out


def swap_crops(model: LoadedFaceswap | torch.nn.Module, crops: np.ndarray, source: str, batch_size: int = 64,
               composite: bool = False, colour: str = "none") -> np.ndarray:
    """Swap aligned uint8 crops [N, S, S, 3] (e.g. FaceSet.images) to `source`: uint8 [N, S, S, 3].

    Raw decoder output by default (what identity probes should judge); composite=True pastes it into the
    input crop through the learned mask (optionally colour-matched), as conversion does within a frame.
    """
    _check_choice("colour", colour, COLOURS)
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
    from forensics.device import autocast

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


def feather_mask(mask: np.ndarray, erode: float, blur: float) -> np.ndarray:
    """Erode (radius erode x S) and Gaussian-blur (sigma blur x S) a soft crop mask; the crop's outer
    BORDER_PX pixels are zeroed first so the pasted face never shows the crop's square edge."""
    size = mask.shape[0]
    m = (np.asarray(mask, np.float32) > 0.5).astype(np.float32)
    m[:BORDER_PX], m[-BORDER_PX:], m[:, :BORDER_PX], m[:, -BORDER_PX:] = 0, 0, 0, 0
    radius = _erode_px(erode, size)
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        eroded = cv2.erode(m, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        m = eroded if eroded.max() > 0 else m
    if blur > 0:
        m = cv2.GaussianBlur(m, (0, 0), sigmaX=blur * size, borderType=cv2.BORDER_CONSTANT)
        m[:BORDER_PX // 2 + 1], m[-(BORDER_PX // 2 + 1):] = 0, 0
        m[:, :BORDER_PX // 2 + 1], m[:, -(BORDER_PX // 2 + 1):] = 0, 0
    return np.clip(m, 0.0, 1.0)


def hull_mask_from_five(points5: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The face hull (blending.masks' 5-point outline model) in crop pixels, for mask="hull"."""
    from generators.blending.masks import face_polygon, fill_polygon

    in_crop = np.asarray(points5, np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return fill_polygon((size, size), face_polygon(in_crop, "face", 1.0))


def skin_region(size: int, margin: float) -> np.ndarray:
    """Bool [S, S]: the band of an aligned crop below the eyes and above the mouth, across both cheeks.

    Colour statistics are taken here because it is skin for everybody: over the whole face, a beard or
    an open mouth would count as "skin colour" and the transfer would bleach one or darken the other.
    """
    from forensics.faces import template_in_crop

    t = template_in_crop(size, margin)
    iod = t[1, 0] - t[0, 0]
    eye_y, nose_y = (t[0, 1] + t[1, 1]) / 2, t[2, 1]
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    return ((ys > eye_y + 0.2 * iod) & (ys < nose_y + 0.1 * iod)
            & (xs > t[0, 0] - 0.3 * iod) & (xs < t[1, 0] + 0.3 * iod))


def reinhard_transfer(face: np.ndarray, target: np.ndarray, mask: np.ndarray, region: np.ndarray | None = None
                      ) -> np.ndarray:
    """Give `face` the Lab mean of `target` and its lightness contrast (Reinhard et al. 2001), both measured
    inside the mask and `region` (e.g. skin_region) when that leaves enough pixels; float RGB [0, 1].

    Chroma is shifted but not rescaled, and the lightness ratio is bounded: statistics of a small skin
    patch would otherwise stretch colours far from skin (a brown beard turned blue in our swaps)."""
    inside = mask > 0.5
    if region is not None and (inside & region).sum() >= 16:
        inside = inside & region
    if inside.sum() < 16:
        inside = np.ones_like(inside)
    src = cv2.cvtColor(np.ascontiguousarray(face, np.float32), cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(np.ascontiguousarray(target, np.float32), cv2.COLOR_RGB2LAB)
    mu_s, sd_s = src[inside].mean(0), src[inside].std(0) + 1e-3
    mu_t, sd_t = ref[inside].mean(0), ref[inside].std(0) + 1e-3
    scale = np.array([np.clip(sd_t[0] / sd_s[0], 0.5, 2.0), 1.0, 1.0], np.float32)
    out = (src - mu_s) * scale + mu_t
    return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB), 0.0, 1.0)


def paste_back(frame: np.ndarray, face: np.ndarray, alpha: np.ndarray, matrix: np.ndarray, blend: str) -> np.ndarray:
    """Warp the crop-space face and mask into the frame (inverse of `matrix`, frame -> crop) and blend,
    touching only the region the crop covers."""
    h, w = frame.shape[:2]
    size = face.shape[0]
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
    inverse = cv2.invertAffineTransform(matrix)
    back = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(back.min(0)).astype(int).clip(0, [w, h])
    x1, y1 = np.ceil(back.max(0)).astype(int).clip(0, [w, h])
    out = frame.copy()
    if x1 - x0 < 2 or y1 - y0 < 2:
        return out
    roi_matrix = matrix.copy()
    roi_matrix[:, 2] = matrix[:, :2] @ np.array([x0, y0], np.float64) + matrix[:, 2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    size_roi = (int(x1 - x0), int(y1 - y0))
    face_roi = cv2.warpAffine(face.astype(np.float32), roi_matrix, size_roi, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha_roi = cv2.warpAffine(alpha.astype(np.float32), roi_matrix, size_roi, flags=flags,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    dst = out[y0:y1, x0:x1].astype(np.float32) / 255.0
    if blend == "poisson" and (alpha_roi > 0.5).sum() >= 16:
        return _poisson(out, face_roi, alpha_roi, x0, y0)
    mixed = alpha_roi[..., None] * face_roi + (1.0 - alpha_roi[..., None]) * dst
    out[y0:y1, x0:x1] = np.clip(mixed * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _poisson(frame: np.ndarray, face_roi: np.ndarray, alpha_roi: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """cv2.seamlessClone places the centre of the mask's bounding box at `center`, so that centre, in frame
    coordinates, puts the face back exactly where it was warped to."""
    binary = (alpha_roi > 0.5).astype(np.uint8) * 255
    binary[[0, -1], :], binary[:, [0, -1]] = 0, 0
    bx, by, bw, bh = cv2.boundingRect(binary)
    src = np.clip(face_roi * 255.0 + 0.5, 0, 255).astype(np.uint8)
    center = (int(x0 + bx + bw // 2), int(y0 + by + bh // 2))
    return cv2.seamlessClone(src, frame, binary, center, cv2.NORMAL_CLONE)


def _erode_px(erode: float, size: int) -> int:
    return int(round(max(0.0, erode) * size))


def _check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"swap_video: {what} must be one of {', '.join(allowed)}, got {value!r}")


def _check_source(model, source: str) -> None:
    net = model.model if isinstance(model, LoadedFaceswap) else model
    names = list(getattr(net, "decoders", {}).keys())
    if source not in names:
        where = f"{model.path}: " if isinstance(model, LoadedFaceswap) else ""
        raise ValueError(f"{where}no decoder {source!r} (this face-swap model has {', '.join(names)})")
