"""A dataset folder to a filled face-crop cache: what `forensics preprocess` and every training job start with.

The layout is named or guessed (forensics.data.registry), the adapter lists the clips, and the cache runs
the one face path over them once; per-file failures are in the report, never raised. A folder that is
missing, of no known layout or malformed is a DatasetError with one line naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forensics.data.cache import BuildReport, CacheConfig, FaceCache
from forensics.data.manifest import ManifestRow
from forensics.data.registry import DatasetError, create_dataset, detect_layout


@dataclass
class CachedDataset:
    cache: FaceCache
    report: BuildReport
    dataset: str                # the adapter that read the folder
    rows: list[ManifestRow]     # the clips that were cached (after split / limit)


def cache_dataset(root: str | Path, config: CacheConfig, dataset: str | None = None,
                  cache_dir: str | Path | None = None, split: str | None = None, limit: int | None = None,
                  progress: bool = True, options: dict | None = None) -> CachedDataset:
    """Cache the faces of the dataset at `root` (default cache folder: ROOT/face_cache, or
    ROOT/face_cache_clips for a cache of clips); `split` keeps one
    split, `limit` the first N clips (quick looks); `options` go to the adapter (e.g. FF++'s compression)."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    dataset = dataset or detect_layout(root)
    if dataset is None:
        raise DatasetError(f"{root}: cannot tell the dataset layout; pass --dataset")
    try:
        rows = create_dataset(dataset, root, **(options or {})).rows()
    except (KeyError, ValueError) as exc:
        raise DatasetError(" ".join(str(exc).split())) from None
    if split:
        rows = [r for r in rows if r.split == split]
    if limit:
        rows = rows[:limit]
    # Clip caches (windows of consecutive frames) live apart, so a frame and a clip detector trained on the
    # same dataset do not invalidate each other's crops.
    default = "face_cache_clips" if config.clip_len and config.clip_len > 1 else "face_cache"
    cache = FaceCache(Path(cache_dir) if cache_dir else root / default, config)
    return CachedDataset(cache, cache.build(rows, progress=progress), dataset, rows)
