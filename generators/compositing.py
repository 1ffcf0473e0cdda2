"""Putting a generated face back into a frame, the way every fake video here is made (the product path).

Per frame: five points (MTCNN on keyframes, interpolated in between) -> align at the generator's crop ->
the family draws a face and a mask in crop space -> colour-match the face to the target crop (Reinhard: Lab
mean and lightness contrast inside the mask, on skin) -> warp face and mask back with the inverse of the
alignment -> feathered alpha blend (eroded, Gaussian-blurred mask) or Poisson (cv2.seamlessClone) -> H.264
at the original rate. `rewrite_video` runs that loop for any `draw` function, so a family only says how it
draws a face; `feather_alpha_tensor` is the differentiable twin of the hard mask for evasion fine-tunes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from forensics.faces import CropSpec, align_face, template_in_crop
from forensics.media import VideoWriter, iter_frames, probe
from generators.blending.masks import face_polygon, fill_polygon

BLENDS = ("feather", "poisson")
COLOURS = ("reinhard", "none")
BORDER_PX = 2          # crop pixels always outside the mask: nothing of the crop's edge reaches the frame

# crops uint8 [N, S, S, 3] -> (faces float [N, S, S, 3] in [0, 1], soft masks float [N, S, S])
DrawFaces = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def rewrite_video(target_video: str | Path, out_path: str | Path, draw: DrawFaces, crop: CropSpec, detector,
                  blend: str = "feather", colour: str = "reinhard", erode: float = 0.0, blur: float = 0.05,
                  every: int = 1, crf: int = 18, batch_size: int = 16,
                  masks: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None) -> dict:
    """Replace the most confident face of every frame of target_video by `draw`'s face; write H.264.

    masks(soft_mask, points5, matrix) may replace the drawn mask (e.g. a landmark hull). Frames where no face
    is found are copied unchanged (and counted); a video with no face at all is an error. Returns the
    recipe part every such fake shares (crop, mask, colour, blending, codec, frame counts).
    """
    check_choice("blend", blend, BLENDS)
    check_choice("colour", colour, COLOURS)
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    target_video, out_path = Path(target_video), Path(out_path)
    info = probe(target_video)
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
            results = iter(composite_frames([f for f, _ in faces], [lm for _, lm in faces], draw, crop, blend=blend,
                                            colour=colour, erode=erode, blur=blur, masks=masks)) if faces else iter(())
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
    size = crop.size
    return {"target": str(target_video), "output": str(out_path), "crop": crop.to_dict(),
            "mask": {"erode": erode, "erode_px": erode_px(erode, size), "blur": blur,
                     "blur_px": round(blur * size, 3), "space": "aligned crop"},
            "colour_transfer": colour, "blending": blend, "codec": "h264", "pixel_format": "yuv420p", "crf": crf,
            "fps": fps, "frames": total, "frames_swapped": swapped, "frames_without_face": without_face,
            "detect_every": every, "complete": frames.complete, "warning": frames.warning}


def composite_frames(frames: Sequence[np.ndarray], points5: Sequence[np.ndarray], draw: DrawFaces, crop: CropSpec,
                     blend: str = "feather", colour: str = "reinhard", erode: float = 0.0, blur: float = 0.05,
                     masks=None) -> list[np.ndarray]:
    """Copies of RGB frames with `draw`'s face blended in, given each frame's five points (one face each)."""
    crops, matrices = zip(*(align_face(f, lm, size=crop.size, margin=crop.margin) for f, lm in zip(frames, points5)))
    rgb, soft_masks = draw(np.stack(crops))
    skin = skin_region(crop.size, crop.margin)
    out = []
    for frame, face_crop, matrix, face, soft, lm in zip(frames, crops, matrices, rgb, soft_masks, points5):
        if masks is not None:
            soft = masks(soft, lm, matrix)
        alpha = feather_mask(soft, erode, blur)
        if colour == "reinhard":
            face = reinhard_transfer(face, face_crop.astype(np.float32) / 255.0, alpha, skin)
        out.append(paste_back(frame, face, alpha, matrix, blend))
    return out


def feather_alpha_tensor(mask: torch.Tensor) -> torch.Tensor:
    """Torch twin of feather_mask(mask, 0, 0): the mask thresholded, crop border cleared (no gradient
    flows through the hard mask itself, as in conversion)."""
    alpha = (mask.detach() > 0.5).to(mask.dtype)
    alpha[..., :BORDER_PX, :] = 0
    alpha[..., -BORDER_PX:, :] = 0
    alpha[..., :, :BORDER_PX] = 0
    alpha[..., :, -BORDER_PX:] = 0
    return alpha


def keyframe_points(video: Path, detector, every: int, batch_size: int = 16) -> dict[int, np.ndarray | None]:
    """Five points (or None) of the most confident face on frames 0, every, 2*every, ... and the last frame."""
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


def feather_mask(mask: np.ndarray, erode: float, blur: float) -> np.ndarray:
    """Erode (radius erode x S) and Gaussian-blur (sigma blur x S) a soft crop mask; the crop's outer
    BORDER_PX pixels are zeroed first so the pasted face never shows the crop's square edge."""
    size = mask.shape[0]
    m = (np.asarray(mask, np.float32) > 0.5).astype(np.float32)
    m[:BORDER_PX], m[-BORDER_PX:], m[:, :BORDER_PX], m[:, -BORDER_PX:] = 0, 0, 0, 0
    radius = erode_px(erode, size)
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
    in_crop = np.asarray(points5, np.float64) @ matrix[:, :2].T + matrix[:, 2]
    return fill_polygon((size, size), face_polygon(in_crop, "face", 1.0))


def skin_region(size: int, margin: float) -> np.ndarray:
    """Bool [S, S]: the band of an aligned crop below the eyes and above the mouth, across both cheeks.

    Colour statistics are taken here because it is skin for everybody: over the whole face, a beard or
    an open mouth would count as "skin colour" and the transfer would bleach one or darken the other.
    """
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


def erode_px(erode: float, size: int) -> int:
    return int(round(max(0.0, erode) * size))


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
