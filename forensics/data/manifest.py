"""The manifest: the one table every dataset adapter produces and every consumer reads.

A row is one clip or image with its label, the method that made it (``"real"`` for pristine media),
the identity shown, and its split. ``meta`` carries the recipe of a fake (generator, checkpoint, mask,
blending, codec...) or an adapter's extras, so detectors and benchmarks can be sliced by artifact.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from forensics.io import atomic_path

LABELS = ("real", "fake")
SPLITS = ("train", "val", "test")
FIELDS = ("path", "label", "method", "identity", "split", "source", "meta")


@dataclass
class ManifestRow:
    path: str                       # absolute, or relative to the manifest's folder
    label: str                      # "real" | "fake"
    method: str = "real"            # generator / manipulation name; "real" for pristine media
    identity: str | None = None     # who is shown (for fakes: the target identity, source in meta)
    split: str = "train"            # "train" | "val" | "test"
    source: str = ""                # dataset adapter that produced the row
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.label not in LABELS:
            raise ValueError(f"label must be one of {LABELS}, got {self.label!r} for {self.path}")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r} for {self.path}")

    @property
    def is_fake(self) -> bool:
        return self.label == "fake"

    def to_dict(self) -> dict:
        return asdict(self)


def write_manifest(rows: Iterable[ManifestRow], path: str | os.PathLike) -> Path:
    """Write rows as CSV (``meta`` as a JSON column), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            for row in rows:
                d = row.to_dict()
                d["meta"] = json.dumps(d["meta"], sort_keys=True)
                d["identity"] = "" if d["identity"] is None else d["identity"]
                writer.writerow(d)
    return path


def read_manifest(path: str | os.PathLike, resolve: bool = True) -> list[ManifestRow]:
    """Read a manifest CSV; relative paths are resolved against the manifest's folder."""
    path = Path(path)
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            p = rec["path"]
            if resolve and not os.path.isabs(p):
                p = str((path.parent / p).resolve())
            rows.append(ManifestRow(
                path=p, label=rec["label"], method=rec.get("method") or "real",
                identity=rec.get("identity") or None, split=rec.get("split") or "train",
                source=rec.get("source") or "", meta=json.loads(rec.get("meta") or "{}"),
            ))
    return rows


def videos_by_identity(rows: Iterable[ManifestRow]) -> dict[str | None, list[ManifestRow]]:
    """Each identity's rows, sorted by path (so "its first video" means the same file everywhere)."""
    out: dict[str | None, list[ManifestRow]] = {}
    for row in sorted(rows, key=lambda r: r.path):
        out.setdefault(row.identity, []).append(row)
    return out


def video_rank(rows: Iterable[ManifestRow]) -> dict[str, int]:
    """Position of each video among its identity's videos (0 = first)."""
    return {row.path: i for group in videos_by_identity(rows).values() for i, row in enumerate(group)}


def identity_spread(rows: Iterable[ManifestRow]) -> Callable[[ManifestRow], tuple]:
    """A sort key over `rows`' videos that takes one video of every identity before any identity's second (each
    identity's first video by path, then its second, ...): what benchmarks pick reals and fakes in."""
    rank = video_rank(rows)
    return lambda row: (rank[row.path], row.identity or "", row.path)
