"""What every adapter shares: the base class, media extensions, deterministic splits, folder walking.

Splits are derived from a SHA-256 of a stable key (a relative path or an identity), never from Python's
``hash()`` (salted per process) or from file order, so the same folder gives the same split on every
machine and every run, and adding files never moves the old ones between splits.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

from forensics.data.manifest import ManifestRow
from forensics.data.registry import DatasetError, DatasetWarning

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS


def is_media_name(name: str) -> bool:
    """By extension only: content sniffing is forensics.media's job, and would mean opening every file."""
    return not name.startswith(".") and Path(name).suffix.lower() in MEDIA_EXTENSIONS


def hash_fraction(key: str) -> float:
    """A stable number in [0, 1) for ``key``: the same on every machine and Python process."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def hash_split(key: str, val_fraction: float, test_fraction: float) -> str:
    u = hash_fraction(key)
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def list_media_files(folder: Path, keep: Callable[[Path], bool] | None = None,
                     unreadable: list[tuple[str, str]] | None = None) -> list[Path]:
    """Media files under ``folder``, recursively, sorted; hidden files and folders are skipped.

    `keep` decides which files count (default: a media extension). Folders that cannot be listed are
    appended to `unreadable` as (path, reason) when it is given, so the caller can say so.
    Folder symlinks are followed (datasets are often assembled from links) but each real folder is
    visited once, so a link loop cannot hang the walk.
    """
    found: list[Path] = []
    seen: set[str] = set()

    def note(error: OSError) -> None:
        if unreadable is not None:
            unreadable.append((str(error.filename), error.strerror or type(error).__name__))

    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True, onerror=note):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        paths = (Path(dirpath) / f for f in sorted(filenames))
        found.extend(p for p in paths if (keep(p) if keep else is_media_name(p.name)))
    return sorted(found)


def list_files(folder: Path, suffix: str) -> list[Path]:
    """Plain (non-recursive) files in ``folder`` with ``suffix``, sorted; hidden files skipped."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() == suffix and not p.name.startswith(".") and p.is_file())


def warn_skipped(message: str) -> None:
    warnings.warn(message, DatasetWarning, stacklevel=3)


def sort_rows(rows: list[ManifestRow]) -> list[ManifestRow]:
    return sorted(rows, key=lambda row: row.path)


@dataclass
class DatasetAdapter:
    """Base of the built-in adapters: holds the root, checks it, and builds paths and errors.

    Subclasses are dataclasses whose extra fields are the adapter's options (so ``create_dataset``
    can report an unknown option in one line) and implement :meth:`rows`.
    """
    root: str | os.PathLike

    name: ClassVar[str] = ""
    detect_priority: ClassVar[int] = 100

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.exists():
            raise self.error("no such folder")
        if not self.root.is_dir():
            raise self.error("not a folder")
        self.root_dir = Path(os.path.abspath(self.root))

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return False

    def rows(self) -> list[ManifestRow]:
        raise NotImplementedError

    def error(self, reason: str) -> DatasetError:
        return DatasetError(" ".join(f"{self.root}: {reason}".split()))

    def absolute(self, relative: str | os.PathLike) -> str:
        return os.path.normpath(os.path.join(self.root_dir, relative))

    def relative(self, path: str | os.PathLike) -> str:
        return Path(os.path.relpath(path, self.root_dir)).as_posix()

    def check_fractions(self, val_fraction: float, test_fraction: float = 0.0) -> None:
        if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
            raise self.error(f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be "
                             f"non-negative and sum to less than 1")
