"""Analyse one video or image: decode -> faces (MTCNN on keyframes, IoU tracks) -> aligned crops ->
detector logits -> per-track and per-media verdict, as one JSONL record (ARCHITECTURE.md).

Two ways to read a video. Sampled (default): N frames spread evenly over it, each one detected; cheap
and enough for a verdict. Every-k-th frame: streamed in chunks so memory stays flat on long videos, with
MTCNN on keyframes only and faces carried in between (see `frames.KeyframeFaces`).

Bad media never raises out of `analyse`: it becomes a record with status "error" and a one-line reason
that names the file; a partly damaged video is analysed as far as it decodes and carries a warning.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from forensics.device import autocast, resolve_device
from forensics.faces import DetectorConfig, FaceDetector, FaceInputError, IoUTracker, align_face, crop_box, get_detector
from forensics.faces.detector import detection_size
from forensics.media import Frame, MediaError, iter_frames, sample_frames
from forensics.pipelines.frames import KeyframeFaces, auto_detect_every
from forensics.pipelines.record import (
    Observation,
    ThumbnailPool,
    base_record,
    error_record,
    fill_verdict,
)

STAGES = ("decode", "faces", "align", "classify")
# MTCNN's own floor: below this its first pyramid level is coarser than the P-Net window is useful for.
MTCNN_MIN_FACE = 20


@dataclass
class DetectConfig:
    """How one input is read and scored.

    frames: evenly sampled frames per video (ignored when `every` is set).
    every: analyse every k-th frame instead (1 = every frame), streamed in chunks of `chunk` frames.
    detect_every: run MTCNN on every D-th analysed frame and carry faces in between; None = automatic
        (1 when sampling, about 5 source frames apart in every-frame mode).
    min_face_fraction: faces smaller than this fraction of the frame's short side are not looked for.
        They are too small to show manipulation traces, and MTCNN's pyramid (its main cost) shrinks
        with the square of the smallest face it has to find.
    max_side: frames are face-detected on a copy whose long side is at most this.
    batch_size: face crops per detector forward pass.
    thumbnails: how many of the most suspicious crops to keep for a report (0 = none).
    """

    frames: int = 32
    every: int | None = None
    detect_every: int | None = None
    chunk: int = 64
    min_face_fraction: float = 1 / 20
    max_side: int = 640
    mtcnn_batch: int = 16
    batch_size: int = 32
    max_faces_per_frame: int | None = None
    iou_threshold: float = 0.3
    max_gap: int = 10
    device: str = "auto"
    thumbnails: int = 8

    def __post_init__(self) -> None:
        for name in ("frames", "chunk", "max_side", "mtcnn_batch", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"DetectConfig: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("every", "detect_every", "max_faces_per_frame"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"DetectConfig: {name} must be >= 1 or None, got {value}")
        if not 0.0 <= self.min_face_fraction < 1.0:
            raise ValueError(f"DetectConfig: min_face_fraction must be in [0, 1), got {self.min_face_fraction}")

    @property
    def keyframe_stride(self) -> int:
        return self.detect_every or auto_detect_every(self.every)


@dataclass
class Analysis:
    record: dict
    thumbnails: list[dict]                      # for forensics.report.write_report, most suspicious first
    timings: dict[str, float] = field(default_factory=dict)   # seconds per stage (STAGES)


class DetectPipeline:
    """One loaded detector and its face settings, reused across inputs."""

    def __init__(self, loaded, config: DetectConfig | None = None) -> None:
        self.config = config or DetectConfig()
        self.device = resolve_device(self.config.device)
        self.loaded = loaded
        self.model = loaded.model.to(self.device).eval()
        crop = loaded.crop
        self.crop_size = int(crop["size"])
        self.margin = float(crop["margin"])
        self.threshold = float(loaded.threshold)
        self.model_info = {"name": loaded.name, "sha256": loaded.sha256}

    @classmethod
    def from_path(cls, model_path, config: DetectConfig | None = None) -> "DetectPipeline":
        from detectors import load_detector

        config = config or DetectConfig()
        return cls(load_detector(model_path, device=str(resolve_device(config.device))), config)

    # -- public ------------------------------------------------------------------------------------
    def analyse(self, path: str | Path) -> Analysis:
        started = time.perf_counter()
        record = base_record(str(path), None, self.model_info, self.threshold)
        timings = dict.fromkeys(STAGES, 0.0)
        thumbnails = ThumbnailPool(self.config.thumbnails)
        try:
            self._analyse(Path(path), record, timings, thumbnails)
        except MediaError as err:
            error_record(record, str(err))
        except Exception as err:  # noqa: BLE001 - not expected; one odd input must not stop a batch
            error_record(record, f"{path}: analysis failed ({type(err).__name__}: {err})")
        record["elapsed_s"] = round(time.perf_counter() - started, 3)
        picked = thumbnails.pick() if record["status"] == "ok" else []
        return Analysis(record=record, thumbnails=picked, timings=timings)

    # -- stages ------------------------------------------------------------------------------------
    def _analyse(self, path: Path, record: dict, timings: dict, thumbnails: ThumbnailPool) -> None:
        reader = FrameReader(path, frames=self.config.frames, every=self.config.every)
        record["kind"] = reader.info.kind
        faces = KeyframeFaces(self.face_detector(reader.info.height, reader.info.width).detect,
                              detect_every=self.config.keyframe_stride, chunk=self.config.chunk)
        scorer = CropScorer(self, thumbnails)
        tracker = IoUTracker(self.config.iou_threshold, self.config.max_gap)
        analysed = 0
        for item in faces.run(reader.frames()):
            analysed += 1
            t0 = time.perf_counter()
            found = item.faces[: self.config.max_faces_per_frame] if self.config.max_faces_per_frame else item.faces
            for face, track in zip(found, tracker.update(found)):
                scorer.add(self._crop(item.frame.image, face),
                           Observation(frame=item.frame.index, t=item.frame.t, track=track,
                                       box=face.box, logit=float("nan"), detected=item.detected))
            timings["align"] += time.perf_counter() - t0
            if scorer.full:
                scorer.flush()
        scorer.flush()
        timings["faces"] = faces.seconds
        timings["decode"] = reader.seconds
        timings["classify"] = scorer.seconds
        record["frames_analyzed"] = analysed
        record["warning"] = reader.warning
        fill_verdict(record, scorer.observations, self.loaded.probability, _aggregate(), self.threshold)

    def face_detector(self, height: int, width: int) -> FaceDetector:
        """An MTCNN whose smallest face is `min_face_fraction` of this input's short side (in the pixels
        of the downscaled copy it runs on), never below MTCNN's useful floor."""
        short = min(detection_size(height, width, self.config.max_side))
        min_face = max(MTCNN_MIN_FACE, int(round(short * self.config.min_face_fraction)))
        return get_detector(DetectorConfig(device=str(self.device), min_face_size=min_face,
                                           max_side=self.config.max_side, batch_size=self.config.mtcnn_batch))

    def _crop(self, image: np.ndarray, face) -> np.ndarray:
        """Aligned the way the model was trained; a box crop when MTCNN's landmarks collapse."""
        try:
            return align_face(image, face.landmarks, self.crop_size, self.margin)[0]
        except FaceInputError:
            return crop_box(image, face.box, self.crop_size, self.margin)


def _aggregate():
    from detectors import aggregate_scores

    return aggregate_scores


class FrameReader:
    """Frames of one input, sampled or streamed; times the decoding and reports damage afterwards."""

    def __init__(self, path: Path, frames: int, every: int | None) -> None:
        self.seconds = 0.0
        t0 = time.perf_counter()
        if every is None:
            sample = sample_frames(path, n=frames)
            self.info, self._frames, self._source = sample.info, sample.frames, None
            self._warning = sample.warning
        else:
            self._source = iter_frames(path, every=every)
            self.info, self._frames, self._warning = self._source.info, None, None
        self.seconds += time.perf_counter() - t0

    def frames(self) -> Iterator[Frame]:
        if self._source is None:
            yield from self._frames
            return
        with self._source as source:
            while True:
                t0 = time.perf_counter()
                frame = next(source, None)
                self.seconds += time.perf_counter() - t0
                if frame is None:
                    break
                yield frame

    @property
    def warning(self) -> str | None:
        return self._source.warning if self._source is not None else self._warning


class CropScorer:
    """Collects aligned crops and runs the detector on full batches; keeps the scored observations."""

    def __init__(self, pipeline: DetectPipeline, thumbnails: ThumbnailPool) -> None:
        self.pipeline = pipeline
        self.thumbnails = thumbnails
        self.observations: list[Observation] = []
        self._crops: list[np.ndarray] = []
        self._pending: list[Observation] = []
        self.seconds = 0.0

    @property
    def full(self) -> bool:
        return len(self._crops) >= self.pipeline.config.batch_size

    def add(self, crop: np.ndarray, observation: Observation) -> None:
        self._crops.append(crop)
        self._pending.append(observation)

    def flush(self) -> None:
        if not self._crops:
            return
        t0 = time.perf_counter()
        logits = score_crops(self.pipeline.model, self._crops, self.pipeline.device)
        self.seconds += time.perf_counter() - t0
        probs = self.pipeline.loaded.probability(logits)
        for obs, logit, prob, crop in zip(self._pending, logits, probs, self._crops):
            obs.logit = float(logit)
            self.observations.append(obs)
            self.thumbnails.offer(float(prob), obs.frame, obs.t, obs.track, crop)
        self._crops, self._pending = [], []


def score_crops(model, crops: Iterable[np.ndarray], device: torch.device) -> np.ndarray:
    """Fake logits for uint8 RGB crops (float32 numpy, one per crop)."""
    batch = model.preprocess(np.stack(list(crops)))
    with torch.inference_mode(), autocast(device):
        logits = model(batch.to(device, non_blocking=True))
    return logits.float().reshape(-1).cpu().numpy()
