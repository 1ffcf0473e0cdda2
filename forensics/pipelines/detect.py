"""Analyse one video or image: decode -> faces (MTCNN on keyframes, IoU tracks) -> aligned crops ->
detector logits -> per-track and per-media verdict, as one DetectRecord (the JSONL record of
docs/ARCHITECTURE.md; built in forensics.pipelines.record).

Faces and crops come from forensics.faces.FacePipeline, the same path the face-crop cache trains and
calibrates on, with the crop the model records in its checkpoint; logits from detectors.predict_logits.

Two ways to read a video. Sampled (default): N frames spread evenly over it, each one detected; cheap
and enough for a verdict. Every-k-th frame: streamed in chunks so memory stays flat on long videos, with
MTCNN on keyframes only and faces carried in between (see forensics.faces.KeyframeFaces).

Bad media never raises out of `analyse`: it becomes a record with status "error" and a one-line reason
that names the file; a partly damaged video is analysed as far as it decodes and carries a warning.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from detectors.aggregate import aggregate_scores
from detectors.checkpoint import LoadedDetector, load_detector
from detectors.predict import predict_logits
from forensics.device import resolve_device
from forensics.faces import FaceConfig, FacePipeline, auto_detect_every
from forensics.media import Frame, MediaError, iter_frames, sample_frames
from forensics.pipelines.record import OK, DetectRecord, Findings, ModelInfo, Observation, ThumbnailPool

STAGES = ("decode", "faces", "align", "classify")


@dataclass
class DetectConfig:
    """How one input is read and scored.

    frames: evenly sampled frames per video (ignored when `every` is set).
    every: analyse every k-th frame instead (1 = every frame), streamed in chunks of `chunk` frames.
    detect_every: run MTCNN on every D-th analysed frame and carry faces in between; None = automatic
        (1 when sampling, about 5 source frames apart in every-frame mode).
    faces: which faces are found and tracked (forensics.faces.FaceConfig: the settings the face-crop
        cache uses for training, so detect sees faces the way the model learned them).
    batch_size: face crops per detector forward pass.
    thumbnails: how many of the most suspicious crops to keep for a report (0 = none).
    """

    frames: int = 32
    every: int | None = None
    detect_every: int | None = None
    chunk: int = 64
    faces: FaceConfig = field(default_factory=FaceConfig)
    batch_size: int = 32
    device: str = "auto"
    thumbnails: int = 8

    def __post_init__(self) -> None:
        for name in ("frames", "chunk", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"DetectConfig: {name} must be >= 1, got {getattr(self, name)}")
        for name in ("every", "detect_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"DetectConfig: {name} must be >= 1 or None, got {value}")

    @property
    def keyframe_stride(self) -> int:
        return self.detect_every or auto_detect_every(self.every)


@dataclass
class Analysis:
    record: DetectRecord
    thumbnails: list[dict]                      # for forensics.report.write_report, most suspicious first
    timings: dict[str, float] = field(default_factory=dict)   # seconds per stage (STAGES)


class DetectPipeline:
    """One loaded detector and its face settings, reused across inputs."""

    def __init__(self, loaded: LoadedDetector, config: DetectConfig | None = None) -> None:
        self.config = config or DetectConfig()
        self.device = resolve_device(self.config.device)
        self.loaded = loaded
        self.model = loaded.model.to(self.device).eval()
        self.faces = FacePipeline(loaded.crop_spec, self.config.faces, device=str(self.device))
        self.threshold = float(loaded.threshold)
        self.model_info = ModelInfo(name=loaded.name, sha256=loaded.sha256)

    @classmethod
    def from_path(cls, model_path, config: DetectConfig | None = None) -> "DetectPipeline":
        config = config or DetectConfig()
        return cls(load_detector(model_path, device=str(resolve_device(config.device))), config)

    # -- public ------------------------------------------------------------------------------------
    def analyse(self, path: str | Path) -> Analysis:
        """Never raises for bad media: what went wrong becomes the record's one-line error."""
        started = time.perf_counter()
        findings = Findings()
        timings = dict.fromkeys(STAGES, 0.0)
        thumbnails = ThumbnailPool(self.config.thumbnails)
        try:
            self._analyse(Path(path), findings, timings, thumbnails)
        except MediaError as err:
            findings.error = str(err)
        except Exception as err:  # noqa: BLE001 - not expected; one odd input must not stop a batch
            findings.error = f"{path}: analysis failed ({type(err).__name__}: {err})"
        record = DetectRecord.build(str(path), findings, self.model_info, self.threshold, self.loaded.probability,
                                    aggregate_scores, elapsed_s=time.perf_counter() - started)
        picked = thumbnails.pick() if record.status == OK else []
        return Analysis(record=record, thumbnails=picked, timings=timings)

    # -- stages ------------------------------------------------------------------------------------
    def _analyse(self, path: Path, findings: Findings, timings: dict, thumbnails: ThumbnailPool) -> None:
        reader = FrameReader(path, frames=self.config.frames, every=self.config.every)
        findings.kind = reader.info.kind
        scorer = CropScorer(self, thumbnails)
        detect_seconds, align_seconds = self.faces.detect_seconds, self.faces.align_seconds
        analysed = 0
        for frame, crops in self.faces.stream(reader.frames(), detect_every=self.config.keyframe_stride,
                                              chunk=self.config.chunk):
            analysed += 1
            for face in crops:
                scorer.add(face.crop, Observation(frame=face.frame, t=face.t, track=face.track, box=face.box,
                                                  logit=float("nan"), detected=face.detected))
            if scorer.full:
                scorer.flush()
        scorer.flush()
        timings["faces"] = self.faces.detect_seconds - detect_seconds
        timings["align"] = self.faces.align_seconds - align_seconds
        timings["decode"] = reader.seconds
        timings["classify"] = scorer.seconds
        findings.frames_analyzed = analysed
        findings.warning = reader.warning
        findings.observations = scorer.observations


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
        logits = predict_logits(self.pipeline.model, self._crops, self.pipeline.device,
                                self.pipeline.config.batch_size)
        self.seconds += time.perf_counter() - t0
        probs = self.pipeline.loaded.probability(logits)
        for obs, logit, prob, crop in zip(self._pending, logits, probs, self._crops):
            obs.logit = float(logit)
            self.observations.append(obs)
            self.thumbnails.offer(float(prob), obs.frame, obs.t, obs.track, crop)
        self._crops, self._pending = [], []
