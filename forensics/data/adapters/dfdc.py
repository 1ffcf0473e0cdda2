"""The DeepFake Detection Challenge (DFDC) training set, one or many parts.

Layout: the root itself, or its part folders (``dfdc_train_part_0/`` ...), hold videos and a
``metadata.json``::

    {"aaqaifqrwn.mp4": {"label": "FAKE", "split": "train", "original": "vudstovrck.mp4"},
     "vudstovrck.mp4": {"label": "REAL", "split": "train", "original": null}}

A fake's identity is its original's name and a real's identity its own, so a real clip and all the fakes
made from it land in the same split (the fakes share the real's background and person, and would leak
if split apart). Parts are often downloaded partially: listed files that are absent are skipped with
one warning, not an error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from forensics.data.adapters._common import DatasetAdapter, hash_split, sort_rows, warn_skipped
from forensics.data.manifest import ManifestRow
from forensics.data.registry import register_dataset

METADATA = "metadata.json"
METHOD = "dfdc"
LABELS = {"REAL": "real", "FAKE": "fake"}
KEPT_SPLITS = {"test": "test", "val": "val", "validation": "val"}  # metadata splits that override the hash
SPLIT_PRIORITY = {"test": 2, "val": 1}


@register_dataset("dfdc")
@dataclass
class DFDC(DatasetAdapter):
    """DFDC parts under ``root``; ``val_fraction``/``test_fraction`` of identities (by hash) go to val/test."""
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    detect_priority = 40

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        candidates = _metadata_files(root)
        return bool(candidates) and _looks_like_dfdc_metadata(candidates[0])

    def rows(self) -> list[ManifestRow]:
        self.check_fractions(self.val_fraction, self.test_fraction)
        metadata_files = _metadata_files(self.root_dir)
        if not metadata_files:
            raise self.error(f"no {METADATA} in the folder or in its part folders (dfdc_train_part_N/)")
        rows, listed, missing = [], 0, []
        for metadata in metadata_files:
            part_rows, part_missing = self._part_rows(metadata)
            rows += part_rows
            missing += part_missing
            listed += len(part_rows) + len(part_missing)
        if not rows:
            raise self.error(f"none of the {listed} files listed in {METADATA} exist")
        if missing:
            warn_skipped(f"{self.root}: {len(missing)} of {listed} files listed in {METADATA} are missing "
                         f"(first: {missing[0]}); skipped")
        return sort_rows(self._assign_splits(rows))

    def _part_rows(self, metadata: Path) -> tuple[list[ManifestRow], list[str]]:
        where = self.relative(metadata)
        entries = self._read_metadata(metadata, where)
        part = self.relative(metadata.parent)
        rows, missing = [], []
        for name in sorted(entries):
            entry = entries[name]
            path = metadata.parent / name
            if not path.is_file():
                missing.append(self.relative(path))
                continue
            label = LABELS.get(str(entry.get("label", "")).upper())
            if label is None:
                raise self.error(f"{where}: {name} has label {entry.get('label')!r}, not REAL or FAKE")
            original = entry.get("original") or None
            identity = Path(original if (label == "fake" and original) else name).stem
            rows.append(ManifestRow(path=str(path), label=label, method=METHOD if label == "fake" else "real",
                                    identity=identity, source=self.name,
                                    meta={"part": part, "original": original,
                                          "metadata_split": entry.get("split")}))
        return rows, missing

    def _read_metadata(self, metadata: Path, where: str) -> dict[str, dict]:
        try:
            entries = json.loads(metadata.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.error(f"{where} is not readable JSON: {exc}") from None
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise self.error(f"{where} is not a mapping of file name -> {{label, split, original}}")
        return entries

    def _assign_splits(self, rows: list[ManifestRow]) -> list[ManifestRow]:
        """One split per identity: a test/val split named in the metadata wins for the whole group."""
        named: dict[str, str] = {}
        for row in rows:
            split = KEPT_SPLITS.get(str(row.meta.get("metadata_split") or "").lower())
            if split and SPLIT_PRIORITY[split] > SPLIT_PRIORITY.get(named.get(row.identity, ""), 0):
                named[row.identity] = split
        for row in rows:
            if row.identity in named:
                row.split, row.meta["split_source"] = named[row.identity], "metadata"
            else:
                row.split = hash_split(f"dfdc/{row.identity}", self.val_fraction, self.test_fraction)
                row.meta["split_source"] = "identity-hash"
        return rows


def _metadata_files(root: Path) -> list[Path]:
    """``root/metadata.json`` and ``root/<part>/metadata.json``, sorted (parts by number, not text)."""
    found = [root / METADATA] if (root / METADATA).is_file() else []
    try:
        parts = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        parts = []
    found += sorted((p / METADATA for p in parts if (p / METADATA).is_file()), key=lambda p: _natural(p.parent.name))
    return found


def _natural(name: str) -> tuple:
    head, _, tail = name.rpartition("_")
    return (head, int(tail), "") if tail.isdigit() else (name, -1, name)


def _looks_like_dfdc_metadata(path: Path) -> bool:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(entries, dict) or not entries:
        return False
    first = next(iter(entries.values()))
    return isinstance(first, dict) and str(first.get("label", "")).upper() in LABELS
