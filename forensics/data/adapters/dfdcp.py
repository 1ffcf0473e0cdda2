"""The DFDC Preview (DFDCP): the 5,000-clip preview release of the DeepFake Detection Challenge.

Layout, as downloaded::

    dataset.json                                   {"<relative path>": {"label": "real"|"fake", "set": "train"|"test",
                                                    "target_id": ..., ...}, ...}
    original_videos/<target_id>/<clip>.mp4         real
    method_A/<target_id>/<swapped_id>/<clip>.mp4    fake (two face-swap methods, A and B)
    method_B/...

The release's own train/test sets are kept (cross-dataset results use its test set, as DeepfakeBench does);
a tenth of the train identities (by hash) become validation. A clip's identity is its target person, so a
real clip and the fakes made on that person share a split. Listed files that are absent are skipped with
one warning (partial downloads are common).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from forensics.data.adapters._common import DatasetAdapter, hash_split, sort_rows, warn_skipped
from forensics.data.manifest import ManifestRow
from forensics.data.registry import register_dataset

INDEX = "dataset.json"
LABELS = {"real": "real", "fake": "fake"}
SETS = {"train": "train", "test": "test"}


@register_dataset("dfdcp")
@dataclass
class DFDCPreview(DatasetAdapter):
    """DFDCP under ``root`` (its dataset.json at the top); ``val_fraction`` of train identities become val."""
    val_fraction: float = 0.1

    detect_priority = 45

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        index = Path(root) / INDEX
        if not index.is_file():
            return False
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return False
        first = next(iter(entries.values()), None) if isinstance(entries, dict) else None
        return isinstance(first, dict) and "set" in first and "label" in first

    def rows(self) -> list[ManifestRow]:
        self.check_fractions(self.val_fraction, 0.0)
        index = self.root_dir / INDEX
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise self.error(f"no {INDEX} at the top of the folder") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.error(f"{INDEX} is not readable JSON: {exc}") from None
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise self.error(f"{INDEX} is not a mapping of clip path -> {{label, set, ...}}")
        rows, missing = [], []
        for name in sorted(entries):
            entry, relative = entries[name], PurePosixPath(name)
            path = self.root_dir / relative
            if not path.is_file():
                missing.append(name)
                continue
            label, release_set = LABELS.get(str(entry.get("label", "")).lower()), SETS.get(str(entry.get("set")))
            if label is None or release_set is None:
                raise self.error(f"{INDEX}: {name} has label {entry.get('label')!r} and set {entry.get('set')!r} "
                                 f"(expected real/fake and train/test)")
            identity = str(entry.get("target_id") or (relative.parts[1] if len(relative.parts) > 2 else relative.stem))
            split = release_set if release_set == "test" else hash_split(f"dfdcp/{identity}", self.val_fraction, 0.0)
            rows.append(ManifestRow(path=str(path), label=label, split=split, identity=identity, source=self.name,
                                    method=relative.parts[0] if label == "fake" else "real",
                                    meta={"release_set": release_set}))
        if not rows:
            raise self.error(f"none of the {len(entries)} clips listed in {INDEX} exist")
        if missing:
            warn_skipped(f"{self.root}: {len(missing)} of {len(entries)} clips listed in {INDEX} are missing "
                         f"(first: {missing[0]}); skipped")
        return sort_rows(rows)
