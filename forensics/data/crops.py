"""Face crops from the cache as labelled training/evaluation samples, with pseudo-fakes made on the fly.

A detector trained on one manipulation learns that manipulation's fingerprint; self-blended images
(generators.blending) teach the blend boundary every face swap leaves, from real faces alone. So a
`CropSet` hands out each real crop twice, as itself and as its self-blended copy, plus whatever real fakes
the dataset holds. Evaluation sets draw their pseudo-fakes from a seed tied to the crop, so the same crop
always gets the same fake and scores are comparable across epochs and runs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import cv2
import numpy as np

from forensics.data.cache import CacheEntry, FaceCache

REAL, FAKE = 0, 1


@dataclass(frozen=True)
class CropRef:
    """One face in the cache: where its pixels are and what it is."""
    entry: CacheEntry
    index: int            # row in the entry's crops array
    label: int            # REAL or FAKE (as the dataset says)

    @property
    def face(self) -> dict:
        return self.entry.faces[self.index]

    @property
    def video(self) -> str:
        return self.entry.source


@dataclass
class Sample:
    image: np.ndarray     # uint8 RGB crop
    label: int
    video: str            # grouping key for video-level metrics ("<source>" or "<source>#sbi")
    frame: int
    method: str           # "real", the dataset's method, or "sbi"


def crop_landmarks(face: dict, size: int, margin: float) -> np.ndarray:
    """The face's 5 landmarks in crop pixels: the stored frame landmarks through the alignment transform."""
    from forensics.faces.align import similarity_transform, template_in_crop

    points = np.asarray(face["landmarks"], np.float64).reshape(5, 2)
    matrix = similarity_transform(points, template_in_crop(size, margin))
    return points @ matrix[:, :2].T + matrix[:, 2]


class CropSet:
    """The crops of one split of a cache, as (real, fake) references, loaded lazily through mmap."""

    def __init__(self, cache: FaceCache, split: str | None, max_per_video: int | None = None):
        self.cache = cache
        self.split = split
        self.refs: list[CropRef] = []
        for entry in cache.entries(split=split):
            label = FAKE if entry.label == "fake" else REAL
            rows = range(len(entry.faces))
            if max_per_video is not None and len(rows) > max_per_video:
                rows = np.linspace(0, len(entry.faces) - 1, max_per_video).round().astype(int)
            self.refs.extend(CropRef(entry, int(i), label) for i in rows)
        self._arrays: dict[str, np.ndarray] = {}

    @property
    def reals(self) -> list[CropRef]:
        return [r for r in self.refs if r.label == REAL]

    @property
    def fakes(self) -> list[CropRef]:
        return [r for r in self.refs if r.label == FAKE]

    def subset(self, keep) -> "CropSet":
        """A CropSet over the refs whose video `keep(video)` accepts (shares the loaded arrays)."""
        other = CropSet.__new__(CropSet)
        other.cache, other.split, other._arrays = self.cache, self.split, self._arrays
        other.refs = [r for r in self.refs if keep(r.video)]
        return other

    def videos(self) -> set[str]:
        return {r.video for r in self.refs}

    def image(self, ref: CropRef) -> np.ndarray:
        crops = self._arrays.get(ref.entry.source)
        if crops is None:
            crops = self._arrays[ref.entry.source] = self.cache.load_crops(ref.entry)
        return np.ascontiguousarray(crops[ref.index])

    def landmarks(self, ref: CropRef) -> np.ndarray:
        return crop_landmarks(ref.face, self.cache.config.crop_size, self.cache.config.margin)

    def real_sample(self, ref: CropRef) -> Sample:
        return Sample(self.image(ref), ref.label, ref.video, int(ref.face["frame"]),
                      "real" if ref.label == REAL else (ref.entry.method or "fake"))

    def pseudo_fake(self, ref: CropRef, rng: np.random.Generator) -> Sample:
        from generators.blending import self_blend

        fake, _, _ = self_blend(self.image(ref), self.landmarks(ref), rng)
        return Sample(fake, FAKE, ref.video + "#sbi", int(ref.face["frame"]), "sbi")


def evaluation_samples(crops: CropSet, seed: int = 0, pseudo_fakes: bool = True) -> list[Sample]:
    """Every crop as itself, plus (optionally) a self-blended fake of every real crop, seeded per crop."""
    samples = [crops.real_sample(ref) for ref in crops.refs]
    if pseudo_fakes:
        for ref in crops.reals:
            samples.append(crops.pseudo_fake(ref, np.random.default_rng(_crop_seed(ref, seed))))
    return samples


def training_batches(crops: CropSet, batch_size: int, shuffle_seed: int, rng: np.random.Generator, rank: int = 0,
                     world_size: int = 1, augment: bool = True, sbi: bool = True) -> Iterator[list[Sample]]:
    """One epoch of balanced batches for this rank: half real crops, half fakes.

    Each real crop appears once per epoch; with `sbi` its pseudo-fake appears too, so the model sees the
    same face both ways and can only tell them apart by the blend. Dataset fakes are mixed in at the rate
    they exist. Every rank shuffles with the shared `shuffle_seed` and takes its own slice, so the ranks
    see disjoint crops; `rng` (seeded per rank) drives the pseudo-fakes and augmentation.
    """
    order_rng = np.random.default_rng(shuffle_seed)
    reals = [crops.reals[i] for i in order_rng.permutation(len(crops.reals))]
    fakes = [crops.fakes[i] for i in order_rng.permutation(len(crops.fakes))] if crops.fakes else []
    reals = reals[rank::world_size]
    fakes = fakes[rank::world_size]
    per_batch = max(1, batch_size // 2)
    fake_share = len(fakes) / max(1, len(fakes) + (len(reals) if sbi else 0))
    fake_iter = iter(fakes)
    for start in range(0, len(reals) - per_batch + 1, per_batch):
        batch: list[Sample] = []
        for ref in reals[start:start + per_batch]:
            batch.append(crops.real_sample(ref))
            dataset_fake = next(fake_iter, None) if fakes and rng.random() < fake_share else None
            if dataset_fake is not None:
                batch.append(crops.real_sample(dataset_fake))
            elif sbi:
                batch.append(crops.pseudo_fake(ref, rng))
        if augment:
            batch = [augment_sample(s, rng) for s in batch]
        yield batch


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


def stack(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([s.image for s in samples]), np.array([s.label for s in samples], np.float32)


def _crop_seed(ref: CropRef, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}:{ref.entry.source}:{ref.index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")

