"""Batched MTCNN face detection with boxes and landmarks in original frame pixels.

MTCNN's cost grows with the pixel count of its image pyramid, and its weights are tiny: so large frames are
detected on a downscaled copy, same-size frames share one batched pass, and the model is built once per
detector (building it is the slow part, loading three state dicts from the package). The networks run on a
backend (forensics.faces.backends): facenet-pytorch on torch, or their ONNX export on onnxruntime.
"""
from __future__ import annotations

import dataclasses
import threading
import warnings
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from forensics.faces.backends import FACE_BACKENDS, FACENET
from forensics.faces.image import to_rgb_uint8

# MTCNN's P-Net sees 12x12 windows: a frame whose short side is below this has nothing to look at.
PNET_WINDOW = 12


@dataclass
class Face:
    box: np.ndarray        # (4,) float32 x1, y1, x2, y2 in original frame pixels (may extend past the frame)
    prob: float
    landmarks: np.ndarray  # (5, 2) float32: left eye, right eye, nose, mouth left, mouth right (image-left first)


@dataclass
class FaceDetectorConfig:
    device: str = "auto"
    min_face_size: int = 20
    thresholds: tuple = (0.6, 0.7, 0.7)
    factor: float = 0.709
    max_side: int = 640      # frames larger than this are detected on a downscaled copy
    batch_size: int = 16
    min_prob: float = 0.9    # faces below this are dropped
    backend: str = FACENET   # forensics.faces.backends: facenet (torch) or onnx (onnxruntime)

    def __post_init__(self) -> None:
        self.thresholds = tuple(float(t) for t in self.thresholds)
        problems = []
        if len(self.thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in self.thresholds):
            problems.append(f"thresholds must be three values in [0, 1], got {self.thresholds}")
        if not 0.0 < self.factor < 1.0:
            problems.append(f"factor must be in (0, 1), got {self.factor}")
        if self.min_face_size < 1:
            problems.append(f"min_face_size must be >= 1, got {self.min_face_size}")
        if self.max_side < PNET_WINDOW:
            problems.append(f"max_side must be >= {PNET_WINDOW}, got {self.max_side}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.backend not in FACE_BACKENDS:
            problems.append(f"backend must be one of {', '.join(FACE_BACKENDS.names())}, got {self.backend!r}")
        if problems:
            raise ValueError("FaceDetectorConfig: " + "; ".join(problems))


def detection_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(height, width) of the copy MTCNN actually sees: the frame itself unless its long side exceeds max_side."""
    longest = max(height, width)
    if longest <= max_side:
        return height, width
    scale = max_side / longest
    return max(1, round(height * scale)), max(1, round(width * scale))


def scale_face(face: Face, scale_x: float, scale_y: float) -> Face:
    """Map a face found on a resized copy back to the frame it came from (x and y scale independently,
    because rounding the copy's size makes the two ratios differ slightly)."""
    factors = np.array([scale_x, scale_y], dtype=np.float64)
    box = (face.box.astype(np.float64).reshape(2, 2) * factors).reshape(4)
    landmarks = face.landmarks.astype(np.float64) * factors
    return Face(box=box.astype(np.float32), prob=face.prob, landmarks=landmarks.astype(np.float32))


def faces_from_mtcnn(boxes, probs, points, count: int) -> list[list[Face]]:
    """Turn MTCNN.detect's output into per-image face lists.

    facenet returns object arrays whose shape depends on the data: (B,) of ragged arrays when images have
    different face counts, (B, N, 4) when they all have N, and None (with probs [None]) for an empty image.
    """
    out: list[list[Face]] = []
    for i in range(count):
        if boxes[i] is None or points[i] is None:
            out.append([])
            continue
        b = np.asarray(boxes[i], dtype=np.float32).reshape(-1, 4)
        p = np.asarray(probs[i], dtype=np.float32).reshape(-1)
        lm = np.asarray(points[i], dtype=np.float32).reshape(-1, 5, 2)
        faces = [
            Face(box=b[k].copy(), prob=float(p[k]), landmarks=lm[k].copy())
            for k in range(min(len(b), len(p), len(lm)))
            if np.isfinite(b[k]).all() and np.isfinite(lm[k]).all() and np.isfinite(p[k])
        ]
        out.append(faces)
    return out


class FaceDetector:
    """MTCNN wrapper: list of frames in, list of faces per frame out, sorted by probability."""

    def __init__(self, config: FaceDetectorConfig | None = None, **overrides) -> None:
        config = config or FaceDetectorConfig()
        self.config = dataclasses.replace(config, **overrides) if overrides else config
        self._networks = FACE_BACKENDS.get(self.config.backend)(self.config)
        self._lock = threading.Lock()  # MTCNN keeps no state, but one forward at a time bounds memory

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        images = [to_rgb_uint8(frame, f"frame {i}") for i, frame in enumerate(frames)]
        results: list[list[Face]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            size = detection_size(h, w, self.config.max_side)
            if min(size) < max(PNET_WINDOW, self.config.min_face_size):
                continue  # MTCNN's pyramid would be empty (and facenet crashes on that)
            groups.setdefault(size, []).append(i)

        for size, members in groups.items():
            for start in range(0, len(members), self.config.batch_size):
                chunk = members[start:start + self.config.batch_size]
                batch = np.stack([_resize(images[i], size) for i in chunk])
                for i, faces in zip(chunk, self._detect_batch(batch)):
                    h, w = images[i].shape[:2]
                    if (h, w) != size:
                        faces = [scale_face(f, w / size[1], h / size[0]) for f in faces]
                    kept = [f for f in faces if f.prob >= self.config.min_prob]
                    results[i] = sorted(kept, key=lambda f: f.prob, reverse=True)
        return results

    def _detect_batch(self, batch: np.ndarray) -> list[list[Face]]:
        """One MTCNN pass; if facenet trips over a degenerate candidate box, retry frame by frame so one
        odd frame costs only its own detections."""
        try:
            return self._mtcnn_detect(batch)
        except (RuntimeError, IndexError, ValueError) as exc:
            if len(batch) == 1:
                warnings.warn(f"MTCNN failed on a {batch.shape[2]}x{batch.shape[1]} frame, treated as no face: {exc}")
                return [[]]
            return [faces for k in range(len(batch)) for faces in self._detect_batch(batch[k:k + 1])]

    def _mtcnn_detect(self, batch: np.ndarray) -> list[list[Face]]:
        with self._lock:
            return self._networks(batch)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if image.shape[:2] == size:
        return image
    return cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)


_CACHE: dict[tuple, FaceDetector] = {}
_CACHE_LOCK = threading.Lock()


def get_face_detector(config: FaceDetectorConfig | None = None, **overrides) -> FaceDetector:
    """A shared FaceDetector per config: callers that each build one would pay the load every time."""
    config = config or FaceDetectorConfig()
    if overrides:
        config = dataclasses.replace(config, **overrides)
    key = dataclasses.astuple(config)
    with _CACHE_LOCK:
        detector = _CACHE.get(key)
        if detector is None:
            detector = _CACHE[key] = FaceDetector(config)
        return detector
