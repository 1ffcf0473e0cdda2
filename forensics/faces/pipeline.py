"""Frames in, tracked and aligned face crops out: the one path from decoded pixels to what a detector sees.

The face-crop cache (training, calibration) and `forensics detect` both run FacePipeline with the same
FaceConfig, so which faces are found and how they are cut never differs between training and serving:
MTCNN on keyframes (every frame when sampling; about every 5th source frame in every-frame mode, with
faces carried in between, see keyframes.py), IoU tracks, then `aligned_crop`.

`stream` consumes frames in chunks and yields each frame's faces as soon as they are known, so memory is
bounded by the chunk however long the video; `run` is the same over a list.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

from forensics.faces.backends import FACENET
from forensics.faces.crops import CropSpec, aligned_crop
from forensics.faces.detector import Face, FaceDetector, FaceDetectorConfig, detection_size, get_face_detector
from forensics.faces.image import FaceInputError, to_rgb_uint8
from forensics.faces.keyframes import KeyframeFaces
from forensics.faces.tracking import IoUTracker, is_scene_cut, scene_signature
from forensics.media.types import Frame

# MTCNN's own floor: below this its first pyramid level is coarser than the P-Net window is useful for.
MTCNN_MIN_FACE = 20


@dataclass
class FaceConfig:
    """Which faces are found, and how they are grouped into tracks (the same for cache and detect).

    min_face_fraction: faces smaller than this fraction of the frame's short side are not looked for
        (too small to show manipulation traces; MTCNN's pyramid, its main cost, shrinks with the square of
        the smallest face it must find); never below MTCNN_MIN_FACE pixels of the copy MTCNN sees.
    max_side: frames are face-detected on a copy whose long side is at most this.
    min_prob: MTCNN faces below this probability are dropped.
    max_faces_per_frame: keep the most confident faces only (None: all).
    """
    min_face_fraction: float = 1 / 20
    max_side: int = 640
    min_prob: float = 0.9
    max_faces_per_frame: int | None = None
    iou_threshold: float = 0.3
    max_gap: int = 10
    mtcnn_batch: int = 16

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_face_fraction < 1.0:
            raise ValueError(f"FaceConfig: min_face_fraction must be in [0, 1), got {self.min_face_fraction}")
        if self.max_faces_per_frame is not None and self.max_faces_per_frame < 1:
            raise ValueError(f"FaceConfig: max_faces_per_frame must be >= 1 or None, got {self.max_faces_per_frame}")
        if self.max_side < 12 or self.mtcnn_batch < 1:
            raise ValueError(f"FaceConfig: max_side must be >= 12 and mtcnn_batch >= 1, got {self.max_side}, "
                             f"{self.mtcnn_batch}")

    def min_face(self, height: int, width: int) -> int:
        """Smallest face MTCNN looks for on a frame of this size, in the pixels of the copy it runs on."""
        short = min(detection_size(height, width, self.max_side))
        return max(MTCNN_MIN_FACE, int(round(short * self.min_face_fraction)))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class FaceCrop:
    frame: int
    t: float
    track: int
    box: np.ndarray
    prob: float
    landmarks: np.ndarray
    crop: np.ndarray        # aligned crop, RGB uint8
    detected: bool = True   # False: carried from neighbouring keyframes, not found by MTCNN on this frame


@dataclass
class FaceResult:
    crops: list[FaceCrop]
    no_face_frames: list[int]  # frame indices where nothing was found
    tracks: dict[int, dict]    # track id -> {"frames": n, "mean_prob": p, "first": i, "last": j}


class FacePipeline:
    """Detect (on keyframes), track and align every face of a stream of frames; see the module docstring."""

    def __init__(self, crop: CropSpec, config: FaceConfig | None = None, device: str = "auto",
                 detector: FaceDetector | None = None, backend: str = FACENET) -> None:
        self.crop = crop
        self.config = config or FaceConfig()
        self.device = str(device)
        self.backend = backend          # forensics.faces.backends: facenet (torch) or onnx
        self._fixed_detector = detector
        self.detect_seconds = 0.0       # time inside MTCNN, summed over every stream
        self.align_seconds = 0.0        # time tracking and cutting crops

    def detector_for(self, height: int, width: int) -> FaceDetector:
        """The shared MTCNN for frames of this size (its smallest face follows the frame's size)."""
        if self._fixed_detector is not None:
            return self._fixed_detector
        return get_face_detector(FaceDetectorConfig(device=self.device, min_face_size=self.config.min_face(
            height, width), max_side=self.config.max_side, batch_size=self.config.mtcnn_batch,
            min_prob=self.config.min_prob, backend=self.backend))

    def stream(self, frames: Iterable[Frame], detect_every: int = 1, chunk: int = 64
               ) -> Iterator[tuple[Frame, list[FaceCrop]]]:
        """(frame, its faces as FaceCrops) for every frame, in order; MTCNN on every detect_every-th frame."""
        iterator = iter(frames)
        first = next(iterator, None)
        if first is None:
            return
        height, width = first.image.shape[:2]
        keyframes = KeyframeFaces(self.detector_for(height, width).detect, detect_every=detect_every, chunk=chunk)
        tracker = IoUTracker(self.config.iou_threshold, self.config.max_gap)
        limit = self.config.max_faces_per_frame
        previous = None
        try:
            for item in keyframes.run(_chain(first, iterator)):
                started = time.perf_counter()
                signature = scene_signature(item.frame.image)
                if previous is not None and is_scene_cut(previous, signature):
                    tracker.reset()
                previous = signature
                found = item.faces[:limit] if limit else item.faces
                crops = [self._crop(item.frame, face, track, item.detected)
                         for face, track in zip(found, tracker.update(found))]
                self.align_seconds += time.perf_counter() - started
                yield item.frame, crops
        finally:
            self.detect_seconds += keyframes.seconds

    def run(self, images: Sequence[np.ndarray], indices: Sequence[int] | None = None,
            times: Sequence[float] | None = None) -> FaceResult:
        """Every face of `images` (one video's frames in order, or one image), each frame detected.

        Without `indices` frames are numbered 0..n-1; without `times`, t is the frame index (as if 1 fps),
        which keeps records JSON-safe where a real timestamp is unknown.
        """
        images = list(images)
        indices = list(range(len(images))) if indices is None else [int(i) for i in indices]
        times = [float(i) for i in indices] if times is None else [float(t) for t in times]
        if len(indices) != len(images) or len(times) != len(images):
            raise FaceInputError(f"FacePipeline.run: {len(images)} images but {len(indices)} indices and "
                                 f"{len(times)} times")
        frames = [Frame(index=i, t=t, image=to_rgb_uint8(image, f"frame {i}"))
                  for image, i, t in zip(images, indices, times)]
        crops: list[FaceCrop] = []
        no_face: list[int] = []
        for frame, found in self.stream(frames, detect_every=1, chunk=max(1, len(frames))):
            if not found:
                no_face.append(frame.index)
            crops += found
        return FaceResult(crops=crops, no_face_frames=no_face, tracks=summarise_tracks(crops))

    def _crop(self, frame: Frame, face: Face, track: int, detected: bool) -> FaceCrop:
        crop, _ = aligned_crop(frame.image, face, self.crop)
        return FaceCrop(frame=frame.index, t=frame.t, track=track, box=face.box, prob=face.prob,
                        landmarks=face.landmarks, crop=crop, detected=detected)


def _chain(first: Frame, rest: Iterator[Frame]) -> Iterator[Frame]:
    yield first
    yield from rest


def summarise_tracks(crops: Sequence[FaceCrop]) -> dict[int, dict]:
    tracks: dict[int, dict] = {}
    for crop in crops:
        entry = tracks.setdefault(crop.track, {"frames": 0, "prob_sum": 0.0, "first": crop.frame, "last": crop.frame})
        entry["frames"] += 1
        entry["prob_sum"] += crop.prob
        entry["first"] = min(entry["first"], crop.frame)
        entry["last"] = max(entry["last"], crop.frame)
    return {
        track: {"frames": e["frames"], "mean_prob": e["prob_sum"] / e["frames"], "first": e["first"], "last": e["last"]}
        for track, e in sorted(tracks.items())
    }
