"""Which files a `forensics detect` run analyses, and which of them a previous run already did.

Files named on the command line are always analysed (a wrong one is reported, not skipped). Inside
folders, only media files are taken: by extension, or, for names with an unknown extension, by magic
bytes, so a folder of clips can also hold notes, results and reports without those turning into errors.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from forensics.data.adapters import MEDIA_EXTENSIONS
from forensics.data.adapters._common import list_media_files
from forensics.media.sniff import read_head, sniff_signature

EXTRA_EXTENSIONS = frozenset({".gif", ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".heic", ".avif", ".jp2"})
# Extensions of files that are never media; not worth opening to sniff.
NEVER_MEDIA = frozenset({".json", ".jsonl", ".txt", ".md", ".html", ".htm", ".csv", ".yaml", ".yml", ".py",
                         ".log", ".safetensors", ".pt", ".db", ".sqlite", ".zip", ".tar", ".gz", ".pdf",
                         # audio: a folder of clips often holds their sound; named on the command line, one still
                         # gets its record ("no video stream (audio only)")
                         ".m4a", ".mp3", ".wav", ".flac", ".aac", ".opus", ".wma", ".aiff", ".amr"})
AUDIO_LABELS = frozenset({"WAV", "audio/Ogg"})


class InputError(ValueError):
    """A usage problem with the inputs (missing path); the CLI exits 2 on it."""


def is_media_file(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    suffix = path.suffix.lower()
    if suffix in MEDIA_EXTENSIONS or suffix in EXTRA_EXTENSIONS:
        return True
    if suffix in NEVER_MEDIA:
        return False
    try:
        signature = sniff_signature(read_head(path))
    except OSError:
        return False
    return signature is not None and signature.label not in AUDIO_LABELS


def media_in_folder(folder: Path, unreadable: list[tuple[str, str]] | None = None) -> list[Path]:
    """Media files under `folder` (by extension, or by content for unknown extensions), recursively,
    sorted, hidden entries skipped, each real folder once; folders that cannot be listed go to `unreadable`."""
    return list_media_files(folder, keep=lambda p: p.is_file() and is_media_file(p), unreadable=unreadable)


def collect_inputs(inputs: Sequence[str | os.PathLike], unreadable: list[tuple[str, str]] | None = None) -> list[Path]:
    """Expand folders, keep the command line's order otherwise, drop repeats. Raises InputError for a
    path that does not exist; folders that cannot be listed go to `unreadable` as (path, reason)."""
    out: list[Path] = []
    seen: set[str] = set()
    for raw in inputs:
        path = Path(raw)
        if not path.exists() and not path.is_symlink():
            raise InputError(f"{raw}: no such file or folder")
        for item in media_in_folder(path, unreadable) if path.is_dir() else [path]:
            key = path_key(item)
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


def path_key(path: str | os.PathLike) -> str:
    """How two spellings of one file compare (relative vs absolute, `./a` vs `a`)."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def done_paths(records: Iterable[dict]) -> dict[str, dict]:
    """Last record per input path, keyed by `path_key`, from a previous run's JSONL (a name that is not UTF-8
    by its exact bytes, `path_bytes`)."""
    return {path_key(record_path(r)): r for r in records if isinstance(r, dict) and isinstance(r.get("path"), str)}


def record_path(record: dict) -> str:
    """The input a record names, as the file system spells it."""
    raw = record.get("path_bytes")
    if isinstance(raw, str):
        try:
            return os.fsdecode(bytes.fromhex(raw))
        except ValueError:
            pass
    return record["path"]
