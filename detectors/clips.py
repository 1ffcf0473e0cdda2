"""What a clip detector learns from: clips of consecutive cached crops, and temporal pseudo-fakes of them.

A clip is T crops of one face track on consecutive sampled frames (the cache samples windows of
consecutive frames for clip models: CacheConfig.clip_len). Training pairs every real clip with a temporal
pseudo-fake made from that same clip (generators.blending.temporal): the same person, light, pose and
codec on both sides, so only how the face changes over time tells them apart. Nothing but real videos
is needed.

Held-out kinds: `kinds` says which pseudo-fake kinds training draws from; evaluation can ask for any
kind, so a kind left out of training measures whether the detector learned time or one artifact.
Evaluation fakes are seeded per clip, so the same clip always gets the same fake across epochs and runs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from detectors.batches import augment_sample, global_batches
from forensics.data.cache import CacheEntry, FaceCache
from forensics.data.crops import FAKE, REAL, LabelledRefs, Sample, crop_landmarks
from generators.blending import self_blend
from generators.blending.temporal import TEMPORAL_KINDS, temporal_fake


@dataclass(frozen=True)
class ClipRef:
    """T faces of one track on consecutive sampled frames of one cached source."""
    entry: CacheEntry
    rows: tuple[int, ...]      # rows of the entry's crops array, in time order
    label: int

    @property
    def video(self) -> str:
        return self.entry.source

    @property
    def first_frame(self) -> int:
        return int(self.entry.faces[self.rows[0]]["frame"])


def track_runs(faces: Sequence[dict], max_step: int = 1) -> list[list[int]]:
    """Rows of each face track split where consecutive faces are more than `max_step` frames apart."""
    by_track: dict[int, list[int]] = {}
    for row, face in enumerate(faces):
        by_track.setdefault(int(face.get("track", 0)), []).append(row)
    runs: list[list[int]] = []
    for rows in by_track.values():
        rows = sorted(rows, key=lambda r: faces[r]["frame"])
        current = [rows[0]]
        for row in rows[1:]:
            if 0 < faces[row]["frame"] - faces[current[-1]]["frame"] <= max_step:
                current.append(row)
            else:
                runs.append(current)
                current = [row]
        runs.append(current)
    return runs


def windows(run: Sequence[int], length: int, step: int) -> list[tuple[int, ...]]:
    """Windows of `length` rows every `step` along a run; the last window is moved to end with the run, so
    no frame is left out. A run shorter than `length` gives none."""
    if len(run) < length:
        return []
    starts = list(range(0, len(run) - length + 1, step))
    if starts[-1] != len(run) - length:
        starts.append(len(run) - length)
    return [tuple(run[s:s + length]) for s in starts]


class ClipSet(LabelledRefs):
    """The clips of one split of a cache (real or fake, as the dataset says), loaded lazily through mmap.

    step: clip start every `step` frames (None: clip_len, non-overlapping). max_per_video: keep this many
    clips per video, spread evenly (evaluation). max_step: the largest frame gap that still counts as
    consecutive (1 for a cache of consecutive frames).
    """

    def __init__(self, cache: FaceCache, split: str | None, clip_len: int, step: int | None = None,
                 max_per_video: int | None = None, max_step: int = 1):
        self.cache, self.split, self.clip_len = cache, split, clip_len
        self.refs: list[ClipRef] = []
        self.short_videos = 0            # videos with no run long enough for one clip
        for entry in cache.entries(split=split):
            label = FAKE if entry.label == "fake" else REAL
            clips = [w for run in track_runs(entry.faces, max_step) for w in windows(run, clip_len, step or clip_len)]
            if max_per_video is not None and len(clips) > max_per_video:
                keep = np.linspace(0, len(clips) - 1, max_per_video).round().astype(int)
                clips = [clips[i] for i in keep]
            if not clips:
                self.short_videos += 1
            self.refs.extend(ClipRef(entry, rows, label) for rows in clips)
        self._arrays: dict[str, np.ndarray] = {}

    def clip(self, ref: ClipRef) -> np.ndarray:
        """uint8 [T, H, W, 3]."""
        return np.ascontiguousarray(self.crops_of(ref.entry)[list(ref.rows)])

    def landmarks(self, ref: ClipRef) -> np.ndarray:
        """The clip's five points per frame in crop pixels: float [T, 5, 2]."""
        size, margin = self.cache.config.crop_size, self.cache.config.margin
        return np.stack([crop_landmarks(ref.entry.faces[r], size, margin) for r in ref.rows])

    def sample(self, ref: ClipRef) -> Sample:
        method = "real" if ref.label == REAL else (ref.entry.method or "fake")
        return Sample(self.clip(ref), ref.label, ref.video, ref.first_frame, method)

    def self_blended(self, ref: ClipRef, rng: np.random.Generator) -> np.ndarray:
        """The clip with every frame self-blended on its own (the frame detector's pseudo-fake, as a clip)."""
        return np.stack([self_blend(frame, points, rng)[0] for frame, points in zip(self.clip(ref), self.landmarks(ref))])

    def pseudo_fake(self, ref: ClipRef, rng: np.random.Generator, kinds: Sequence[str]) -> Sample:
        """A temporal pseudo-fake of a real clip (grouped as its video + '#<kind>')."""
        fake, recipe = temporal_fake(self.clip(ref), self.landmarks(ref), rng, kinds=tuple(kinds))
        return Sample(fake, FAKE, f"{ref.video}#{recipe.kind}", ref.first_frame, recipe.kind)


def clip_evaluation_samples(clips: ClipSet, seed: int, kinds: Sequence[str] | None = TEMPORAL_KINDS,
                            per_kind: bool = False) -> list[Sample]:
    """Every clip as itself, plus temporal pseudo-fakes of every real clip, seeded per clip: one of a kind
    drawn from `kinds`, or (per_kind) one of every kind. kinds=None: no pseudo-fakes."""
    samples = [clips.sample(ref) for ref in clips.refs]
    for ref in clips.reals if kinds else []:
        rng = np.random.default_rng(_clip_seed(ref, seed))
        for kind in (kinds if per_kind else [None]):
            samples.append(clips.pseudo_fake(ref, rng, [kind] if kind else kinds))
    return samples


class ClipBatches:
    """Balanced batches of clips for DetectorTask: each real clip once per epoch, next to a temporal
    pseudo-fake of itself (kind drawn from `kinds`); the dataset's own fake clips replace pseudo-fakes at
    the rate they exist (all of them with pseudo=False, as a row trained on one generator's fakes).
    Ranks take disjoint slices of one shared shuffle."""

    def __init__(self, clips: ClipSet, batch_size: int, seed: int, kinds: Sequence[str] = TEMPORAL_KINDS,
                 augment: bool = True, pseudo: bool = True):
        if not clips.reals:
            raise ValueError(f"clip detector training: no real clip of {clips.clip_len} consecutive frames in "
                             f"the train split ({clips.short_videos} video(s) too short)")
        unknown = sorted(set(kinds) - set(TEMPORAL_KINDS))
        if unknown or not kinds:
            raise ValueError(f"clip detector training: unknown pseudo-fake kind(s) {unknown} "
                             f"(known: {', '.join(TEMPORAL_KINDS)})")
        if not pseudo and not clips.fakes:
            raise ValueError("clip detector training: no fake clips in the train split and pseudo-fakes are off")
        self.clips, self.batch_size, self.seed, self.kinds, self.augment = clips, batch_size, seed, tuple(kinds), augment
        self.pseudo = pseudo

    def epoch(self, epoch: int, rank: int, world_size: int) -> list[list[Sample]]:
        clips = self.clips
        order = np.random.default_rng([self.seed, epoch]).permutation(len(clips.reals))
        fakes = clips.fakes
        fake_share = len(fakes) / max(1, len(fakes) + len(clips.reals)) if self.pseudo else 1.0

        def pair(position: int) -> list[Sample]:
            rng = np.random.default_rng([self.seed, epoch, position, 0xC11])
            ref = clips.reals[int(order[position])]
            batch = [clips.sample(ref)]
            if fakes and rng.random() < fake_share:
                batch.append(clips.sample(fakes[int(rng.integers(len(fakes)))]))
            else:
                batch.append(clips.pseudo_fake(ref, rng, self.kinds))
            return [augment_clip(s, rng) for s in batch] if self.augment else batch

        return global_batches(len(order), self.batch_size, rank, world_size, pair)


def augment_clip(sample: Sample, rng: np.random.Generator) -> Sample:
    """The frame augmentations (mirror, brightness, rescale, JPEG) drawn once per clip and applied to every
    frame alike: changing them frame to frame would itself be a temporal artifact on real clips."""
    seed = int(rng.integers(2**63))
    frames = [augment_sample(Sample(frame, sample.label, sample.video, sample.frame, sample.method),
                             np.random.default_rng(seed)).image for frame in sample.image]
    return Sample(np.stack(frames), sample.label, sample.video, sample.frame, sample.method)


def _clip_seed(ref: ClipRef, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}:{ref.entry.source}:{ref.rows}".encode()).digest()
    return int.from_bytes(digest[:8], "little")

