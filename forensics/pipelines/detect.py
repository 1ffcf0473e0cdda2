"""Analyse one video or image: decode -> faces (MTCNN on keyframes, IoU tracks) -> aligned crops ->
detector logits -> per-track and per-media verdict, as one DetectRecord (the JSONL record of
docs/ARCHITECTURE.md; built in forensics.pipelines.record).

Faces and crops come from forensics.faces.FacePipeline, the same path the face-crop cache trains and
calibrates on, with the crop the model records in its checkpoint; logits from detectors.predict_logits.

A model bundle (detectors.bundle: a frame and a clip detector) is run together: the frame detector on
every crop, the clip detector on each track's runs of consecutive faces, cut into clips of its length;
the track's verdict is the bundle's fusion of both, and the record keeps each detector's score.

Two ways to read a video. Sampled (default): N frames as N / clip_len windows of consecutive frames spread
evenly over it (so a clip detector has clips; clip_len 1 spreads single frames), each one detected; cheap
and enough for a verdict. Every-k-th frame: streamed in chunks so memory stays flat on long videos, with
MTCNN on keyframes only and faces carried in between (see forensics.faces.KeyframeFaces).

Bad media never raises out of `analyse`: it becomes a record with status "error" and a one-line reason
that names the file; a partly damaged video is analysed as far as it decodes and carries a warning.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from detectors.aggregate import aggregate_scores
from detectors.bundle import Bundle, load_bundle
from detectors.card import card_of, card_summary
from detectors.footage import trained_on
from detectors.meta import CheckpointInfo, DetectorLoadError
from detectors.runtime import AUTO, ONNX
from forensics.faces import FaceConfig, FacePipeline, auto_detect_every
from forensics.faces.backends import FACENET
from forensics.faces.backends import ONNX as ONNX_FACES
from forensics.io import sha256_file
from forensics.media import Frame, MediaError, iter_frames, sample_frames
from forensics.pipelines.record import (OK, ClipObservation, DetectRecord, Findings, MemberRecord, ModelInfo,
                                        Observation, ThumbnailPool)

STAGES = ("decode", "faces", "align", "classify")


@dataclass
class DetectConfig:
    """How one input is read and scored.

    frames: sampled frames per video (ignored when `every` is set).
    clip_len: the sampled frames come as windows of this many consecutive frames (1: spread evenly).
    every: analyse every k-th frame instead (1 = every frame), streamed in chunks of `chunk` frames.
    detect_every: run MTCNN on every D-th analysed frame and carry faces in between; None = automatic
        (1 when sampling, about 5 source frames apart in every-frame mode).
    faces: which faces are found and tracked (forensics.faces.FaceConfig: the settings the face-crop
        cache uses for training, so detect sees faces the way the model learned them).
    batch_size: face crops per detector forward pass.
    thumbnails: how many of the most suspicious crops to keep for a report (0 = none).
    runtime: what runs the networks when the model is loaded from a path (detectors.runtime): auto (onnxruntime
        on a CPU when the model and MTCNN have checked exports in the cache, else torch), torch or onnx.
    """

    frames: int = 32
    clip_len: int = 8
    every: int | None = None
    detect_every: int | None = None
    chunk: int = 64
    faces: FaceConfig = field(default_factory=FaceConfig)
    batch_size: int = 32
    device: str = "auto"
    thumbnails: int = 8
    runtime: str = AUTO

    def __post_init__(self) -> None:
        for name in ("frames", "chunk", "batch_size", "clip_len"):
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
    """One loaded detector (or model bundle) and its face settings, reused across inputs."""

    def __init__(self, model: CheckpointInfo | Bundle, config: DetectConfig | None = None) -> None:
        self.config = config or DetectConfig()
        self.bundle = model if isinstance(model, Bundle) else Bundle.single(model)
        if self.bundle.frame is None:
            raise DetectorLoadError(f"{self.bundle.path}: a clip detector alone cannot judge stills or short "
                                    "tracks; bundle it with a frame detector (forensics bundle --help)")
        for member in self.bundle.members.values():
            member.place(self.config.device)
        self.loaded = self.bundle.frame
        self.temporal = self.bundle.temporal
        self.faces = FacePipeline(self.bundle.crop_spec, self.config.faces, device=self.config.device,
                                  backend=ONNX_FACES if self.bundle.runtime == ONNX else FACENET)
        self.threshold = float(self.bundle.threshold)
        self.model_info = ModelInfo(name=self.bundle.name, sha256=self.bundle.sha256,
                                    trained_on=trained_on(self.bundle.members.values()),
                                    card="; ".join(card_summary(card_of(m.meta, m.path))
                                                   for m in self.bundle.members.values()),
                                    runtime=self.bundle.runtime)
        self.members = tuple(MemberRecord(role, m.name, m.sha256) for role, m in self.bundle.members.items()) \
            if self.bundle.fused else ()

    @classmethod
    def from_path(cls, model_path, config: DetectConfig | None = None) -> "DetectPipeline":
        config = config or DetectConfig()
        return cls(load_bundle(model_path, device=config.device, runtime=config.runtime), config)

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
        record = DetectRecord.build(str(path), findings, self.model_info, self.threshold, self.bundle.probability,
                                    aggregate_scores, elapsed_s=time.perf_counter() - started,
                                    fusion=self.bundle if self.bundle.fused else None, members=self.members)
        record = dataclasses.replace(record, sha256=input_digest(Path(path)))
        picked = thumbnails.pick() if record.status == OK else []
        return Analysis(record=record, thumbnails=picked, timings=timings)

    def failed(self, path: str | Path, reason: str) -> Analysis:
        """The error record of an input that is not analysed (e.g. it killed an earlier scan)."""
        findings = Findings()
        findings.error = f"{path}: {reason}"
        record = DetectRecord.build(str(path), findings, self.model_info, self.threshold, self.bundle.probability,
                                    aggregate_scores, elapsed_s=0.0, members=self.members)
        return Analysis(record=record, thumbnails=[], timings=dict.fromkeys(STAGES, 0.0))

    # -- stages ------------------------------------------------------------------------------------
    def _analyse(self, path: Path, findings: Findings, timings: dict, thumbnails: ThumbnailPool) -> None:
        reader = FrameReader(path, frames=self.config.frames, every=self.config.every, clip_len=self.config.clip_len)
        findings.kind = reader.info.kind
        scorer = CropScorer(self, thumbnails)
        clips = ClipScorer(self, step=self.config.every or 1) if self.temporal is not None else None
        detect_seconds, align_seconds = self.faces.detect_seconds, self.faces.align_seconds
        analysed = 0
        for frame, crops in self.faces.stream(reader.frames(), detect_every=self.config.keyframe_stride,
                                              chunk=self.config.chunk):
            analysed += 1
            for face in crops:
                observation = Observation(frame=face.frame, t=face.t, track=face.track, box=face.box,
                                          logit=float("nan"), detected=face.detected)
                scorer.add(face.crop, observation)
                if clips is not None:
                    clips.add(face.crop, observation)
            if scorer.full:
                scorer.flush()
        scorer.flush()
        if clips is not None:
            clips.finish()
            findings.clips = clips.scored
        timings["faces"] = self.faces.detect_seconds - detect_seconds
        timings["align"] = self.faces.align_seconds - align_seconds
        timings["decode"] = reader.seconds
        timings["classify"] = scorer.seconds + (clips.seconds if clips is not None else 0.0)
        findings.frames_analyzed = analysed
        findings.warning = reader.warning
        findings.observations = scorer.observations


class FrameReader:
    """Frames of one input, sampled or streamed; times the decoding and reports damage afterwards."""

    def __init__(self, path: Path, frames: int, every: int | None, clip_len: int = 1) -> None:
        self.seconds = 0.0
        t0 = time.perf_counter()
        if every is None:
            sample = sample_frames(path, n=frames, clip_len=clip_len if clip_len > 1 else None)
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
        logits = self.pipeline.loaded.logits(self._crops, self.pipeline.config.batch_size)
        self.seconds += time.perf_counter() - t0
        probs = self.pipeline.loaded.probability(logits)
        for obs, logit, prob, crop in zip(self._pending, logits, probs, self._crops):
            obs.logit = float(logit)
            self.observations.append(obs)
            self.thumbnails.offer(float(prob), obs.frame, obs.t, obs.track, crop)
        self._crops, self._pending = [], []


class ClipScorer:
    """Cuts each track's consecutive faces into clips of the clip detector's length and scores them.

    Faces of a track are consecutive when their frame numbers are `step` apart (1 when sampling windows,
    k when reading every k-th frame); a gap starts a new run. A full clip is scored as soon as it is
    complete, so memory holds at most one clip per track; at the end of a run, the faces left over are
    scored as part of a last clip that overlaps the previous one. Each face gets the clip's logit for its
    frame (the attribution the report draws), each clip one ClipObservation.
    """

    def __init__(self, pipeline: DetectPipeline, step: int) -> None:
        self.pipeline, self.step = pipeline, step
        self.length = int(pipeline.temporal.meta["detector"]["clip_len"])
        self.runs: dict[int, list[tuple[np.ndarray, Observation]]] = {}
        self.fresh: dict[int, int] = {}          # faces in the run not yet covered by a scored clip
        self.scored: list[ClipObservation] = []
        self.seconds = 0.0

    def add(self, crop: np.ndarray, observation: Observation) -> None:
        run = self.runs.setdefault(observation.track, [])
        if run and observation.frame - run[-1][1].frame != self.step:
            self._close(observation.track)
            run = self.runs.setdefault(observation.track, [])
        run.append((crop, observation))
        self.fresh[observation.track] = self.fresh.get(observation.track, 0) + 1
        if self.fresh[observation.track] == self.length:
            self._score(observation.track)

    def finish(self) -> None:
        for track in list(self.runs):
            self._close(track)

    def _close(self, track: int) -> None:
        """End of a run: faces left over join the last full-length clip; then the run is dropped."""
        if self.fresh.get(track) and len(self.runs.get(track, [])) >= self.length:
            self._score(track)
        self.runs.pop(track, None)
        self.fresh.pop(track, None)

    def _score(self, track: int) -> None:
        window = self.runs[track][-self.length:]
        t0 = time.perf_counter()
        clip_logits, frame_logits = self.pipeline.temporal.clip_logits(np.stack([c for c, _ in window])[None])
        self.seconds += time.perf_counter() - t0
        fresh = self.fresh[track]
        for (_, observation), logit in list(zip(window, frame_logits[0]))[-fresh:]:
            observation.temporal = float(logit)
        self.scored.append(ClipObservation(track=track, frames=[o.frame for _, o in window], logit=float(clip_logits[0])))
        self.runs[track] = window                # keep the last clip for an overlapping tail
        self.fresh[track] = 0


def input_digest(path: Path) -> str | None:
    """sha256 of the input's bytes (None for what is not a readable regular file)."""
    try:
        return sha256_file(path) if path.is_file() else None
    except OSError:
        return None
