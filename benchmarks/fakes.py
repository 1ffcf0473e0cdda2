"""Fake-video datasets made from the synthetic world on the product path, so benchmarks test what a user of
`forensics fake` would produce: whole H.264 videos, found and aligned by MTCNN like any other dataset, not
crops handed straight from a generator to a detector.

The dataset is a folder with a manifest.csv (forensics.data.manifest) next to the fake videos; the real
videos stay in the world and are listed by relative path, so the standard adapter (`synthetic`, which
reads any manifest.csv) and the face-crop cache read it like any other dataset.

Which fakes a family contributes, and from which footage, is the family's own business
(GeneratorFamily.benchmark_fakes, with its options from the suite's `fakes: {family: {...}}`): this module
only makes them (each once: a recipe per output is appended to recipes.jsonl as it is written, keyed by
what decides the fake, and reused on the next run), keeps out of the test reals any real footage a fake is
made from that the family holds out, and writes the manifest. Real videos keep the world's split.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from forensics.data.manifest import SPLITS, ManifestRow, video_rank, write_manifest
from forensics.data.registry import create_dataset
from forensics.device import resolve_device
from generators.jobs import JobRunner
from generators.registry import FAMILIES, get_generator

MANIFEST = "manifest.csv"


class MissingGeneratorError(ValueError):
    """A generator checkpoint a suite needs is not there; the message says how to train one."""


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


@dataclass
class FakeDataset:
    root: Path
    rows: list[ManifestRow]
    made: int = 0
    reused: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    checkpoints: dict = field(default_factory=dict)     # family -> weights sha256
    seconds: float = 0.0

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
                        reals=params["reals"], options=params.get("fakes") or {}, device=ctx.device)
        data = build_fake_dataset(plan, progress=ctx.progress)
    for name, reason in data.failed:
        ctx.fail(f"fake {name}", reason)
    return data


def build_fake_dataset(plan: FakePlan, progress: bool = True) -> FakeDataset:
    """Make (or reuse) every fake of the plan and write the dataset's manifest.csv; per-video failures are
    reported in the result, never raised."""
    started = time.perf_counter()
    checkpoints = check_generators(plan.generators)
    out = Path(plan.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = world_rows(plan.world)
    splits = {split for split, n in (plan.reals or {}).items() if n} or set(SPLITS)
    maker = JobRunner(out, progress)
    device = resolve_device(plan.device)
    checksums: dict[str, str] = {}
    fakes: list[ManifestRow] = []
    held_out: set[str] = set()
    for name, checkpoint in checkpoints.items():
        family = get_generator(name)
        options = family_options(name, plan.options.get(name))
        loaded = family.load(checkpoint, device=device)
        checksums[name] = loaded.sha256
        for job in family.benchmark_fakes(loaded, rows, options, splits, device):
            if job.hold_out_real and job.target_real:
                held_out.add(job.target_real)
            recipe = maker.run(job)
            if recipe is not None:
                meta = {**recipe, **job.meta, **({"target_real": job.target_real} if job.target_real else {})}
                fakes.append(ManifestRow(path=str(maker.root / job.name), label="fake", method=name,
                                         identity=job.identity, split=job.split, source="benchmarks.fakes", meta=meta))
    required = {r.meta["target_real"] for r in fakes if r.split == "train" and "target_real" in r.meta}
    reals = pick_reals(rows, plan.reals, exclude=held_out, required=required)
    manifest_rows = [_relative(r, out) for r in reals + fakes]
    write_manifest(manifest_rows, out / MANIFEST)
    return FakeDataset(root=out, rows=[_absolute(r, out) for r in manifest_rows], made=maker.made,
                       reused=maker.reused, failed=maker.failed, checkpoints=checksums,
                       seconds=round(time.perf_counter() - started, 1))


def pick_reals(rows: list[ManifestRow], counts: dict, exclude: set[str] = frozenset(),
               required: set[str] = frozenset()) -> list[ManifestRow]:
    """`counts[split]` real videos of each split, one video per identity before any second one, after the
    `required` ones (the real footage behind train fakes) of that split."""
    rank = video_rank(rows)
    picked = []
    for split, n in (counts or {}).items():
        if split not in SPLITS:
            raise ValueError(f"reals: unknown split {split!r} (splits: {', '.join(SPLITS)})")
        pool = sorted((r for r in rows if r.split == split and r.path not in exclude),
                      key=lambda r: (r.path not in required, rank[r.path], r.identity or "", r.path))
        picked += pool[:max(0, int(n))]
    return picked


# ---------------------------------------------------------------------- plumbing

def _relative(row: ManifestRow, root: Path) -> ManifestRow:
    meta = {k: v for k, v in row.meta.items() if k != "target_real"}
    return ManifestRow(path=os.path.relpath(row.path, root), label=row.label, method=row.method,
                       identity=row.identity, split=row.split, source=row.source or "synthetic", meta=meta)


def _absolute(row: ManifestRow, root: Path) -> ManifestRow:
    return ManifestRow(path=os.path.normpath(root / row.path), label=row.label, method=row.method,
                       identity=row.identity, split=row.split, source=row.source, meta=row.meta)

