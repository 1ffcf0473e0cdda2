"""Fake-video datasets made from the synthetic world on the product path, so benchmarks test what a user of
`forensics fake` would produce: whole H.264 videos, found and aligned by MTCNN like any other dataset, not
crops handed straight from a generator to a detector.

The dataset is a folder with a manifest.csv (forensics.data.manifest) next to the fake videos; the real
videos stay in the world and are listed by relative path, so the standard adapter (`synthetic`, which
reads any manifest.csv) and the face-crop cache read it like any other dataset.

Which fakes a family contributes, and from which footage, is the family's own business
(GeneratorFamily.benchmark_fakes, with its options from the suite's `fakes: {family: {...}}`): this module
only makes them (each once: a recipe per output is appended to recipes.jsonl as it is written, keyed by
what decides the fake, and reused on the next run), refuses to run on fewer videos than asked for (unless
told to: the shortfalls are then kept and the suites mark the cells they touch), keeps every real video a fake
is made from on that fake's side of the train/test divide (`footage` in the manifest says which), and writes
the manifest. Real videos keep the world's split.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from forensics.data.manifest import SPLITS, ManifestRow, identity_spread, write_manifest
from forensics.data.registry import create_dataset
from forensics.device import resolve_device
from generators.family import FakeJob
from generators.jobs import JobRunner
from generators.registry import FAMILIES, get_generator

MANIFEST = "manifest.csv"


class MissingGeneratorError(ValueError):
    """A generator checkpoint a suite needs is not there; the message says how to train one."""


class UnderfilledError(ValueError):
    """The world holds fewer videos than a suite asks for; the message says what it has and how to get more."""


@dataclass(frozen=True)
class Shortfall:
    """A split that got fewer videos of one kind ("real" or a family) than the suite asked for."""
    split: str
    what: str
    wanted: int
    got: int

    def to_dict(self) -> dict:
        return {"split": self.split, "what": self.what, "wanted": self.wanted, "got": self.got}


@dataclass
class FakePlan:
    """What to make. `reals`: real videos per split (the splits with any also get fakes); `generators`:
    family -> checkpoint dir (or None to leave that family out); `options`: family -> its benchmark options
    (see the family's `fake_options`)."""
    world: str
    out: str
    generators: dict = field(default_factory=lambda: {"faceswap": "runs/faceswap", "animation": "runs/animation"})
    reals: dict = field(default_factory=lambda: {"train": 16, "val": 6, "test": 12})
    options: dict = field(default_factory=dict)
    device: str = "auto"
    allow_smaller: bool = False


@dataclass
class FakeDataset:
    root: Path
    rows: list[ManifestRow]
    made: int = 0
    reused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    checkpoints: dict = field(default_factory=dict)     # family -> weights sha256
    seconds: float = 0.0
    shortfalls: list[Shortfall] = field(default_factory=list)

    def counts(self) -> dict:
        """Videos per split and method, for the results."""
        out: dict[str, dict[str, int]] = {}
        for row in self.rows:
            cell = out.setdefault(row.split, {})
            cell[row.method] = cell.get(row.method, 0) + 1
        return {split: out[split] for split in SPLITS if split in out}


def check_generators(generators: dict) -> dict[str, Path]:
    """The configured checkpoint folders that exist; a MissingGeneratorError naming the fix otherwise."""
    found = {}
    for family, path in (generators or {}).items():
        if family not in FAMILIES:
            raise ValueError(f"unknown generator family {family!r} (known: {', '.join(FAMILIES.names())})")
        if path is None:
            continue
        if not (Path(path) / "config.json").is_file():
            raise MissingGeneratorError(f"{path}: no {family} generator checkpoint (config.json missing); train one "
                                        f"with: forensics train generator {family} --out {path}")
        found[family] = Path(path)
    return found


def family_options(family: str, given: dict | None) -> dict:
    """A family's benchmark options: the suite's over the family's defaults; an unknown key is an error."""
    defaults = get_generator(family).fake_options
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"fakes.{family}: unknown option {unknown[0]!r} (known: {', '.join(sorted(defaults)) or 'none'})")
    return {**defaults, **given}


def world_rows(world: str | os.PathLike) -> list[ManifestRow]:
    world = Path(world)
    if not (world / MANIFEST).is_file():
        raise ValueError(f"{world}: no synthetic world here ({MANIFEST} missing); render one with: "
                         f"forensics synth --out {world}")
    return [r for r in create_dataset("synthetic", world).rows() if r.label == "real"]


def suite_fakes(ctx, generators: dict, params: dict) -> "FakeDataset":
    """A suite's "make fakes" stage: the fake-video dataset under the suite's work folder, each fake that could
    not be made recorded as a failed cell (the suite goes on with the rest)."""
    with ctx.stage("make fakes"):
        plan = FakePlan(world=ctx.suite.world, out=str(ctx.work_dir / "fakes"), generators=generators,
                        reals=params["reals"], options=params.get("fakes") or {}, device=ctx.device,
                        allow_smaller=ctx.allow_smaller)
        data = build_fake_dataset(plan, progress=ctx.progress)
    for name, reason in data.failed:
        ctx.fail(f"fake {name}", reason)
    for short in data.shortfalls:
        ctx.notes.append(f"Under-powered: {short.what} {short.split} has {short.got} of the {short.wanted} videos "
                         f"asked for (--allow-smaller); cells that use it are marked.")
    return data


def build_fake_dataset(plan: FakePlan, progress: bool = True) -> FakeDataset:
    """Plan every fake, pick the reals, check the sizes and the footage, then make (or reuse) the fakes and
    write the dataset's manifest.csv. Too few videos for what the plan asks is an UnderfilledError before
    anything is made, unless `plan.allow_smaller` (then the shortfalls are in the result); per-video failures
    are reported in the result, never raised."""
    started = time.perf_counter()
    checkpoints = check_generators(plan.generators)
    out = Path(plan.out)
    rows = world_rows(plan.world)
    splits = {split for split, n in (plan.reals or {}).items() if n} or set(SPLITS)
    device = resolve_device(plan.device)
    checksums: dict[str, str] = {}
    planned: list[tuple[str, FakeJob]] = []
    shortfalls: list[Shortfall] = []
    for name, checkpoint in checkpoints.items():
        family = get_generator(name)
        options = family_options(name, plan.options.get(name))
        loaded = family.load(checkpoint, device=device)
        checksums[name] = loaded.sha256
        jobs = family.benchmark_fakes(loaded, rows, options, splits, device)
        planned += [(name, job) for job in jobs]
        for split, wanted in family.requested_fakes(options, splits).items():
            got = sum(job.split == split for job in jobs)
            if got < wanted:
                shortfalls.append(Shortfall(split, name, wanted, got))
    footage = footage_sides(planned)
    reals = pick_reals(rows, plan.reals, footage)
    for split, wanted in (plan.reals or {}).items():
        got = sum(r.split == split for r in reals)
        if got < int(wanted or 0):
            shortfalls.append(Shortfall(split, "real", int(wanted), got))
    if shortfalls and not plan.allow_smaller:
        raise UnderfilledError(underfilled_message(shortfalls, rows, plan.world))

    out.mkdir(parents=True, exist_ok=True)
    maker = JobRunner(out, progress)
    fakes: list[ManifestRow] = []
    for name, job in planned:
        recipe = maker.run(job)
        if recipe is not None:
            meta = {**recipe, **job.meta, "footage": list(job.sources())}
            fakes.append(ManifestRow(path=str(maker.root / job.name), label="fake", method=name,
                                     identity=job.identity, split=job.split, source="benchmarks.fakes", meta=meta))
    manifest_rows = [_relative(r, out) for r in reals + fakes]
    write_manifest(manifest_rows, out / MANIFEST)
    return FakeDataset(root=out, rows=[_absolute(r, out) for r in manifest_rows], made=maker.made,
                       reused=maker.reused, failed=maker.failed, checkpoints=checksums,
                       seconds=round(time.perf_counter() - started, 1), shortfalls=shortfalls)


def side(split: str) -> str:
    """Which side of the divide a split is on: the detector trains and validates on one, is tested on the other."""
    return "test" if split == "test" else "training"


def footage_sides(planned: list[tuple[str, FakeJob]]) -> dict[str, str]:
    """Real video -> the side of the divide whose fakes are made from it. A video that fakes on both sides
    are made from would put the same footage in training and test: a ValueError (a family's bug)."""
    sides: dict[str, str] = {}
    for name, job in planned:
        for video in job.sources():
            here = side(job.split)
            if sides.setdefault(video, here) != here:
                raise ValueError(f"{name}: fakes on both sides of the train/test divide are made from "
                                 f"{Path(video).name}; a family's benchmark_fakes must keep footage in one split")
    return sides


def pick_reals(rows: list[ManifestRow], counts: dict, footage: dict[str, str] | None = None) -> list[ManifestRow]:
    """`counts[split]` real videos of each split, one video per identity before any second one. A video that
    fakes are made from is only used on their side of the divide, and comes first there (a fake's real
    counterpart in the same split, as FaceForensics++ pairs them)."""
    footage = footage or {}
    spread = identity_spread(rows)
    picked = []
    for split, n in (counts or {}).items():
        if split not in SPLITS:
            raise ValueError(f"reals: unknown split {split!r} (splits: {', '.join(SPLITS)})")
        pool = sorted((r for r in rows if r.split == split and footage.get(r.path, side(split)) == side(split)),
                      key=lambda r: (r.path not in footage, *spread(r)))
        picked += pool[:max(0, int(n))]
    return picked


def underfilled_message(shortfalls: list[Shortfall], rows: list[ManifestRow], world: str) -> str:
    """One line: what is short, what the world holds, how to get more."""
    held = {split: (sum(r.split == split for r in rows), len({r.identity for r in rows if r.split == split}))
            for split in SPLITS}
    short = "; ".join(f"{s.what} {s.split} {s.got} of {s.wanted}" for s in shortfalls)
    has = ", ".join(f"{split} {videos} videos of {ids} identities" for split, (videos, ids) in held.items() if videos)
    return (f"{world}: too few videos for this suite ({short}); the world has {has}. Render a bigger world "
            f"(forensics synth --identities 60 --out DIR, then --world DIR), lower the sizes in a copy of the suite, "
            f"or pass --allow-smaller to run anyway with those cells marked under-powered")


# ---------------------------------------------------------------------- plumbing

def _relative(row: ManifestRow, root: Path) -> ManifestRow:
    meta = dict(row.meta)
    if "footage" in meta:
        meta["footage"] = [os.path.relpath(path, root) for path in meta["footage"]]
    return ManifestRow(path=os.path.relpath(row.path, root), label=row.label, method=row.method,
                       identity=row.identity, split=row.split, source=row.source or "synthetic", meta=meta)


def _absolute(row: ManifestRow, root: Path) -> ManifestRow:
    meta = dict(row.meta)
    if "footage" in meta:
        meta["footage"] = [os.path.normpath(root / path) for path in meta["footage"]]
    return ManifestRow(path=os.path.normpath(root / row.path), label=row.label, method=row.method,
                       identity=row.identity, split=row.split, source=row.source, meta=meta)

