"""What a detector learns from: batch sources for DetectorTask, and fixed evaluation samples.

A detector trained on one manipulation learns that manipulation's fingerprint; self-blended images
(generators.blending) teach the blend boundary every face swap leaves, from real faces alone. Both batch
sources here pair every real crop with a fake *of the same face or the same video*, so that within a
batch the person, light, camera noise and background say nothing about the label:

- CropSetBatches (`forensics train detector`, benchmarks): the cached crops of one split, each real
  crop as itself and as its self-blended copy, plus the dataset's own fakes at the rate they exist;
- PairedFakeBatches (the co-evolution fine-tune): reals of the fit portion, each paired with a fake
  drawn from self-blends of that very crop, a replay buffer of earlier rounds' fakes, or this round's new
  fakes made in the same video.

A batch source yields lists of Samples per epoch, reproducibly from (seed, epoch, rank); the task turns
them into tensors. Evaluation samples draw their pseudo-fakes from a seed tied to the crop, so the same
crop always gets the same fake and scores are comparable across epochs and runs.
"""
from __future__ import annotations

import hashlib
from typing import Iterator, Protocol, Sequence, Sized

import cv2
import numpy as np

from forensics.data.crops import FAKE, REAL, CropRef, CropSet, Sample
from generators.blending import self_blend


class BatchSource(Protocol):
    """One epoch of training batches for one rank (a sized iterable of Sample lists, half real, half fake)."""

    def epoch(self, epoch: int, rank: int, world_size: int) -> "Sized | Sequence[list[Sample]]": ...


# ---------------------------------------------------------------------- pseudo-fakes and evaluation samples

def pseudo_fake(crops: CropSet, ref: CropRef, rng: np.random.Generator) -> Sample:
    """The self-blended copy of one cached crop (grouped as its video + '#sbi')."""
    fake, _, _ = self_blend(crops.image(ref), crops.landmarks(ref), rng)
    return Sample(fake, FAKE, ref.video + "#sbi", int(ref.face["frame"]), "sbi")


def evaluation_samples(crops: CropSet, seed: int = 0, pseudo_fakes: bool = True) -> list[Sample]:
    """Every crop as itself, plus (optionally) a self-blended fake of every real crop, seeded per crop."""
    samples = [crops.real_sample(ref) for ref in crops.refs]
    if pseudo_fakes:
        for ref in crops.reals:
            samples.append(pseudo_fake(crops, ref, np.random.default_rng(_crop_seed(ref, seed))))
    return samples


# ---------------------------------------------------------------------- cached crops of a dataset

class CropSetBatches:
    """Balanced batches over one split of the crop cache (see the module docstring).

    Each real crop appears once per epoch; with `sbi` its pseudo-fake appears too, so the model sees the
    same face both ways and can only tell them apart by the blend. Dataset fakes are mixed in at the rate
    they exist. Every rank shuffles with the shared seed and takes its own slice, so the ranks see disjoint
    crops; a per-rank rng drives the pseudo-fakes and augmentation.
    """

    def __init__(self, crops: CropSet, batch_size: int, seed: int, augment: bool = True, sbi: bool = True):
        if not crops.reals:
            raise ValueError("detector training: the train split has no real face crops")
        self.crops, self.batch_size, self.seed, self.augment, self.sbi = crops, batch_size, seed, augment, sbi

    def epoch(self, epoch: int, rank: int, world_size: int) -> list[list[Sample]]:
        return list(self._batches(epoch, rank, world_size))

    def _batches(self, epoch: int, rank: int, world_size: int) -> Iterator[list[Sample]]:
        crops = self.crops
        rng = np.random.default_rng([self.seed, epoch, rank])
        order_rng = np.random.default_rng(self.seed * 100_003 + epoch)
        reals = [crops.reals[i] for i in order_rng.permutation(len(crops.reals))]
        fakes = [crops.fakes[i] for i in order_rng.permutation(len(crops.fakes))] if crops.fakes else []
        reals = reals[rank::world_size]
        fakes = fakes[rank::world_size]
        per_batch = max(1, self.batch_size // 2)
        fake_share = len(fakes) / max(1, len(fakes) + (len(reals) if self.sbi else 0))
        fake_iter = iter(fakes)
        for start in range(0, len(reals) - per_batch + 1, per_batch):
            batch: list[Sample] = []
            for ref in reals[start:start + per_batch]:
                batch.append(crops.real_sample(ref))
                dataset_fake = next(fake_iter, None) if fakes and rng.random() < fake_share else None
                if dataset_fake is not None:
                    batch.append(crops.real_sample(dataset_fake))
                elif self.sbi:
                    batch.append(pseudo_fake(crops, ref, rng))
            if self.augment:
                batch = [augment_sample(s, rng) for s in batch]
            yield batch


# ---------------------------------------------------------------------- reals paired with given fakes

class PairedFakeBatches:
    """Reals (uint8 crops with their 5-point landmarks) against fakes drawn per real from three pools.

    sbi_fraction / replay_fraction: shares of the fakes that are self-blends of the paired real and
    draws from `replay`; the rest come from `new_fakes`, preferably one made in the same video as the real
    (real_scenes / new_scenes name each crop's video). With no replay and no new fakes, all are self-blends.
    """

    def __init__(self, reals: np.ndarray, landmarks: np.ndarray, new_fakes: np.ndarray, replay: np.ndarray,
                 batch_size: int, sbi_fraction: float, replay_fraction: float, seed: int = 0, augment: bool = True,
                 real_scenes: np.ndarray | None = None, new_scenes: np.ndarray | None = None):
        if len(reals) == 0:
            raise ValueError("detector training: no real crops to learn from")
        self.reals, self.landmarks = reals, landmarks
        self.new_fakes, self.replay = new_fakes, replay
        self.same_scene = same_scene_pools(real_scenes, new_scenes, len(reals), len(new_fakes))
        self.batch_size, self.seed, self.augment = batch_size, seed, augment
        self.sbi_fraction = float(sbi_fraction)
        self.replay_fraction = float(replay_fraction) if len(replay) else 0.0
        self.new_fraction = max(0.0, 1.0 - self.sbi_fraction - self.replay_fraction) if len(new_fakes) else 0.0
        if self.sbi_fraction + self.replay_fraction + self.new_fraction <= 0:
            self.sbi_fraction = 1.0        # nothing else to learn from: pseudo-fakes only

    def epoch(self, epoch: int, rank: int, world_size: int) -> "_PairedEpoch":
        return _PairedEpoch(self, epoch, rank, world_size)

    def fake(self, kind: str, row: int, rng: np.random.Generator) -> np.ndarray:
        if kind == "sbi":
            return self_blend(self.reals[row], self.landmarks[row], rng)[0]
        if kind == "replay":
            return self.replay[int(rng.integers(len(self.replay)))]
        pool = self.same_scene[row] if self.same_scene is not None else None
        if pool is None or len(pool) == 0:
            return self.new_fakes[int(rng.integers(len(self.new_fakes)))]
        return self.new_fakes[int(pool[int(rng.integers(len(pool)))])]


class _PairedEpoch:
    """One epoch of PairedFakeBatches, drawn from (seed, epoch, rank); sized so the loop can show progress."""

    def __init__(self, source: PairedFakeBatches, epoch: int, rank: int, world_size: int):
        self.source = source
        self.rng = np.random.default_rng([source.seed, epoch, rank, 0xC0E])
        order = np.random.default_rng([source.seed, epoch]).permutation(len(source.reals))
        self.order = order[rank::world_size]
        self.half = max(1, source.batch_size // 2)
        self.count = max(1, len(source.reals) // (self.half * world_size))

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[list[Sample]]:
        source, rng = self.source, self.rng
        kinds = [(k, w) for k, w in (("sbi", source.sbi_fraction), ("replay", source.replay_fraction),
                                     ("new", source.new_fraction)) if w > 0]
        weights = np.array([w for _, w in kinds]) / sum(w for _, w in kinds)
        for b in range(self.count):
            rows = self.order[b * self.half:(b + 1) * self.half]
            if len(rows) < self.half:
                rows = rng.choice(len(source.reals), self.half, replace=True)
            samples = [Sample(source.reals[r], REAL, "real", int(r), "real") for r in rows]
            for r in rows:
                kind = kinds[int(rng.choice(len(kinds), p=weights))][0]
                samples.append(Sample(source.fake(kind, int(r), rng), FAKE, kind, int(r), kind))
            if source.augment:
                samples = [augment_sample(s, rng) for s in samples]
            yield samples


def same_scene_pools(real_scenes, new_scenes, n_reals: int, n_new: int) -> list[np.ndarray] | None:
    """Per real row, the new fakes made in the same video (empty: none was, any new fake is drawn)."""
    if real_scenes is None or new_scenes is None:
        return None
    real_scenes, new_scenes = np.asarray(real_scenes), np.asarray(new_scenes)
    if len(real_scenes) != n_reals or len(new_scenes) != n_new:
        raise ValueError(f"detector training: scene labels do not match the crops ({len(real_scenes)} for "
                         f"{n_reals} reals, {len(new_scenes)} for {n_new} new fakes)")
    by_scene = {int(v): np.flatnonzero(new_scenes == v) for v in np.unique(new_scenes)}
    empty = np.zeros(0, np.int64)
    return [by_scene.get(int(v), empty) for v in real_scenes]


# ---------------------------------------------------------------------- augmentation

def augment_sample(sample: Sample, rng: np.random.Generator) -> Sample:
    """Mild, label-preserving changes: mirror, brightness/contrast, and the compression and rescaling
    that real uploads go through (so the detector does not key on pristine pixels)."""
    image = sample.image
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.3:
        gain, bias = rng.uniform(0.85, 1.15), rng.uniform(-12, 12)
        image = np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        h, w = image.shape[:2]
        scale = rng.uniform(0.5, 0.9)
        small = cv2.resize(image, (max(8, int(w * scale)), max(8, int(h * scale))), interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        image = jpeg_roundtrip(image, int(rng.integers(60, 96)))
    return Sample(np.ascontiguousarray(image), sample.label, sample.video, sample.frame, sample.method)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return image
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _crop_seed(ref: CropRef, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}:{ref.entry.source}:{ref.index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")
