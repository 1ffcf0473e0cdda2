"""Face crops from the cache as labelled samples: what a detector is trained and scored on.

A `CropSet` is one split of a cache as references (real or fake, as the dataset says), with pixels loaded
lazily through mmap and each crop's five landmarks in crop pixels (what self-blending needs). How batches
and pseudo-fakes are made from them is the detector's business (detectors/batches.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from forensics.data.cache import CacheEntry, FaceCache
from forensics.faces.align import similarity_transform, template_in_crop

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
    points = np.asarray(face["landmarks"], np.float64).reshape(5, 2)
    matrix = similarity_transform(points, template_in_crop(size, margin))
    return points @ matrix[:, :2].T + matrix[:, 2]


class LabelledRefs:
    """What a set of labelled references over a cache shares, whatever one reference is (a crop here, a clip
    in detectors.clips): the reals, the fakes, their videos, and each source's crops loaded once through mmap."""

    refs: list
    cache: FaceCache
    _arrays: dict[str, np.ndarray]

    @property
    def reals(self) -> list:
        return [r for r in self.refs if r.label == REAL]

    @property
    def fakes(self) -> list:
        return [r for r in self.refs if r.label == FAKE]

    def videos(self) -> set[str]:
        return {r.video for r in self.refs}

    def crops_of(self, entry: CacheEntry) -> np.ndarray:
        crops = self._arrays.get(entry.source)
        if crops is None:
            crops = self._arrays[entry.source] = self.cache.load_crops(entry)
        return crops


class CropSet(LabelledRefs):
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

    def subset(self, keep) -> "CropSet":
        """A CropSet over the refs whose video `keep(video)` accepts (shares the loaded arrays)."""
        other = CropSet.__new__(CropSet)
        other.cache, other.split, other._arrays = self.cache, self.split, self._arrays
        other.refs = [r for r in self.refs if keep(r.video)]
        return other

    def image(self, ref: CropRef) -> np.ndarray:
        return np.ascontiguousarray(self.crops_of(ref.entry)[ref.index])

    def landmarks(self, ref: CropRef) -> np.ndarray:
        return crop_landmarks(ref.face, self.cache.config.crop_size, self.cache.config.margin)

    def real_sample(self, ref: CropRef) -> Sample:
        return Sample(self.image(ref), ref.label, ref.video, int(ref.face["frame"]),
                      "real" if ref.label == REAL else (ref.entry.method or "fake"))


def stack(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([s.image for s in samples]), np.array([s.label for s in samples], np.float32)
