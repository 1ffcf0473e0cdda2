"""One registry for dataset adapters, timm-style.

An adapter turns a folder in some published layout (FaceForensics++, Celeb-DF, DFDC, a plain real/fake
folder, the synthetic world) into manifest rows. Callers name an adapter, or let :func:`detect_layout`
guess it from the folder, and never need to know how a layout is spelled::

    from forensics.data.registry import create_dataset, detect_layout, summarize

    name = detect_layout("data/ffpp")                 # "ffpp"
    rows = create_dataset(name, "data/ffpp", compression="c40").rows()
    print(summarize(rows))

Third-party layouts register the same way the built-in ones do (``@register_dataset("mine")``).
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, TypeVar

from forensics.data.manifest import ManifestRow
from forensics.registry import Registry


class DatasetError(ValueError):
    """A dataset folder is missing, incomplete or malformed. The message is one line naming the root."""


class DatasetWarning(UserWarning):
    """Something in a dataset was skipped (a listed file is missing, a name cannot be parsed)."""


DATASETS: Registry[type] = Registry("dataset", error=DatasetError, builtins={
    "synthetic": "forensics.data.adapters.synthetic", "folder": "forensics.data.adapters.folder",
    "ffpp": "forensics.data.adapters.ffpp", "celebdf": "forensics.data.adapters.celebdf",
    "dfdc": "forensics.data.adapters.dfdc"})

T = TypeVar("T", bound=type)


def register_dataset(name: str) -> Callable[[T], T]:
    """Class decorator: make an adapter available as ``create_dataset(name, root)``.

    The class must accept ``root`` as its first argument and keyword options after it, and offer
    ``rows() -> list[ManifestRow]``; a ``looks_like(root) -> bool`` classmethod and a ``detect_priority``
    (lower is tried first) let :func:`detect_layout` recognise its folders.
    """
    def decorate(cls: T) -> T:
        DATASETS.add(name, cls)
        cls.name = name
        return cls
    return decorate


def list_datasets() -> list[str]:
    return DATASETS.names()


def get_dataset_class(name: str) -> type:
    return DATASETS.get(name)


def create_dataset(name: str, root: str | os.PathLike, **kwargs):
    """Build the adapter ``name`` for ``root``; ``name="auto"`` guesses it with :func:`detect_layout`.

    Unknown options are reported as a one-line :class:`DatasetError` (not a ``TypeError`` traceback),
    because they usually come straight from a command line or a YAML suite.
    """
    if name == "auto":
        guessed = detect_layout(root)
        if guessed is None:
            raise DatasetError(f"{root}: cannot tell the dataset layout; name the adapter "
                               f"({', '.join(list_datasets())})")
        name = guessed
    cls = get_dataset_class(name)
    if dataclasses.is_dataclass(cls):
        accepted = {f.name for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(kwargs) - accepted)
        if unknown:
            options = ", ".join(sorted(accepted - {"root"})) or "none"
            raise DatasetError(f"{root}: dataset {name!r} has no option {unknown[0]!r} (options: {options})")
    return cls(root, **kwargs)


def detect_layout(root: str | os.PathLike) -> str | None:
    """Guess which adapter reads ``root`` from the files at its top; ``None`` when nothing fits.

    Specific layouts are tried before generic ones (a synthetic world's ``manifest.csv`` wins over the
    plain ``real/`` + ``fake/`` folder rule), so a dataset that happens to contain a ``real/`` folder
    is still read by its own adapter.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    ordered = sorted(DATASETS.load_all().items(), key=lambda item: (getattr(item[1], "detect_priority", 100), item[0]))
    for name, cls in ordered:
        looks_like = getattr(cls, "looks_like", None)
        if looks_like is None:
            continue
        try:
            if looks_like(root):
                return name
        except OSError:
            continue
    return None


def summarize(rows: Iterable[ManifestRow]) -> dict:
    """Counts for printing and sanity checks: how many rows per label, method, split and source."""
    rows = list(rows)
    by_split_label: dict[str, dict[str, int]] = {}
    for row in rows:
        cell = by_split_label.setdefault(row.split, {"real": 0, "fake": 0})
        cell[row.label] += 1
    return {
        "total": len(rows),
        "by_label": _sorted_counts(row.label for row in rows),
        "by_method": _sorted_counts(row.method for row in rows),
        "by_split": _sorted_counts(row.split for row in rows),
        "by_split_label": {split: by_split_label[split] for split in sorted(by_split_label)},
        "by_source": _sorted_counts(row.source for row in rows),
        "identities": len({row.identity for row in rows if row.identity is not None}),
    }


def _sorted_counts(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))
