"""What a generator family is: the one interface the harness, the benchmarks and the CLI use.

A family (generators/<name>/) owns its whole lifecycle behind a `GeneratorFamily` registered by name in
generators.registry: its training config and task, its checkpoint loader, how it makes fakes on the
product path (whole videos, what `forensics fake` writes), the co-evolution game's crop-level fakes
(which crops a fake is made from, drawn without gradients, and a differentiable twin for evasion), its
reconstruction task for the evasion fine-tune, its quality metric and its export. Callers never branch on a
family name: a third family is one new folder that registers itself.

FakeBatch is the game's currency: fakes of one generator with where each came from, as rows of the world's
FaceSet (target crop, source still, a run's reference frame, a variant such as a face swap's decoder).
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from forensics.data.manifest import ManifestRow
from forensics.io import atomic_path
from forensics.synthetic.faceset import FaceSet


# ---------------------------------------------------------------------- the game's fakes

@dataclass
class FakeBatch:
    """Fakes of one generator for one portion, with where each came from (arrays have one row per fake).

    target: the real crop the fake stands in for (a swap's target crop; an animation's driving frame).
    source: the still whose face is shown (-1 when the target itself is redrawn); initial: the reference
    frame of a run (-1 when unused); variant: a family's own choice per fake (a face swap's decoder).
    source_id: whose face is shown; target_id: whose frame or motion; group: a video key, so fakes can
    also be scored per video.
    """
    name: str
    family: str
    images: np.ndarray
    target: np.ndarray
    source: np.ndarray
    initial: np.ndarray
    variant: np.ndarray
    source_id: np.ndarray
    target_id: np.ndarray
    group: np.ndarray
    recipe: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.target)

    @classmethod
    def selection(cls, name: str, family: str, size: int, target, source=None, initial=None, variant=None,
                  source_id=None, target_id=None, group=None) -> "FakeBatch":
        """A batch that says which fakes to make (images still black): what select_fakes returns."""
        n = len(target)
        fill = lambda values, default, dtype: np.asarray(values if values is not None else [default] * n, dtype)  # noqa: E731
        return cls(name, family, np.zeros((n, size, size, 3), np.uint8), np.asarray(target, np.int64),
                   fill(source, -1, np.int64), fill(initial, -1, np.int64), fill(variant, "", "<U8"),
                   fill(source_id, -1, np.int64), fill(target_id, -1, np.int64), fill(group, "", "<U256"))

    def drawn(self, images: np.ndarray, recipe: dict) -> "FakeBatch":
        return replace(self, images=images, recipe=recipe)

    def as_runs(self, faces: FaceSet, length: int) -> "FakeBatch":
        """Each fake stretched to `length` consecutive frames of its target's video, every other choice (source,
        reference frame, decoder) repeated, rows grouped run after run: the clips a clip detector judges. The
        run is the latest one that holds the target; a fake whose video has no such run is dropped."""
        where = {(int(v), int(f)): row for row, (v, f) in enumerate(zip(faces.video, faces.frame))}
        picks = []
        for k, target in enumerate(self.target):
            video, frame = int(faces.video[target]), int(faces.frame[target])
            for start in range(frame, frame - length, -1):
                rows = [where.get((video, start + j)) for j in range(length)]
                if None not in rows:
                    picks.append((k, rows))
                    break
        if not picks:
            raise ValueError(f"{self.name}: no fake's video has {length} consecutive frames for a clip")
        index = np.array([k for k, rows in picks for _ in rows], np.int64)
        return replace(self, images=self.images[index], target=np.array([r for _, rows in picks for r in rows],
                                                                         np.int64),
                       source=self.source[index], initial=self.initial[index], variant=self.variant[index],
                       source_id=self.source_id[index], target_id=self.target_id[index], group=self.group[index])

    def scenes(self, faces: FaceSet) -> np.ndarray:
        """The video each fake's surroundings come from: the source still's where there is one (its
        background, light and noise), else the target's; the detector pairs reals with fakes by it."""
        return faces.video[np.where(self.source >= 0, self.source, self.target)]

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, images=self.images, target=self.target, source=self.source, initial=self.initial,
                         variant=self.variant.astype("<U8"), source_id=self.source_id, target_id=self.target_id,
                         group=self.group.astype("<U256"), meta=np.array(json.dumps(
                             {"name": self.name, "family": self.family, "recipe": self.recipe})))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "FakeBatch":
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(meta["name"], meta["family"], data["images"], data["target"], data["source"], data["initial"],
                       data["variant"], data["source_id"], data["target_id"], data["group"], meta["recipe"])


ImagesOf = Callable[[np.ndarray], torch.Tensor]   # FaceSet rows -> float [B, 3, S, S] in [0, 1] on the device


def sample_crf(rng: np.random.Generator, crf_range: tuple[int, int]) -> int:
    """The H.264 CRF of one fake video, drawn uniformly from [low, high]: real uploads are compressed at many
    rates, and a detector trained on one rate learns that rate."""
    low, high = (int(v) for v in crf_range)
    if not 0 <= low <= high <= 51:
        raise ValueError(f"crf range must be 0 <= low <= high <= 51, got {crf_range}")
    return int(rng.integers(low, high + 1))


# ---------------------------------------------------------------------- benchmark fakes (product path)

@dataclass
class FakeJob:
    """One fake video made on the product path by `make(out_path) -> recipe` (what `forensics fake` writes).

    name: the output path relative to the dataset folder ("<family>/<stem>.mp4"); key: what decides the
    fake (a fake is reused while its key is unchanged); identity: whose footage or motion it shows;
    target_real: the real video whose footage (scene, light, background) the fake shows, if any: a swap's
    target, an animation's source still; footage: every real video the fake is made from, frames or motion
    (default: target_real); benchmarks keep each such video on one side of the train/test divide; meta: extra
    manifest fields.
    """
    name: str
    split: str
    identity: str | None
    key: dict
    make: Callable[[Path], dict]
    target_real: str | None = None
    footage: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def sources(self) -> tuple[str, ...]:
        """The real videos this fake is made from."""
        return tuple(self.footage) or ((self.target_real,) if self.target_real else ())


# ---------------------------------------------------------------------- the family

class GeneratorFamily(ABC):
    """The lifecycle of one generator family (see the module docstring). Subclasses set the class attributes
    and implement the methods; `generators.registry.register_family(instance)` makes them known."""

    name: ClassVar[str]
    label: ClassVar[str]                    # how messages name it: "face-swap"
    description: ClassVar[str] = ""
    config: ClassVar[type]                  # training config dataclass with from_preset(name, **overrides)
    fake_options: ClassVar[dict] = {}       # a benchmark suite's options for this family, with defaults
    blend_hull_scale: ClassVar[float] = 1.0  # the face hull its product-path blend covers (evasion surrogate)

    # -- build and train
    @abstractmethod
    def make_task(self, config, faces: FaceSet | None = None) -> Any:
        """The TrainTask that trains this family from scratch in the shared loop."""

    @abstractmethod
    def train(self, config, out_dir: str | Path, run=None) -> tuple[Any, Path]:
        """Train and export into out_dir: (FitResult, checkpoint directory)."""

    # -- load
    @abstractmethod
    def load(self, checkpoint: str | Path, device: str | torch.device = "cpu") -> Any:
        """A loaded generator: .path, .sha256, .meta, .size, .margin, .device."""

    # -- fakes on the product path
    @abstractmethod
    def benchmark_fakes(self, loaded, rows: list[ManifestRow], options: dict, splits: set[str],
                        device: torch.device) -> list[FakeJob]:
        """The fake videos a benchmark dataset of this world holds (see FakeJob)."""

    @abstractmethod
    def game_fakes(self, loaded, targets: list[ManifestRow], sources: list[ManifestRow], rng: np.random.Generator,
                   crf_range: tuple[int, int], device: torch.device) -> list[FakeJob]:
        """One fake video per target real video, made on the product path (whole frames, colour-matched,
        feather-blended, H.264 at a CRF drawn from crf_range): the co-evolution game trains and scores the
        detector on these. `sources` are real videos the family may take a face or a still from."""

    def benchmark_notes(self, options: dict) -> list[str]:
        """What a benchmark report should say about how this family's fakes were made and split."""
        return []

    def requested_fakes(self, options: dict, splits: set[str]) -> dict[str, int]:
        """How many fake videos per split the options ask for (a benchmark refuses to run on fewer unless told
        to): by default the options named after a split ({"train": 16, "test": 12})."""
        return {split: int(options[split]) for split in sorted(splits) if isinstance(options.get(split), int)}

    # -- the co-evolution game (crop level)
    @abstractmethod
    def game_identities(self, loaded, held_out: list[int]) -> list[int]:
        """Whose frames its game fakes are drawn on, out of the train identities it is given (the crop-level
        fakes of select_fakes must show what game_fakes makes, or the evasion learns another domain)."""

    @abstractmethod
    def select_fakes(self, name: str, loaded, faces: FaceSet, identities: list[int], portion: str, count: int,
                     clip_frames: int, rng: np.random.Generator) -> FakeBatch:
        """Which crops `count` fakes of `portion` are made from (no pixels yet)."""

    @abstractmethod
    def draw_fakes(self, loaded, faces: FaceSet, batch: FakeBatch) -> FakeBatch:
        """The selection's fakes as uint8 crops, drawn like the product path draws them, without gradients."""

    @abstractmethod
    def draw_tensor(self, modules: dict[str, torch.nn.Module], batch: FakeBatch, images: ImagesOf) -> torch.Tensor:
        """The same fakes, float [B, 3, S, S] in [0, 1], differentiable in the family's modules (evasion)."""

    # -- evasion fine-tune
    @abstractmethod
    def evasion_base(self, loaded, faces: FaceSet, steps: int, batch_size: int, lr: float | None, seed: int,
                     device: str, world: str) -> Any:
        """The family's own reconstruction task starting from `loaded`'s weights, adversary off, at most
        `steps` batches an epoch: what keeps an evading generator a generator."""

    @abstractmethod
    def quality(self, base, device: torch.device) -> dict:
        """{"metric": name, "value": lower-is-better number, ...} of the base task's current weights."""

    @abstractmethod
    def export(self, base, loaded, directory: Path, meta: dict) -> Path:
        """Save the base task's current weights as a checkpoint this family loads."""
