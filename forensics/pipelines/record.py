"""The detect record: per-frame face scores -> per-track and per-media verdicts, built in one place
(`DetectRecord.build`) and written in one place (`DetectRecord.to_json`), in the contract of
docs/ARCHITECTURE.md.

A face track's score is the detector's robust aggregate of its frame logits (one bad frame, a blink or a
motion blur, should not decide a video), calibrated to a probability. The media score is the highest track
score, because a video is manipulated if any face in it is; but only tracks seen often enough count, so a
one-keyframe false detection on a patterned background cannot decide the verdict.

A model bundle (a frame and a clip detector, detectors.bundle) adds extras to the contract's fields: the
track logit is the bundle's fusion of the frame logits' aggregate and the clip logits' aggregate; `detectors`
lists each detector with its own media score, each face track carries `detectors` {role: score}, and each
frame score carries `temporal`, the clip detector's score for that frame in its clip (null when the frame
was in no clip). Records of a single detector are unchanged.

The typed record holds exactly the values its JSON carries (already rounded), so what a caller reads from
it is what a user reads in the JSONL. Records are strict JSON: a detector that returns non-finite scores
yields an error record, never a NaN.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from forensics.io import unicode_text

OK, NO_FACE, ERROR = "ok", "no_face", "error"
FAKE, REAL = "fake", "real"
# A track must have been found by MTCNN on at least this many frames (fewer only if no track has that
# many, e.g. a still image or a very short clip) for its score to count towards the media score.
MIN_TRACK_DETECTIONS = 3
# Decimal places kept in the record: scores to 1e-6, times to 0.1 ms, boxes to 0.1 px, elapsed to 1 ms.
SCORE_DIGITS, TIME_DIGITS, BOX_DIGITS, ELAPSED_DIGITS = 6, 4, 1, 3

Probability = Callable[[np.ndarray], np.ndarray]   # frame/track logits -> calibrated probabilities
Aggregate = Callable[[list[float]], float]          # a track's frame logits -> one logit
FRAME_ROLE, TEMPORAL_ROLE = "frame", "temporal"


class Fusion(Protocol):
    """How a model bundle (detectors.bundle.Bundle) turns its members' track logits into one score."""

    def fuse(self, logits: Mapping[str, float | None]) -> float: ...

    def member_probability(self, role: str, logits) -> np.ndarray: ...


@dataclass
class Observation:
    """One face on one frame, scored."""

    frame: int
    t: float
    track: int
    box: np.ndarray
    logit: float
    detected: bool     # False: the face was carried from neighbouring keyframes, not found by MTCNN here
    temporal: float | None = None   # the clip detector's logit for this frame in its clip (None: in no clip)


@dataclass
class ClipObservation:
    """One clip of consecutive faces of a track, scored by a clip detector."""

    track: int
    frames: list[int]
    logit: float


@dataclass
class TrackVerdict:
    id: int
    frames: int
    detections: int
    logit: float       # aggregate of the frame logits (fused with the clip logits in a bundle)
    score: float       # calibrated probability of the aggregate
    mean_score: float  # plain mean of the frame probabilities (the ARCHITECTURE's "mean score")
    members: dict[str, float | None] = field(default_factory=dict)   # bundle: each detector's track score


def track_verdicts(observations: Sequence[Observation], aggregate: Aggregate, probability: Probability,
                   clips: Sequence[ClipObservation] = (), fusion: Fusion | None = None) -> list[TrackVerdict]:
    """Per track: the aggregate of its frame logits; in a bundle (`fusion`), also the aggregate of its clip
    logits, each member's calibrated score, and the fused logit."""
    by_track: dict[int, list[Observation]] = {}
    for obs in observations:
        by_track.setdefault(obs.track, []).append(obs)
    frame_probability = (lambda z: fusion.member_probability(FRAME_ROLE, z)) if fusion else probability
    verdicts = []
    for track, seen in sorted(by_track.items()):
        logits = [o.logit for o in seen]
        logit = float(aggregate(logits))
        members: dict[str, float | None] = {}
        if fusion is not None:
            clip_logits = [c.logit for c in clips if c.track == track]
            by_role = {FRAME_ROLE: logit, TEMPORAL_ROLE: float(aggregate(clip_logits)) if clip_logits else None}
            members = {role: None if z is None else float(fusion.member_probability(role, np.asarray([z]))[0])
                       for role, z in by_role.items()}
            logit = float(fusion.fuse(by_role))
        probs = frame_probability(np.asarray(logits, dtype=np.float32))
        verdicts.append(TrackVerdict(
            id=track, frames=len(seen), detections=sum(o.detected for o in seen), logit=logit,
            score=float(probability(np.asarray([logit], dtype=np.float32))[0]), mean_score=float(np.mean(probs)),
            members=members))
    return verdicts


def media_score(tracks: Sequence[TrackVerdict], min_detections: int = MIN_TRACK_DETECTIONS) -> float | None:
    """Highest score among the tracks MTCNN found often enough (see MIN_TRACK_DETECTIONS)."""
    if not tracks:
        return None
    needed = min(min_detections, max(t.detections for t in tracks))
    return max(t.score for t in tracks if t.detections >= needed)


# -- the record ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelInfo:
    """Which detector produced a record: its name, the hash of its weights, what it was trained on
    ("synthetic faces only", "real faces", or None when its checkpoint does not say), its card's summary, and
    which runtime ran its networks (torch, or onnx: the checked ONNX export on onnxruntime)."""

    name: str
    sha256: str
    trained_on: str | None = None
    card: str | None = None        # the model card in one line (detectors.card.card_summary)
    runtime: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "trained_on": self.trained_on, "card": self.card,
                "runtime": self.runtime}


@dataclass(frozen=True)
class MemberRecord:
    """One detector of a bundle (`detectors`): which model, and its own score of the media."""

    role: str
    name: str
    sha256: str
    score: float | None = None

    def to_json(self) -> dict:
        return {"role": self.role, "name": self.name, "sha256": self.sha256, "score": self.score}


@dataclass(frozen=True)
class TrackRecord:
    """One face track of a record (`faces`): its calibrated score decides the media score."""

    id: int
    frames: int
    score: float
    mean_score: float
    detections: int
    members: tuple[tuple[str, float | None], ...] = ()   # bundle: (role, that detector's track score)

    def to_json(self) -> dict:
        out = {"id": self.id, "frames": self.frames, "score": self.score, "mean_score": self.mean_score,
               "detections": self.detections}
        if self.members:
            out["detectors"] = dict(self.members)
        return out


@dataclass(frozen=True)
class FrameScore:
    """One face on one frame (`frame_scores`): the evidence behind a track's score, over time."""

    frame: int
    t: float
    track: int
    box: tuple[float, float, float, float]
    score: float
    detected: bool
    temporal: float | None = None
    fused: bool = False          # a bundle's record: carry the clip detector's frame attribution

    def to_json(self) -> dict:
        out = {"frame": self.frame, "t": self.t, "track": self.track, "box": list(self.box),
               "score": self.score, "detected": self.detected}
        if self.fused:
            out["temporal"] = self.temporal
        return out


@dataclass
class Findings:
    """What reading one input produced, however far it got: the input of `DetectRecord.build`.

    `kind` is known as soon as the input opens; `frames_analyzed`, `warning` and `observations` once it has
    been read to the end; `error` (one reason, naming the file) when it could not be.
    """

    kind: str | None = None
    frames_analyzed: int = 0
    warning: str | None = None
    observations: list[Observation] = field(default_factory=list)
    clips: list[ClipObservation] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class DetectRecord:
    """One input's result, field for field and in the same order the JSON record of the contract
    (see `to_json`).

    `report` is an extra that exists only when a report was asked for (`with_report`): then the JSON
    carries the page's path, or null if it could not be written. `sha256` is the input file's digest (null
    when it could not be read), so a verdict can be tied to the exact bytes it was given. A file name that is
    not UTF-8 is written with U+FFFD in `path` (JSON text must be valid Unicode) and its bytes, hex, in the
    extra `path_bytes`.
    """

    path: str
    kind: str | None
    status: str
    error: str | None = None
    score: float | None = None
    label: str | None = None
    threshold: float
    frames_analyzed: int = 0
    faces: tuple[TrackRecord, ...] = ()
    frame_scores: tuple[FrameScore, ...] = ()
    model: ModelInfo
    elapsed_s: float | None = None
    warning: str | None = None
    report: str | None = None
    report_requested: bool = False
    detectors: tuple[MemberRecord, ...] = ()
    sha256: str | None = None        # of the input file as read (chain of custody); None if unreadable

    @classmethod
    def build(cls, path: str, findings: Findings, model: ModelInfo, threshold: float,
              probability: Probability, aggregate: Aggregate, elapsed_s: float, fusion: Fusion | None = None,
              members: Sequence[MemberRecord] = ()) -> "DetectRecord":
        """The record of one input: an error, no face, or the verdict of its scored faces. A bundle passes
        its `fusion` and `members` (role, name, sha256): the record then carries each detector's score."""
        common = dict(path=path, kind=findings.kind, model=model, threshold=threshold,
                      frames_analyzed=findings.frames_analyzed, elapsed_s=round(elapsed_s, ELAPSED_DIGITS),
                      warning=findings.warning, detectors=tuple(members))
        if findings.error is not None:
            return cls(status=ERROR, error=" ".join(str(findings.error).split()), **common)
        observations = findings.observations
        if not observations:
            return cls(status=NO_FACE, **common)
        tracks = track_verdicts(observations, aggregate, probability, findings.clips, fusion)
        score = media_score(tracks)
        frame_probability = (lambda z: fusion.member_probability(FRAME_ROLE, z)) if fusion else probability
        frame_probs = frame_probability(np.asarray([o.logit for o in observations], dtype=np.float32))
        temporal = [None if o.temporal is None else float(fusion.member_probability(TEMPORAL_ROLE, [o.temporal])[0])
                    for o in observations] if fusion else [None] * len(observations)
        numbers = [score, *(n for t in tracks for n in (t.score, t.mean_score)), *map(float, frame_probs),
                   *(p for p in temporal if p is not None),
                   *(p for t in tracks for p in t.members.values() if p is not None)]
        if not all(math.isfinite(n) for n in numbers):
            return cls(status=ERROR, error=f"{path}: analysis failed (the detector gave non-finite scores)",
                       **common)
        return cls(
            status=OK, score=round(float(score), SCORE_DIGITS), label=FAKE if score >= threshold else REAL,
            faces=tuple(TrackRecord(id=int(t.id), frames=t.frames, score=round(t.score, SCORE_DIGITS),
                                    mean_score=round(t.mean_score, SCORE_DIGITS), detections=int(t.detections),
                                    members=tuple((r, _rounded(p)) for r, p in t.members.items()))
                        for t in tracks),
            frame_scores=tuple(
                FrameScore(frame=int(o.frame), t=round(float(o.t), TIME_DIGITS), track=int(o.track),
                           box=tuple(round(float(v), BOX_DIGITS) for v in o.box),
                           score=round(float(p), SCORE_DIGITS), detected=bool(o.detected),
                           temporal=_rounded(q), fused=fusion is not None)
                for o, p, q in zip(observations, frame_probs, temporal)),
            **{**common, "detectors": member_scores(members, tracks)})

    def with_report(self, page: str | None, problem: str | None = None) -> "DetectRecord":
        """This record with its report page (None: not written); `problem` is added to the warning."""
        warning = self.warning
        if problem:
            warning = f"{warning}; {problem}" if warning else problem
        return dataclasses.replace(self, report=page, report_requested=True, warning=warning)

    def to_json(self) -> dict:
        """The record as written to stdout, the JSONL and reports: contract fields in contract order, then
        the extras."""
        out = {
            "path": unicode_text(self.path), "kind": self.kind, "status": self.status,
            "error": None if self.error is None else unicode_text(self.error),
            "score": self.score, "label": self.label, "threshold": self.threshold,
            "frames_analyzed": self.frames_analyzed, "faces": [t.to_json() for t in self.faces],
            "frame_scores": [f.to_json() for f in self.frame_scores], "model": self.model.to_json(),
            "elapsed_s": self.elapsed_s, "warning": None if self.warning is None else unicode_text(self.warning),
            "sha256": self.sha256,
        }
        if out["path"] != self.path:     # a name that is not UTF-8: its exact bytes, so --resume finds the file
            out["path_bytes"] = os.fsencode(self.path).hex()
        if self.detectors:
            out["detectors"] = [m.to_json() for m in self.detectors]
        if self.report_requested:
            out["report"] = self.report
        return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), SCORE_DIGITS)


def member_scores(members: Sequence[MemberRecord], tracks: Sequence[TrackVerdict]) -> tuple[MemberRecord, ...]:
    """Each detector's media score: its highest track score among the tracks that count (media_score's rule)."""
    if not members or not tracks:
        return tuple(members)
    needed = min(MIN_TRACK_DETECTIONS, max(t.detections for t in tracks))
    counted = [t for t in tracks if t.detections >= needed]
    out = []
    for member in members:
        scores = [t.members.get(member.role) for t in counted]
        scores = [s for s in scores if s is not None]
        out.append(dataclasses.replace(member, score=_rounded(max(scores)) if scores else None))
    return tuple(out)


@dataclass
class ThumbnailPool:
    """Keeps the most suspicious face crops seen so far (a bounded heap), then picks a spread of them.

    Keeping a few times more candidates than are shown lets the final pick skip near-duplicate
    neighbouring frames of one track in favour of other moments or other faces.
    """

    count: int = 8
    oversample: int = 4
    _heap: list = field(default_factory=list)
    _tie: itertools.count = field(default_factory=itertools.count)

    def offer(self, score: float, frame: int, t: float, track: int, crop: np.ndarray) -> None:
        if self.count <= 0:
            return
        item = (score, next(self._tie), {"frame": frame, "t": t, "track": track, "score": score, "image": crop})
        if len(self._heap) < self.count * self.oversample:
            heapq.heappush(self._heap, item)
        elif score > self._heap[0][0]:
            heapq.heapreplace(self._heap, item)

    def pick(self) -> list[dict]:
        """Most suspicious first; first pass keeps frames of one track at least `gap` apart."""
        ranked = [item[2] for item in sorted(self._heap, key=lambda it: (-it[0], it[1]))]
        if not ranked:
            return []
        frames = [c["frame"] for c in ranked]
        gap = (max(frames) - min(frames)) / (2 * self.count)
        chosen: list[dict] = []
        for candidate in ranked:
            if len(chosen) == self.count:
                break
            if all(c["track"] != candidate["track"] or abs(c["frame"] - candidate["frame"]) > gap for c in chosen):
                chosen.append(candidate)
        for candidate in ranked:  # fill up with the skipped ones if the spread rule left room
            if len(chosen) == self.count:
                break
            if not any(candidate is c for c in chosen):
                chosen.append(candidate)
        return sorted(chosen, key=lambda c: -c["score"])
