"""Per-frame face scores -> per-track and per-media verdicts, in the JSONL record format of ARCHITECTURE.md.

A face track's score is the detector's robust aggregate of its frame logits (one bad frame, a blink or a
motion blur, should not decide a video), calibrated to a probability. The media score is the highest track
score, because a video is manipulated if any face in it is; but only tracks seen often enough count, so a
one-keyframe false detection on a patterned background cannot decide the verdict.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

OK, NO_FACE, ERROR = "ok", "no_face", "error"
FAKE, REAL = "fake", "real"
# A track must have been found by MTCNN on at least this many frames (fewer only if no track has that
# many, e.g. a still image or a very short clip) for its score to count towards the media score.
MIN_TRACK_DETECTIONS = 3


@dataclass
class Observation:
    """One face on one frame, scored."""

    frame: int
    t: float
    track: int
    box: np.ndarray
    logit: float
    detected: bool     # False: the face was carried from neighbouring keyframes, not found by MTCNN here


@dataclass
class TrackVerdict:
    id: int
    frames: int
    detections: int
    logit: float       # aggregate of the frame logits
    score: float       # calibrated probability of the aggregate
    mean_score: float  # plain mean of the frame probabilities (the ARCHITECTURE's "mean score")


def track_verdicts(observations: Sequence[Observation], aggregate: Callable[[list[float]], float],
                   probability: Callable[[np.ndarray], np.ndarray]) -> list[TrackVerdict]:
    by_track: dict[int, list[Observation]] = {}
    for obs in observations:
        by_track.setdefault(obs.track, []).append(obs)
    verdicts = []
    for track, seen in sorted(by_track.items()):
        logits = [o.logit for o in seen]
        logit = float(aggregate(logits))
        probs = probability(np.asarray(logits, dtype=np.float32))
        verdicts.append(TrackVerdict(
            id=track, frames=len(seen), detections=sum(o.detected for o in seen), logit=logit,
            score=float(probability(np.asarray([logit], dtype=np.float32))[0]), mean_score=float(np.mean(probs))))
    return verdicts


def media_score(tracks: Sequence[TrackVerdict], min_detections: int = MIN_TRACK_DETECTIONS) -> float | None:
    """Highest score among the tracks MTCNN found often enough (see MIN_TRACK_DETECTIONS)."""
    if not tracks:
        return None
    needed = min(min_detections, max(t.detections for t in tracks))
    return max(t.score for t in tracks if t.detections >= needed)


def base_record(path: str, kind: str | None, model: dict, threshold: float) -> dict:
    """Every contract field present, null where not (yet) known."""
    return {
        "path": path, "kind": kind, "status": None, "error": None, "score": None, "label": None,
        "threshold": threshold, "frames_analyzed": 0, "faces": [], "frame_scores": [], "model": model,
        "elapsed_s": None, "warning": None,
    }


def fill_verdict(record: dict, observations: Sequence[Observation], probability, aggregate,
                 threshold: float) -> None:
    """Status, score, label, faces and frame_scores from the scored faces of one input."""
    if not observations:
        record["status"] = NO_FACE
        return
    tracks = track_verdicts(observations, aggregate, probability)
    score = media_score(tracks)
    frame_probs = probability(np.asarray([o.logit for o in observations], dtype=np.float32))
    record["status"] = OK
    record["score"] = round(float(score), 6)
    record["label"] = FAKE if score >= threshold else REAL
    record["faces"] = [{"id": t.id, "frames": t.frames, "score": round(t.score, 6),
                        "mean_score": round(t.mean_score, 6), "detections": t.detections} for t in tracks]
    record["frame_scores"] = [
        {"frame": o.frame, "t": round(float(o.t), 4), "track": o.track,
         "box": [round(float(v), 1) for v in o.box], "score": round(float(p), 6), "detected": o.detected}
        for o, p in zip(observations, frame_probs)]


def error_record(record: dict, message: str) -> dict:
    record.update(status=ERROR, error=" ".join(str(message).split()), score=None, label=None,
                  faces=[], frame_scores=[])
    return record


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
