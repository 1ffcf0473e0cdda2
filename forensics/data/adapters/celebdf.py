"""Celeb-DF (v2, and v1 which shares the layout).

Layout::

    Celeb-real/id0_0000.mp4            pristine celebrity video: identity id0, clip 0000
    YouTube-real/00000.mp4             pristine YouTube video: identity unknown
    Celeb-synthesis/id0_id16_0000.mp4  fake: clip id0_0000 with the face of id16
    List_of_testing_videos.txt         "<label> <relative path>" per line; label 1 = REAL, 0 = fake

The official test list is the test split. Everything else goes to train or val by a hash of its
identity, so no identity straddles train and val (the official test list itself is not identity-disjoint
from the rest; that is the benchmark's definition, kept as is). The label always comes from the folder;
the list's label is only checked against it, because its 1-means-real convention is easy to misread.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from forensics.data.adapters._common import (
    DatasetAdapter, hash_split, list_files, sort_rows, warn_skipped,
)
from forensics.data.manifest import ManifestRow
from forensics.data.registry import register_dataset

TEST_LIST = "List_of_testing_videos.txt"
LIST_LABELS = {"1": "real", "0": "fake"}  # Celeb-DF's own convention: 1 means real
METHOD = "celebdf-synthesis"

CELEB_REAL_NAME = re.compile(r"^(id\d+)_(\d+)$")
SYNTHESIS_NAME = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")


@register_dataset("celebdf")
@dataclass
class CelebDF(DatasetAdapter):
    """Celeb-DF; ``val_fraction`` of identities (by hash) go to val. ``test_list`` defaults to the official one.

    If the test list is absent a ``test_fraction`` of identities is hashed into test instead (with a
    warning), so a partial download still has a test split.
    """
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    test_list: str | os.PathLike | None = None

    detect_priority = 30

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return (root / "Celeb-real").is_dir() or (root / "Celeb-synthesis").is_dir()

    def rows(self) -> list[ManifestRow]:
        for folder in ("Celeb-real", "Celeb-synthesis"):
            if not (self.root_dir / folder).is_dir():
                raise self.error(f"no {folder}/ folder")
        listed = self._read_test_list()
        self.check_fractions(self.val_fraction, 0.0 if listed is not None else self.test_fraction)
        rows = self._celeb_real_rows() + self._youtube_rows() + self._synthesis_rows()
        if not rows:
            raise self.error("no .mp4 files in Celeb-real/, YouTube-real/ or Celeb-synthesis/")
        return sort_rows([self._with_split(row, listed) for row in rows])

    # -- rows without splits -----------------------------------------------------------------------
    def _celeb_real_rows(self) -> list[ManifestRow]:
        rows, unparsed = [], []
        for path in list_files(self.root_dir / "Celeb-real", ".mp4"):
            match = CELEB_REAL_NAME.match(path.stem)
            if match is None:
                unparsed.append(path.name)
                continue
            identity, clip = match.groups()
            rows.append(ManifestRow(path=str(path), label="real", method="real", identity=identity,
                                    source=self.name, meta={"subset": "Celeb-real", "clip": clip}))
        self._warn_unparsed("Celeb-real", unparsed, "id<k>_<nnnn>.mp4")
        return rows

    def _youtube_rows(self) -> list[ManifestRow]:
        return [ManifestRow(path=str(path), label="real", method="real", identity=None, source=self.name,
                            meta={"subset": "YouTube-real"})
                for path in list_files(self.root_dir / "YouTube-real", ".mp4")]

    def _synthesis_rows(self) -> list[ManifestRow]:
        rows, unparsed = [], []
        for path in list_files(self.root_dir / "Celeb-synthesis", ".mp4"):
            match = SYNTHESIS_NAME.match(path.stem)
            if match is None:
                unparsed.append(path.name)
                continue
            target, source, clip = match.groups()
            meta = {"subset": "Celeb-synthesis", "clip": clip, "target_id": target, "source_id": source,
                    "original": f"Celeb-real/{target}_{clip}.mp4"}
            rows.append(ManifestRow(path=str(path), label="fake", method=METHOD, identity=target,
                                    source=self.name, meta=meta))
        self._warn_unparsed("Celeb-synthesis", unparsed, "id<target>_id<source>_<nnnn>.mp4")
        return rows

    def _warn_unparsed(self, folder: str, names: list[str], pattern: str) -> None:
        if names:
            warn_skipped(f"{self.root}: {len(names)} files in {folder}/ do not match {pattern} "
                         f"(first: {names[0]}); skipped")

    # -- splits ------------------------------------------------------------------------------------
    def _with_split(self, row: ManifestRow, listed: dict[str, str] | None) -> ManifestRow:
        relative = self.relative(row.path)
        if listed is not None and relative in listed:
            row.split, row.meta["split_source"] = "test", "test-list"
            return row
        # YouTube-real clips have no known identity: each clip is its own unit.
        key = f"celebdf/{row.identity}" if row.identity is not None else f"celebdf/{relative}"
        test_fraction = 0.0 if listed is not None else self.test_fraction
        row.split, row.meta["split_source"] = hash_split(key, self.val_fraction, test_fraction), "identity-hash"
        return row

    def _read_test_list(self) -> dict[str, str] | None:
        """Relative path -> label from the list; checks the labels against the folders and warns on misfits."""
        path = Path(self.test_list) if self.test_list is not None else self.root_dir / TEST_LIST
        if not path.is_file():
            if self.test_list is not None:
                raise self.error(f"test list {self.test_list} not found")
            warn_skipped(f"{self.root}: no {TEST_LIST}; test split drawn by identity hash instead")
            return None
        listed: dict[str, str] = {}
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.error(f"{path.name} is not readable: {exc}") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or parts[0] not in LIST_LABELS:
                raise self.error(f"{path.name} line {number}: expected '<1|0> <relative path>', got {line.strip()!r}")
            listed[Path(parts[1].strip()).as_posix()] = LIST_LABELS[parts[0]]
        self._check_listed(path.name, listed)
        return listed

    def _check_listed(self, list_name: str, listed: dict[str, str]) -> None:
        missing = [rel for rel in listed if not os.path.isfile(self.absolute(rel))]
        if missing:
            warn_skipped(f"{self.root}: {len(missing)} of {len(listed)} videos in {list_name} are missing "
                         f"(first: {missing[0]})")
        mislabelled = [rel for rel, label in listed.items() if label != _folder_label(rel)]
        if mislabelled:
            warn_skipped(f"{self.root}: {len(mislabelled)} entries of {list_name} disagree with their folder "
                         f"(first: {mislabelled[0]}; 1 should mean real); labels taken from the folders")


def _folder_label(relative: str) -> str:
    return "fake" if relative.split("/", 1)[0] == "Celeb-synthesis" else "real"
