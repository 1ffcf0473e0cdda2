"""The game's data: who plays which role, and the product-path fake videos of every generator version.

Roles come from the world's splits, by identity: `train` videos are what both sides learn from (the
detector's real crops and the targets of its training fakes; the generators' evasion crops), `val` videos
are where the detector's move early-stops and calibrates, `test` videos are the panel, which nothing trains
on. A config that asks for more videos of a split than the world holds fails in one line, never capped.

Every fake is made the way `forensics fake` makes it (the family's `game_fakes`: whole frames, colour-matched,
feather-blended, H.264 at a CRF drawn per video), once (generators.jobs), and read back through the face-crop
cache like any video. fakes.jsonl records each one with its generator version, its role and the real video
it was made from, which is how the detector's move pairs a fake with the real of the same video.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from forensics.data.manifest import ManifestRow, read_manifest
from forensics.io import append_jsonl, read_jsonl
from generators.family import GeneratorFamily
from generators.jobs import JobRunner

ROLE_SPLITS = {"fit": "train", "val": "val", "panel": "test"}


@dataclass(frozen=True)
class WorldRoles:
    train: list[ManifestRow]
    val: list[ManifestRow]
    test: list[ManifestRow]

    @classmethod
    def of(cls, world: str | Path, fit_fakes: int, val_fakes: int) -> "WorldRoles":
        manifest = Path(world) / "manifest.csv"
        if not manifest.is_file():
            raise ValueError(f"{world}: not a synthetic world (no manifest.csv); render one with `forensics synth`")
        reals = [r for r in read_manifest(manifest) if r.label == "real"]
        roles = cls(*([r for r in reals if r.split == split] for split in ("train", "val", "test")))
        for split, rows, needed in (("train", roles.train, fit_fakes), ("val", roles.val, val_fakes),
                                    ("test", roles.test, 2)):
            if len(rows) < needed:
                raise ValueError(f"{world}: the game needs {needed} real {split} videos, the world has {len(rows)}; "
                                 f"render more identities (forensics synth --identities N) or ask for fewer")
        if len({r.identity for r in roles.test}) < 2:
            raise ValueError(f"{world}: the panel needs at least 2 test identities; render more identities")
        return roles

    def rows(self, role: str) -> list[ManifestRow]:
        return getattr(self, ROLE_SPLITS[role])

    def identity_ids(self, split: str) -> list[int]:
        return sorted(int(str(r.identity).removeprefix("id")) for r in {r.identity: r for r in getattr(self, split)}
                      .values())


@dataclass(frozen=True)
class FakeVideo:
    path: str            # absolute
    generator: str       # the generator's name in the config
    version: int         # 0 = the checkpoint the game started with
    role: str            # fit | val | panel
    target: str          # the real video whose footage it shows (absolute)
    crf: int
    identity: str | None

    def row(self) -> ManifestRow:
        return ManifestRow(path=self.path, label="fake", method=self.generator, identity=self.identity,
                           split=ROLE_SPLITS[self.role], source="coevolve",
                           meta={"version": self.version, "target_real": self.target, "crf": self.crf})


class FakeStore:
    """The game's fake videos under OUT/fakes, made once each, listed in OUT/fakes/fakes.jsonl."""

    def __init__(self, root: str | Path, progress: bool = True):
        self.root = Path(root)
        self.runner = JobRunner(self.root / "videos", progress=progress)
        self.index = self.root / "fakes.jsonl"
        self._videos = {rec["path"]: FakeVideo(**rec) for rec in read_jsonl(self.index)}

    def make(self, family: GeneratorFamily, loaded, name: str, version: int, role: str, targets: list[ManifestRow],
             sources: list[ManifestRow], rng: np.random.Generator, crf: tuple[int, int], device) -> list[FakeVideo]:
        """One fake per target (see GeneratorFamily.game_fakes); a fake that cannot be made is skipped, and a
        role left with no fake at all is an error (one line)."""
        made = []
        for job in family.game_fakes(loaded, targets, sources, rng, crf, device):
            job.name = f"{name}/v{version:02d}/{role}/{Path(job.name).name}"
            recipe = self.runner.run(job)
            if recipe is None:
                continue
            video = FakeVideo(str((self.runner.root / job.name).resolve()), name, version, role,
                              str(Path(job.target_real).resolve()), int(recipe.get("crf", -1)), job.identity)
            if video.path not in self._videos:
                append_jsonl(self.index, asdict(video))
                self._videos[video.path] = video
            made.append(video)
        if not made:
            reasons = "; ".join(reason for _, reason in self.runner.failed[-3:])
            raise ValueError(f"coevolve: {name} v{version}: no {role} fake could be made ({reasons})")
        return made

    def videos(self, role: str | None = None, generator: str | None = None, version: int | None = None
               ) -> list[FakeVideo]:
        return [v for v in self._videos.values() if (role is None or v.role == role)
                and (generator is None or v.generator == generator) and (version is None or v.version == version)]


def sample_targets(rows: list[ManifestRow], count: int, rng: np.random.Generator) -> list[ManifestRow]:
    """`count` different real videos, drawn with the round's rng (fresh targets and CRFs every round)."""
    if count > len(rows):
        raise ValueError(f"coevolve: {count} fake videos asked for, only {len(rows)} real videos to make them from")
    order = rng.permutation(len(rows))[:count]
    return [rows[int(i)] for i in sorted(order)]

