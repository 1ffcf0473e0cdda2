"""Fake-video datasets made from the synthetic world with the real conversion functions, so benchmarks test
what a user of `forensics fake swap|animate` would produce: whole H.264 videos, found and aligned by MTCNN
like any other dataset, not crops handed straight from a generator to a detector.

The dataset is a folder with a manifest.csv (forensics.data.manifest) next to the fake videos; the real
videos stay in the world and are listed by relative path, so the standard adapter (`synthetic`, which
reads any manifest.csv) and the face-crop cache read it like any other dataset.

Splits. Real videos keep the world's split. A face-swap checkpoint covers one identity pair (its
config.json `identities` a/b), so the pair's first videos are swapped for train and their other videos for
test: the face-swap test fakes show identities the detector trained on, which cannot be avoided with one
pair; the reals of those test videos are left out of the dataset so that no test fake's own footage is
seen in training. Optionally each video is also passed through its own identity's decoder
("reconstructions": the same encode/decode/blend pipeline without the identity change) to double the
face-swap fakes. Animation is any-to-any: sources and drivers come from one split's identities, so its
train and test identities are disjoint.

Every fake is made once: a recipe per output is appended to recipes.jsonl as it is written, keyed by the
generator checkpoint's hash and the inputs, and reused on the next run.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from forensics.data.manifest import SPLITS, ManifestRow, write_manifest
from forensics.io import append_jsonl, read_jsonl

FAMILIES = ("faceswap", "animation")
MANIFEST = "manifest.csv"
RECIPES = "recipes.jsonl"


class MissingGeneratorError(ValueError):
    """A generator checkpoint a suite needs is not there; the message says how to train one."""


@dataclass
class FakePlan:
    """What to make. `reals` / `animation`: videos per split; `generators`: family -> checkpoint dir (or None
    to leave that family out)."""
    world: str
    out: str
    generators: dict = field(default_factory=lambda: {"faceswap": "runs/faceswap", "animation": "runs/animation"})
    reals: dict = field(default_factory=lambda: {"train": 16, "val": 6, "test": 12})
    animation: dict = field(default_factory=lambda: {"train": 16, "val": 6, "test": 12})
    faceswap_reconstructions: bool = True
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
            raise ValueError(f"unknown generator family {family!r} (known: {', '.join(FAMILIES)})")
        if path is None:
            continue
        if not (Path(path) / "config.json").is_file():
            raise MissingGeneratorError(f"{path}: no {family} generator checkpoint (config.json missing); train one "
                                        f"with: forensics train generator {family} --out {path}")
        found[family] = Path(path)
    return found


def world_rows(world: str | os.PathLike) -> list[ManifestRow]:
    from forensics.data.registry import create_dataset

    world = Path(world)
    if not (world / MANIFEST).is_file():
        raise ValueError(f"{world}: no synthetic world here ({MANIFEST} missing); render one with: "
                         f"forensics synth --out {world}")
    return [r for r in create_dataset("synthetic", world).rows() if r.label == "real"]


def suite_fakes(ctx, generators: dict, params: dict, with_animation: bool) -> "FakeDataset":
    """A suite's "make fakes" stage: the fake-video dataset under the suite's work folder, each fake that could
    not be made recorded as a failed cell (the suite goes on with the rest)."""
    with ctx.stage("make fakes"):
        plan = FakePlan(world=ctx.suite.world, out=str(ctx.work_dir / "fakes"), generators=generators,
                        reals=params["reals"], animation=params["animation_videos"] if with_animation else {},
                        faceswap_reconstructions=params["faceswap_reconstructions"], device=ctx.device)
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
    videos = _videos_by_identity(rows)
    maker = _Maker(out, plan.device, progress)
    fakes: list[ManifestRow] = []
    held_out: set[str] = set()
    if "faceswap" in checkpoints:
        wanted = {split for split, n in {**plan.animation, **plan.reals}.items() if n} or set(SPLITS)
        swaps, held_out = _faceswap_fakes(maker, checkpoints["faceswap"], videos, plan.faceswap_reconstructions,
                                          wanted)
        fakes += swaps
    if "animation" in checkpoints:
        fakes += _animation_fakes(maker, checkpoints["animation"], rows, videos, plan.animation)
    required = {r.meta["target_real"] for r in fakes if r.split == "train" and "target_real" in r.meta}
    reals = pick_reals(rows, plan.reals, exclude=held_out, required=required)
    manifest_rows = [_relative(r, out) for r in reals + fakes]
    write_manifest(manifest_rows, out / MANIFEST)
    return FakeDataset(root=out, rows=[_absolute(r, out) for r in manifest_rows], made=maker.made,
                       reused=maker.reused, failed=maker.failed, checkpoints=maker.checkpoints,
                       seconds=round(time.perf_counter() - started, 1))


def pick_reals(rows: list[ManifestRow], counts: dict, exclude: set[str] = frozenset(),
               required: set[str] = frozenset()) -> list[ManifestRow]:
    """`counts[split]` real videos of each split, one video per identity before any second one, after the
    `required` ones (the real footage behind train fakes) of that split."""
    rank = _video_rank(rows)
    picked = []
    for split, n in (counts or {}).items():
        if split not in SPLITS:
            raise ValueError(f"reals: unknown split {split!r} (splits: {', '.join(SPLITS)})")
        pool = sorted((r for r in rows if r.split == split and r.path not in exclude),
                      key=lambda r: (r.path not in required, rank[r.path], r.identity or "", r.path))
        picked += pool[:max(0, int(n))]
    return picked


# ---------------------------------------------------------------------- families

def _faceswap_fakes(maker: "_Maker", checkpoint: Path, videos: dict, reconstructions: bool, splits: set[str]
                    ) -> tuple[list[ManifestRow], set[str]]:
    """Swaps (and optionally reconstructions) of the pair's videos for the wanted splits; returns (rows, real
    paths to hold out)."""
    from forensics.faces import DetectorConfig, get_detector
    from generators.faceswap import load_faceswap

    loaded = load_faceswap(checkpoint, device=maker.device)
    maker.checkpoints["faceswap"] = loaded.sha256
    identities = loaded.meta.get("identities") or loaded.config.get("identities") or {}
    names = {decoder: f"id{int(number):04d}" for decoder, number in identities.items()}
    missing = [n for n in names.values() if n not in videos]
    if len(names) != 2 or missing:
        raise ValueError(f"{checkpoint}: face-swap identities {identities} are not in the world "
                         f"({', '.join(missing) or 'need two decoders'})")
    detector = get_detector(DetectorConfig(device=str(maker.device)))
    rows, held_out = [], set()
    for target_decoder, identity in names.items():
        for index, target in enumerate(videos[identity]):
            split = "train" if index == 0 else "test"
            if split == "test":
                held_out.add(target.path)
            if split not in splits:
                continue
            sources = [d for d in names if d != target_decoder] + ([target_decoder] if reconstructions else [])
            for source in sources:
                stem = Path(target.path).stem
                name = f"faceswap/{stem}_as_{names[source]}.mp4"
                key = {"family": "faceswap", "checkpoint": loaded.sha256, "target": Path(target.path).name,
                       "source": source}

                def make(path: Path, target=target, source=source) -> dict:
                    from generators.faceswap import swap_video
                    return swap_video(loaded, target.path, path, source=source, detector=detector,
                                      device=str(maker.device))

                recipe = maker.make(name, key, make)
                if recipe is not None:
                    recipe["kind"] = "reconstruction" if source == target_decoder else "swap"
                    rows.append(ManifestRow(path=str(maker.root / name), label="fake", method="faceswap",
                                            identity=identity, split=split, source="benchmarks.fakes",
                                            meta={**recipe, "target_real": target.path}))
    return rows, held_out


def _animation_fakes(maker: "_Maker", checkpoint: Path, rows: list[ManifestRow], videos: dict,
                     counts: dict) -> list[ManifestRow]:
    """`counts[split]` animated videos per split: drivers are the split's videos in turn, each animated from
    the first frame of another identity of the same split (any-to-any)."""
    from forensics.media import iter_frames, probe
    from generators.animation import load_animation

    sha = load_animation(checkpoint, device="cpu").sha256
    maker.checkpoints["animation"] = sha
    rank = _video_rank(rows)
    out = []
    for split, n in (counts or {}).items():
        if split not in SPLITS:
            raise ValueError(f"animation: unknown split {split!r} (splits: {', '.join(SPLITS)})")
        drivers = sorted((r for r in rows if r.split == split), key=lambda r: (rank[r.path], r.identity or "", r.path))
        identities = sorted({r.identity for r in drivers})
        for i in range(min(int(n), len(drivers) * max(1, len(identities) - 1))):
            driver = drivers[i % len(drivers)]
            shift = 1 + i // len(drivers)
            source_identity = identities[(identities.index(driver.identity) + shift) % len(identities)]
            source_video = videos[source_identity][0]
            name = f"animation/{Path(driver.path).stem}_from_{source_identity}.mp4"
            key = {"family": "animation", "checkpoint": sha, "driver": Path(driver.path).name,
                   "source": Path(source_video.path).name}

            def make(path: Path, driver=driver, source_video=source_video) -> dict:
                from generators.animation import animate
                with iter_frames(source_video.path) as frames:
                    still = next(iter(frames)).image
                info = probe(driver.path)
                recipe = animate(checkpoint, still, driver.path, path, output_size=min(info.width, info.height),
                                 device=str(maker.device))
                recipe["source"] = f"{source_video.path}#frame0"
                return recipe

            recipe = maker.make(name, key, make)
            if recipe is not None:
                out.append(ManifestRow(path=str(maker.root / name), label="fake", method="animation",
                                       identity=driver.identity, split=split, source="benchmarks.fakes",
                                       meta={**recipe, "source_identity": source_identity}))
    return out


# ---------------------------------------------------------------------- plumbing

class _Maker:
    """Makes one fake unless recipes.jsonl already holds it under the same key (and the file is there)."""

    def __init__(self, root: Path, device: str, progress: bool):
        from forensics.device import resolve_device

        self.root, self.progress = root, progress
        self.device = resolve_device(device)
        self.made = self.reused = 0
        self.failed: list[tuple[str, str]] = []
        self.checkpoints: dict[str, str] = {}
        self._known = {rec["path"]: rec for rec in read_jsonl(root / RECIPES) if "path" in rec}

    def make(self, name: str, key: dict, build) -> dict | None:
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        known = self._known.get(name)
        path = self.root / name
        if known and known.get("key") == digest and known.get("status") == "ok" and path.is_file():
            self.reused += 1
            return dict(known["recipe"])
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        from forensics.media import MediaError

        try:
            recipe = build(path)
        except (ValueError, OSError, MediaError) as exc:     # a video without a face, a damaged file: skip that fake
            reason = " ".join(str(exc).split())
            self.failed.append((name, reason))
            append_jsonl(self.root / RECIPES, {"path": name, "key": digest, "status": "error", "error": reason})
            if self.progress:
                print(f"fake skipped: {name}: {reason}", file=sys.stderr)
            return None
        recipe = {k: v for k, v in recipe.items() if k != "output"}
        record = {"path": name, "key": digest, "status": "ok", "recipe": recipe,
                  "seconds": round(time.perf_counter() - started, 2)}
        append_jsonl(self.root / RECIPES, record)
        self._known[name] = record
        self.made += 1
        if self.progress:
            print(f"made {name} ({record['seconds']} s)", file=sys.stderr)
        return dict(recipe)


def _videos_by_identity(rows: list[ManifestRow]) -> dict[str, list[ManifestRow]]:
    out: dict[str, list[ManifestRow]] = {}
    for row in sorted(rows, key=lambda r: r.path):
        out.setdefault(row.identity, []).append(row)
    return out


def _video_rank(rows: list[ManifestRow]) -> dict[str, int]:
    """Position of each video among its identity's videos (0 = first)."""
    return {row.path: i for group in _videos_by_identity(rows).values() for i, row in enumerate(group)}


def _relative(row: ManifestRow, root: Path) -> ManifestRow:
    meta = {k: v for k, v in row.meta.items() if k != "target_real"}
    return ManifestRow(path=os.path.relpath(row.path, root), label=row.label, method=row.method,
                       identity=row.identity, split=row.split, source=row.source or "synthetic", meta=meta)


def _absolute(row: ManifestRow, root: Path) -> ManifestRow:
    return ManifestRow(path=os.path.normpath(root / row.path), label=row.label, method=row.method,
                       identity=row.identity, split=row.split, source=row.source, meta=row.meta)

