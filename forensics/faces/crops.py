"""The one face crop: how a found face becomes the square, aligned image every detector sees.

Training caches, calibration, the co-evolution game and `forensics detect` all call `aligned_crop`, so a
model is never scored on crops cut differently from the ones it learned from (train/serve skew is a
correctness bug in a forensics product, not a tuning detail). What varies between callers is only where
the five points come from: MTCNN on decoded frames (cache, detect) or the synthetic world's ground truth
(generator training data).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forensics.faces.align import align_face, crop_box
from forensics.faces.detector import Face
from forensics.faces.image import FaceInputError

DEFAULT_MARGIN = 0.25


@dataclass(frozen=True)
class CropSpec:
    """Side in pixels and context around the five-point template (a fraction of the template's extent).

    A detector records its CropSpec in its checkpoint (`crop` in config.json) and every caller cuts crops
    for it from that record, never from its own defaults.
    """
    size: int
    margin: float = DEFAULT_MARGIN

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or int(self.size) != self.size or self.size < 1:
            raise ValueError(f"crop size must be a positive integer, got {self.size!r}")
        if not 0.0 <= float(self.margin) < 10.0:
            raise ValueError(f"crop margin must be in [0, 10), got {self.margin!r}")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "margin", float(self.margin))

    @classmethod
    def from_dict(cls, data: dict, default_size: int | None = None) -> "CropSpec":
        """From a checkpoint's `crop` section ({"size", "margin", ...}; other keys are provenance)."""
        size = data.get("size", default_size)
        if size is None:
            raise ValueError("crop section names no size")
        return cls(int(size), float(data.get("margin", DEFAULT_MARGIN)))

    def to_dict(self) -> dict:
        return {"size": self.size, "margin": self.margin}


def aligned_crop(image: np.ndarray, face: Face, spec: CropSpec) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 RGB crop spec.size x spec.size, 2x3 matrix taking frame pixels to crop pixels).

    Five-point similarity alignment onto the template; a plain square crop around the box only when the
    landmarks collapse onto one point (MTCNN does that on some profile views), so the face still counts.
    """
    try:
        return align_face(image, face.landmarks, spec.size, spec.margin)
    except FaceInputError:
        return crop_box_with_matrix(image, face.box, spec)


def crop_box_with_matrix(image: np.ndarray, box: np.ndarray, spec: CropSpec) -> tuple[np.ndarray, np.ndarray]:
    """crop_box plus the matrix it used (same arithmetic as crop_box)."""
    crop = crop_box(image, box, spec.size, spec.margin)
    box = np.asarray(box, np.float64).reshape(4)
    side = max(box[2] - box[0], box[3] - box[1]) * (1.0 + spec.margin)
    scale = spec.size / side
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    matrix = np.array([[scale, 0.0, spec.size / 2.0 - scale * cx], [0.0, scale, spec.size / 2.0 - scale * cy]])
    return crop, matrix


def face_from_points(points5: np.ndarray, prob: float = 1.0) -> Face:
    """A Face for five known points (ground truth): its box is the points' bounding box."""
    points = np.asarray(points5, np.float32).reshape(5, 2)
    box = np.concatenate([points.min(0), points.max(0)]).astype(np.float32)
    return Face(box=box, prob=float(prob), landmarks=points)
