"""What a detector learns from: batch sources for DetectorTask, and fixed evaluation samples.

A detector trained on one manipulation learns that manipulation's fingerprint; self-blended images
(generators.blending) teach the blend boundary every face swap leaves, from real faces alone. Both batch
sources here pair every real crop with a fake *of the same face or the same video*, so that within a
batch the person, light, camera noise and background say nothing about the label:

- CropSetBatches (`forensics train detector`, benchmarks): the cached crops of one split, each real
  crop as itself and as its self-blended copy, plus the dataset's own fakes at the rate they exist;
- VideoPairedBatches (the co-evolution's detector move): real crops, each paired with a product-path fake
  made from the same real video (any generator version so far) or with its own self-blend.

A batch source yields lists of Samples per epoch, reproducibly from (seed, epoch); under torchrun each rank
gets its share of every global batch. The task turns them into tensors. Evaluation samples draw their pseudo-fakes from a seed tied to the crop, so the same
crop always gets the same fake and scores are comparable across epochs and runs.
"""
from __future__ import annotations

import hashlib
from typing import Protocol, Sequence, Sized

import cv2
import numpy as np

from forensics.data.crops import FAKE, CropRef, CropSet, Sample
from forensics.training import distributed as D
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
    they exist. The epoch's order and every sample's draws come from (seed, epoch, position) alone, so under
    torchrun each rank builds only its share of every global batch (see global_batches).
    """

    def __init__(self, crops: CropSet, batch_size: int, seed: int, augment: bool = True, sbi: bool = True):
        if not crops.reals:
            raise ValueError("detector training: the train split has no real face crops")
        if len(crops.reals) < max(1, batch_size // 2):
            raise ValueError(f"detector training: the train split has {len(crops.reals)} real face crops, fewer "
                             f"than the {batch_size // 2} a batch of {batch_size} pairs with fakes; add videos or "
                             f"lower --batch-size")
        self.crops, self.batch_size, self.seed, self.augment, self.sbi = crops, batch_size, seed, augment, sbi

    def epoch(self, epoch: int, rank: int, world_size: int) -> list[list[Sample]]:
        crops = self.crops
        order_rng = np.random.default_rng(self.seed * 100_003 + epoch)
        reals = [crops.reals[i] for i in order_rng.permutation(len(crops.reals))]
        fakes = [crops.fakes[i] for i in order_rng.permutation(len(crops.fakes))] if crops.fakes else []
        fake_share = len(fakes) / max(1, len(fakes) + (len(reals) if self.sbi else 0))

        def pair(position: int) -> list[Sample]:
            rng = np.random.default_rng([self.seed, epoch, position])
            ref = reals[position]
            batch = [crops.real_sample(ref)]
            if fakes and rng.random() < fake_share:
                batch.append(crops.real_sample(fakes[position % len(fakes)]))
            elif self.sbi:
                batch.append(pseudo_fake(crops, ref, rng))
            return [augment_sample(s, rng) for s in batch] if self.augment else batch

        return global_batches(len(reals), self.batch_size, rank, world_size, pair)


# ---------------------------------------------------------------------- reals paired with fakes of their video

class VideoPairedBatches:
    """Real crops, each paired with a fake made from the same real video, or with its own self-blend.

    fakes_by_video: real video (CropRef.video) -> crops of fakes made from it (a face swap onto it, an
    animation of its first frame: any generator version, so older versions are replayed); a real whose video
    has no fake gets its self-blend. sbi_fraction: share of self-blends even where product fakes exist, so the
    generic blend cue stays learned. One epoch visits every real crop once; draws come from (seed, epoch,
    position) alone, so under torchrun each rank builds only its share of every global batch.
    """

    def __init__(self, crops: CropSet, reals: list[CropRef], fakes_by_video: dict[str, list[CropRef]],
                 batch_size: int, seed: int, sbi_fraction: float = 0.3, augment: bool = True):
        if not reals:
            raise ValueError("detector training: no real crops to learn from")
        if not 0.0 <= sbi_fraction <= 1.0:
            raise ValueError(f"detector training: sbi_fraction must be in [0, 1], got {sbi_fraction}")
        self.crops, self.reals, self.fakes_by_video = crops, list(reals), dict(fakes_by_video)
        self.batch_size, self.seed, self.sbi_fraction, self.augment = batch_size, seed, float(sbi_fraction), augment

    def epoch(self, epoch: int, rank: int, world_size: int) -> list[list[Sample]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.reals))

        def pair(position: int) -> list[Sample]:
            rng = np.random.default_rng([self.seed, epoch, position, 0x71D])
            ref = self.reals[int(order[position])]
            batch = [self.crops.real_sample(ref)]
            pool = self.fakes_by_video.get(ref.video) or []
            if pool and rng.random() >= self.sbi_fraction:
                fake = self.crops.real_sample(pool[int(rng.integers(len(pool)))])
                batch.append(Sample(fake.image, FAKE, fake.video, fake.frame, fake.method))
            else:
                batch.append(pseudo_fake(self.crops, ref, rng))
            return [augment_sample(s, rng) for s in batch] if self.augment else batch

        return global_batches(len(order), self.batch_size, rank, world_size, pair)


def global_batches(count: int, batch_size: int, rank: int, world_size: int, pair) -> list[list[Sample]]:
    """The epoch's batches of batch_size // 2 positions (each a real crop and its fake, `pair(position)`) for
    this rank: its share of every global batch (forensics.training.distributed.shard). Each position's draws
    depend on the position alone, so the ranks together see exactly the samples one process sees, and
    --batch-size is the global batch at any number of processes. A last partial batch is dropped."""
    per_batch = max(1, batch_size // 2)
    rows = D.shard(per_batch, rank, world_size, "batch of real crops (half --batch-size)")
    return [[sample for position in range(start, start + per_batch)[rows] for sample in pair(position)]
            for start in range(0, count - per_batch + 1, per_batch)]


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
