"""Similarity alignment of faces onto a fixed 5-point template, and a plain square crop as a fallback.

Aligned crops put eyes, nose and mouth at the same pixels in every crop, so a detector learns blending and
texture artifacts rather than where the face happened to sit in the frame.
"""
from __future__ import annotations

import cv2
import numpy as np

from forensics.faces.image import FaceInputError, to_rgb_uint8

# ArcFace's 112x112 five-point template (insightface), normalised to the unit square. Order matches MTCNN:
# image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
CANONICAL_LANDMARKS_5 = (
    np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ],
        dtype=np.float64,
    )
    / 112.0
).astype(np.float32)
CANONICAL_LANDMARKS_5.setflags(write=False)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking `src` points to `dst` (Umeyama 1991).

    Reflections are excluded: a mirrored fit would flip the face and swap the eyes' roles.
    Returns the 2x3 matrix for cv2.warpAffine.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or len(src) < 2:
        raise FaceInputError(f"similarity_transform: need two matching (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise FaceInputError("similarity_transform: points contain NaN or infinity")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c ** 2).sum(axis=1).mean()
    if src_var < 1e-12:
        raise FaceInputError("similarity_transform: source points all coincide, no transform is defined")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    reflect = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        reflect[1, 1] = -1.0
    rotation = u @ reflect @ vt
    scale = float((singular * np.diag(reflect)).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]]).astype(np.float64)


def template_in_crop(size: int, margin: float) -> np.ndarray:
    """The 5-point template in crop pixels: the tight ArcFace layout shrunk about the crop centre so that the
    crop shows (1 + margin) times the template's extent."""
    if margin < 0:
        raise FaceInputError(f"align: margin must be >= 0, got {margin}")
    unit = (CANONICAL_LANDMARKS_5.astype(np.float64) - 0.5) / (1.0 + margin) + 0.5
    return unit * size


def align_face(image: np.ndarray, landmarks5: np.ndarray, size: int = 224, margin: float = 0.25,
               border_mode: int = cv2.BORDER_REFLECT) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face so its landmarks land on the template; returns (size x size x 3 RGB uint8 crop, 2x3
    matrix taking image pixels to crop pixels)."""
    if size < 1:
        raise FaceInputError(f"align_face: size must be >= 1, got {size}")
    image = to_rgb_uint8(image)
    landmarks5 = np.asarray(landmarks5, dtype=np.float64).reshape(-1, 2)
    if len(landmarks5) != 5:
        raise FaceInputError(f"align_face: expected 5 landmarks, got {len(landmarks5)}")
    matrix = similarity_transform(landmarks5, template_in_crop(size, margin))
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border_mode)
    return crop, matrix


def crop_box(image: np.ndarray, box: np.ndarray, size: int = 224, margin: float = 0.3,
             border_mode: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """Square crop centred on `box`, its side (1 + margin) times the box's longer side, resized to size.

    For faces whose landmarks are missing or untrustworthy; the box may extend past the frame (the border is
    filled by `border_mode`).
    """
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise FaceInputError(f"crop_box: expected a finite (4,) box x1,y1,x2,y2, got {box.tolist()}")
    width, height = box[2] - box[0], box[3] - box[1]
    if width <= 0 or height <= 0 or size < 1 or margin < 0:
        raise FaceInputError(f"crop_box: empty box {box.tolist()} or bad size/margin ({size}, {margin})")
    image = to_rgb_uint8(image)
    side = max(width, height) * (1.0 + margin)
    scale = size / side
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    matrix = np.array([[scale, 0.0, size / 2.0 - scale * cx], [0.0, scale, size / 2.0 - scale * cy]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=border_mode)
