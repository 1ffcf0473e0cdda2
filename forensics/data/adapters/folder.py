"""A plain folder of media: ``real/`` and ``fake/`` subfolders, or a CSV of ``path,label``.

This is the adapter for data that has no published layout: a user's own clips, a scrape, an export
from another tool. Rows without a split get one from a hash of their relative path, so the split of a
file never changes when other files are added or removed.
"""
from __future__ import annotations

import csv as csvlib
import os
from dataclasses import dataclass
from pathlib import Path

from forensics.data.adapters._common import (
    DatasetAdapter, hash_split, list_media_files, sort_rows, warn_skipped,
)
from forensics.data.manifest import SPLITS, ManifestRow
from forensics.data.registry import register_dataset

LABELS_CSV = "labels.csv"
LABEL_ALIASES = {"real": "real", "0": "real", "fake": "fake", "1": "fake"}
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
KNOWN_COLUMNS = ("path", "label", "split", "method", "identity")


@register_dataset("folder")
@dataclass
class MediaFolder(DatasetAdapter):
    """``real/`` + ``fake/`` folders (method = first folder under ``fake/``), or a label CSV.

    The CSV is ``csv=`` if given, else ``root/labels.csv``; its relative paths are relative to ``root``.
    Columns ``path,label`` are required; ``split``, ``method`` and ``identity`` are optional, and any other
    column is kept in ``meta`` (a fake's recipe, say). Labels: real/fake or 0/1 (1 = fake), any case.
    """
    csv: str | os.PathLike | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    detect_priority = 90  # the most generic layout: tried last

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return (root / LABELS_CSV).is_file() or bool(_label_dirs(root, "real") or _label_dirs(root, "fake"))

    def rows(self) -> list[ManifestRow]:
        self.check_fractions(self.val_fraction, self.test_fraction)
        if self.csv is not None:
            csv_path = Path(self.csv)
            if not csv_path.is_file():
                raise self.error(f"label CSV {self.csv} not found")
            return self._rows_from_csv(csv_path)
        if (self.root_dir / LABELS_CSV).is_file():
            return self._rows_from_csv(self.root_dir / LABELS_CSV)
        return self._rows_from_folders()

    def _split_for(self, absolute_path: str) -> str:
        return hash_split(self.relative(absolute_path), self.val_fraction, self.test_fraction)

    def _rows_from_folders(self) -> list[ManifestRow]:
        real_dirs, fake_dirs = _label_dirs(self.root_dir, "real"), _label_dirs(self.root_dir, "fake")
        if not real_dirs and not fake_dirs:
            raise self.error(f"no real/ or fake/ folder and no {LABELS_CSV}")
        rows = []
        for label, folders in (("real", real_dirs), ("fake", fake_dirs)):
            for folder in folders:
                for path in list_media_files(folder):
                    method = "real" if label == "real" else _method_from_subfolder(path, folder)
                    absolute = str(path)
                    rows.append(ManifestRow(path=absolute, label=label, method=method,
                                            split=self._split_for(absolute), source=self.name,
                                            meta={"split_source": "hash"}))
        if not rows:
            raise self.error("no media files under real/ or fake/")
        return sort_rows(rows)

    def _rows_from_csv(self, csv_path: Path) -> list[ManifestRow]:
        where = csv_path.name if csv_path.parent.resolve() == self.root_dir.resolve() else str(csv_path)
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as fh:
                records = list(_read_records(fh))
        except (csvlib.Error, UnicodeDecodeError) as exc:
            raise self.error(f"{where} is not a readable CSV: {exc}") from None
        if not records:
            raise self.error(f"{where} has no rows")
        columns = records[0][1].keys()
        for required in ("path", "label"):
            if required not in columns:
                raise self.error(f"{where} has no {required!r} column (columns: {', '.join(columns)})")
        rows, missing = [], 0
        for line, record in records:
            row = self._row_from_record(record, f"{where} line {line}")
            if os.path.isfile(row.path):
                rows.append(row)
            else:
                missing += 1
        if missing:
            warn_skipped(f"{self.root}: {missing} of {len(records)} files listed in {where} are missing; skipped")
        if not rows:
            raise self.error(f"none of the files listed in {where} exist")
        return sort_rows(rows)

    def _row_from_record(self, record: dict[str, str], where: str) -> ManifestRow:
        raw_path = record.get("path", "")
        if not raw_path:
            raise self.error(f"{where}: empty path")
        label = LABEL_ALIASES.get(record.get("label", "").lower())
        if label is None:
            raise self.error(f"{where}: label {record.get('label')!r} is not real/fake or 0/1")
        absolute = raw_path if os.path.isabs(raw_path) else self.absolute(raw_path)
        raw_split = record.get("split", "")
        if raw_split:
            split = SPLIT_ALIASES.get(raw_split.lower())
            if split is None:
                raise self.error(f"{where}: split {raw_split!r} is not one of {', '.join(SPLITS)}")
            meta = {"split_source": "csv"}
        else:
            split, meta = self._split_for(absolute), {"split_source": "hash"}
        meta.update({k: v for k, v in record.items() if k not in KNOWN_COLUMNS and v})
        method = "real" if label == "real" else (record.get("method") or "fake")
        return ManifestRow(path=os.path.normpath(absolute), label=label, method=method,
                           identity=record.get("identity") or None, split=split, source=self.name, meta=meta)


def _read_records(fh) -> list[tuple[int, dict[str, str]]]:
    """CSV records keyed by lower-cased column name, with surrounding spaces stripped, and line numbers."""
    reader = csvlib.DictReader(fh)
    out = []
    for record in reader:
        cleaned = {(k or "").strip().lower(): (v or "").strip() if isinstance(v, str) else ""
                   for k, v in record.items() if k is not None}
        if any(cleaned.values()):
            out.append((reader.line_num, cleaned))
    return out


def _label_dirs(root: Path, label: str) -> list[Path]:
    """``real``/``fake`` folders directly under ``root``, whatever their case (``Real``, ``FAKE``)."""
    try:
        return sorted(p for p in root.iterdir() if p.name.lower() == label and p.is_dir())
    except OSError:
        return []


def _method_from_subfolder(path: Path, fake_dir: Path) -> str:
    parts = path.relative_to(fake_dir).parts
    return parts[0] if len(parts) > 1 else "fake"
