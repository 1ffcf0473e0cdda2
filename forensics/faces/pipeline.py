"""Frames in, aligned and tracked face crops out: detect -> keep the best faces -> track -> align.

Takes plain images with their frame indices and timestamps, so it serves decoded videos, still images and
generator output alike without depending on how they were produced.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from forensics.faces.align import align_face, crop_box
from forensics.faces.detector import DetectorConfig, Face, FaceDetector, get_detector
from forensics.faces.image import FaceInputError, to_rgb_uint8
from forensics.faces.tracking import IoUTracker


@dataclass
class FaceCrop:
    frame: int
    t: float
    track: int
    box: np.ndarray
    prob: float
    landmarks: np.ndarray
    crop: np.ndarray  # aligned crop, RGB uint8


@dataclass
class PipelineConfig:
    crop_size: int = 224
    margin: float = 0.25
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    iou_threshold: float = 0.3
    max_gap: int = 10
    max_faces_per_frame: int | None = None


@dataclass
class FaceResult:
    crops: list[FaceCrop]
    no_face_frames: list[int]  # frame indices where nothing was found
    tracks: dict[int, dict]    # track id -> {"frames": n, "mean_prob": p, "first": i, "last": j}


class FacePipeline:
    def __init__(self, config: PipelineConfig | None = None, detector: FaceDetector | None = None) -> None:
        self.config = config or PipelineConfig()
        if self.config.max_faces_per_frame is not None and self.config.max_faces_per_frame < 1:
            raise ValueError(f"PipelineConfig: max_faces_per_frame must be >= 1 or None, got {self.config.max_faces_per_frame}")
        self.detector = detector or get_detector(self.config.detector)

    def run(self, images: Sequence[np.ndarray], indices: Sequence[int] | None = None,
            times: Sequence[float] | None = None) -> FaceResult:
        """Detect, track and align every face in `images` (one video's frames in order, or one image).

        Without `indices` frames are numbered 0..n-1; without `times`, t is the frame index (as if 1 fps),
        which keeps records JSON-safe where a real timestamp is unknown.
        """
        images = list(images)
        indices = list(range(len(images))) if indices is None else [int(i) for i in indices]
        times = [float(i) for i in indices] if times is None else [float(t) for t in times]
        if len(indices) != len(images) or len(times) != len(images):
            raise FaceInputError(f"FacePipeline.run: {len(images)} images but {len(indices)} indices and {len(times)} times")
        images = [to_rgb_uint8(image, f"frame {index}") for image, index in zip(images, indices)]

        per_frame = self.detector.detect(images)
        limit = self.config.max_faces_per_frame
        if limit is not None:
            per_frame = [faces[:limit] for faces in per_frame]

        tracker = IoUTracker(self.config.iou_threshold, self.config.max_gap)
        crops: list[FaceCrop] = []
        no_face_frames: list[int] = []
        for image, index, t, faces in zip(images, indices, times, per_frame):
            if not faces:
                no_face_frames.append(index)
            for face, track in zip(faces, tracker.update(faces)):
                crops.append(FaceCrop(frame=index, t=t, track=track, box=face.box, prob=face.prob,
                                      landmarks=face.landmarks, crop=self._crop(image, face)))
        return FaceResult(crops=crops, no_face_frames=no_face_frames, tracks=summarise_tracks(crops))

    def _crop(self, image: np.ndarray, face: Face) -> np.ndarray:
        """Aligned crop; the box crop only when MTCNN's landmarks collapse (all on one point)."""
        try:
            crop, _ = align_face(image, face.landmarks, self.config.crop_size, self.config.margin)
        except FaceInputError:
            crop = crop_box(image, face.box, self.config.crop_size, self.config.margin)
        return crop


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
