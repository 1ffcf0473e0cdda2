"""The built-in synthetic face world: read the manifest its renderer wrote.

The renderer (``forensics synth --out DIR``) already labels, names identities and splits by identity,
so this adapter only reads ``DIR/manifest.csv``. It never renders: rendering is slow and has options
(identities, frames, seed) that belong to the ``synth`` command, not to whoever asks for rows.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from forensics.data.adapters._common import DatasetAdapter, sort_rows, warn_skipped
from forensics.data.manifest import ManifestRow, read_manifest
from forensics.data.registry import register_dataset

MANIFEST_NAME = "manifest.csv"


@register_dataset("synthetic")
@dataclass
class SyntheticWorld(DatasetAdapter):
    """Rows of a rendered synthetic world (``root/manifest.csv``); listed files that are gone are skipped."""

    detect_priority = 10

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return (root / MANIFEST_NAME).is_file()

    def rows(self) -> list[ManifestRow]:
        manifest = self.root_dir / MANIFEST_NAME
        if not manifest.is_file():
            raise self.error(f"no {MANIFEST_NAME}; render the synthetic world first: "
                             f"forensics synth --out {self.root}")
        try:
            listed = read_manifest(manifest)
        except (ValueError, KeyError, csv.Error, json.JSONDecodeError, UnicodeDecodeError) as exc:
            reason = f"missing column {exc}" if isinstance(exc, KeyError) else str(exc)
            raise self.error(f"{MANIFEST_NAME} is malformed: {reason}") from None
        present = [row for row in listed if os.path.isfile(row.path)]
        if len(present) < len(listed):
            warn_skipped(f"{self.root}: {len(listed) - len(present)} of {len(listed)} files listed in "
                         f"{MANIFEST_NAME} are missing; skipped")
        return sort_rows([_as_ours(row) for row in present])


def _as_ours(row: ManifestRow) -> ManifestRow:
    """Mark the row as ours, keeping a different producer (a generator's render) in meta."""
    meta = dict(row.meta)
    if row.source and row.source != "synthetic":
        meta.setdefault("manifest_source", row.source)
    return replace(row, path=os.path.normpath(row.path), source="synthetic", meta=meta)
