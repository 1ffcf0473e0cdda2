"""The face-crop cache: run the face pipeline once per dataset, then every stage reads crops from here.

Each source file gets one entry: the frames sampled, the faces found (box, landmarks, probability, track)
and its aligned crops in one ``.npy`` array. Entries are keyed in two levels so that a change costs only
what it invalidates:

- the *detection key* (source file contents + frame sampling + detector and tracker settings): when it
  changes, frames are decoded and MTCNN runs again;
- the *crop key* (crop size + margin): when only it changes, the stored landmarks are reused and frames
  are re-aligned without running the detector.

The index is an append-only JSONL (one record per finished source, newest wins) so an interrupted
build keeps everything finished before the interruption; it is compacted atomically at the end.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from forensics.data.manifest import ManifestRow
from forensics.faces.crops import CropSpec, aligned_crop
from forensics.faces.detector import Face
from forensics.faces.pipeline import FaceConfig, FacePipeline
from forensics.io import append_jsonl, atomic_path, atomic_write_text, read_jsonl, sha256_file
from forensics.media import MediaError, sample_frames
from forensics.progress import progress_bar

# 2: faces are found with forensics.faces.FaceConfig (the settings `forensics detect` uses).
CACHE_VERSION = 2


@dataclass
class CacheConfig:
    frames: int = 16                 # frames sampled evenly per video (images give one)
    every: int | None = None         # or every k-th frame instead (overrides `frames`)
    clip_len: int | None = None      # take `frames` as windows of this many consecutive frames (clip models)
    crop_size: int = 224
    margin: float = 0.25
    faces: FaceConfig = field(default_factory=FaceConfig)
    device: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.faces, dict):         # as settings.json stores it
            self.faces = FaceConfig(**self.faces)

    @property
    def crop(self) -> CropSpec:
        return CropSpec(self.crop_size, self.margin)

    def detection_key(self) -> str:
        sampling = {"frames": self.frames, "every": self.every, "faces": self.faces.to_dict(), "version": CACHE_VERSION}
        if self.clip_len and self.clip_len > 1 and not self.every:   # keys of older caches stay as they were
            sampling["clip_len"] = self.clip_len
        return _digest(sampling)

    def crop_key(self) -> str:
        return _digest({"crop_size": self.crop_size, "margin": self.margin})


@dataclass
class CacheEntry:
    """One source file's record in the index."""
    source: str
    status: str                                  # "ok" | "no_face" | "error"
    error: str | None = None
    label: str | None = None
    method: str | None = None
    identity: str | None = None
    split: str | None = None
    size: int | None = None
    mtime_ns: int | None = None
    sha256: str | None = None
    detection_key: str | None = None
    crop_key: str | None = None
    crops_file: str | None = None                # relative to the cache root
    frames_sampled: list[int] = field(default_factory=list)
    no_face_frames: list[int] = field(default_factory=list)
    faces: list[dict] = field(default_factory=list)   # per crop: frame, t, track, box, prob, landmarks
    complete: bool = True                        # False when the source was corrupt mid-file
    warning: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "CacheEntry":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class BuildReport:
    processed: int = 0        # detector ran
    recropped: int = 0        # landmarks reused, crops redone
    skipped: int = 0          # already cached and current (unchanged bad files included)
    errors: list[tuple[str, str]] = field(default_factory=list)
    no_face: int = 0
    frames: int = 0           # frames through the detector this run

    @property
    def failed(self) -> int:
        return len(self.errors)


class FaceCache:
    """A folder of aligned face crops plus an index; see the module docstring for the invalidation rules."""

    def __init__(self, root: str | os.PathLike, config: CacheConfig | None = None):
        self.root = Path(root)
        self.config = config or CacheConfig()
        self.index_path = self.root / "index.jsonl"
        self._pipeline = None
        self._entries: dict[str, CacheEntry] = {
            rec["source"]: CacheEntry.from_dict(rec) for rec in read_jsonl(self.index_path) if "source" in rec
        }

    @classmethod
    def open(cls, root: str | os.PathLike) -> "FaceCache":
        """An existing cache with the settings it was built with (settings.json)."""
        settings = json.loads((Path(root) / "settings.json").read_text())
        return cls(root, CacheConfig(**settings["config"]))

    # ------------------------------------------------------------------ reading
    def entries(self, split: str | None = None, label: str | None = None,
                status: str | None = "ok") -> list[CacheEntry]:
        out = [e for e in self._entries.values()
               if (status is None or e.status == status) and (split is None or e.split == split)
               and (label is None or e.label == label)]
        return sorted(out, key=lambda e: e.source)

    def load_crops(self, entry: CacheEntry, mmap: bool = True) -> np.ndarray:
        if not entry.crops_file:
            return np.zeros((0, self.config.crop_size, self.config.crop_size, 3), np.uint8)
        return np.load(self.root / entry.crops_file, mmap_mode="r" if mmap else None, allow_pickle=False)

    def iter_crops(self, split: str | None = None, label: str | None = None) -> Iterator[tuple[np.ndarray, dict]]:
        """Yield (crop, info) for every cached face, info carrying the source's labels and the face record."""
        for entry in self.entries(split=split, label=label):
            crops = self.load_crops(entry)
            for i, face in enumerate(entry.faces):
                yield np.asarray(crops[i]), {"source": entry.source, "label": entry.label,
                                             "method": entry.method, "identity": entry.identity,
                                             "split": entry.split, **face}

    # ------------------------------------------------------------------ building
    def is_current(self, row: ManifestRow) -> bool:
        entry = self._entries.get(_source_key(row.path))
        return entry is not None and self._state(entry, row.path) == "current"

    def build(self, rows: Sequence[ManifestRow], progress: bool = True) -> BuildReport:
        """Bring the cache up to date for `rows`; per-file errors are recorded, never raised."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_settings()
        report = BuildReport()
        bar = progress_bar(rows, desc="preprocess", unit="file", enabled=progress)
        try:
            for row in bar:
                key = _source_key(row.path)
                entry = self._entries.get(key)
                state = self._state(entry, row.path) if entry else "missing"
                if state == "current":
                    report.skipped += 1
                    self._relabel(entry, row)
                    if entry.status == "error":  # unchanged bad file: it would fail the same way again
                        report.errors.append((row.path, entry.error or "unknown error"))
                    continue
                if state == "recrop":
                    new = self._recrop(entry, row)
                    if new.status == "ok":
                        report.recropped += 1
                else:
                    new = self._process(row)
                    report.processed += 1 if new.status != "error" else 0
                    report.frames += len(new.frames_sampled)
                if new.status == "error":
                    report.errors.append((row.path, new.error or "unknown error"))
                elif new.status == "no_face":
                    report.no_face += 1
                self._entries[key] = new
                append_jsonl(self.index_path, asdict(new))
                bar.set_postfix(ok=report.processed + report.recropped, skip=report.skipped,
                                err=report.failed, refresh=False)
        finally:
            bar.close()
            self.compact()
        return report

    def compact(self) -> None:
        """Rewrite the index with one line per source (atomic), and drop crop files nobody points to."""
        if not self.root.exists():
            return
        lines = [json.dumps(asdict(e)) for e in sorted(self._entries.values(), key=lambda e: e.source)]
        atomic_write_text(self.index_path, "\n".join(lines) + ("\n" if lines else ""))
        live = {e.crops_file for e in self._entries.values() if e.crops_file}
        crops_dir = self.root / "crops"
        if crops_dir.exists():
            for f in crops_dir.glob("*.npy"):
                if f"crops/{f.name}" not in live:
                    f.unlink(missing_ok=True)

    # ------------------------------------------------------------------ internals
    def _state(self, entry: CacheEntry, path: str) -> str:
        """'current', 'recrop' (only the crop settings changed) or 'stale'."""
        try:
            st = os.stat(path)
        except OSError:
            return "stale"
        if entry.detection_key != self.config.detection_key() or (entry.status == "error" and not entry.sha256):
            return "stale"  # settings changed, or the file could not even be read last time
        if (entry.size, entry.mtime_ns) != (st.st_size, st.st_mtime_ns):
            # Touched but maybe not changed: only a different hash invalidates.
            if entry.sha256 != sha256_file(path):
                return "stale"
            entry.mtime_ns = st.st_mtime_ns
        if entry.status == "ok" and entry.crop_key != self.config.crop_key():
            return "recrop"
        if entry.status == "ok" and not (self.root / (entry.crops_file or "")).is_file():
            return "recrop"
        return "current"

    def _relabel(self, entry: CacheEntry, row: ManifestRow) -> None:
        """Labels live in the manifest, not the media: keep the index in step without recomputing."""
        fields = {"label": row.label, "method": row.method, "identity": row.identity, "split": row.split}
        if any(getattr(entry, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(entry, k, v)
            append_jsonl(self.index_path, asdict(entry))

    def _base_entry(self, row: ManifestRow) -> CacheEntry:
        entry = CacheEntry(source=_source_key(row.path), status="error", label=row.label, method=row.method,
                           identity=row.identity, split=row.split,
                           detection_key=self.config.detection_key(), crop_key=self.config.crop_key())
        try:
            st = os.stat(row.path)
            entry.size, entry.mtime_ns = st.st_size, st.st_mtime_ns
            entry.sha256 = sha256_file(row.path)
        except OSError as exc:
            entry.error = f"{row.path}: cannot read file ({exc.strerror or exc})"
        return entry

    def _process(self, row: ManifestRow) -> CacheEntry:
        entry = self._base_entry(row)
        if entry.error:
            return entry
        cfg = self.config
        try:
            sample = sample_frames(row.path, n=None if cfg.every else cfg.frames, every=cfg.every,
                                   clip_len=None if cfg.every else cfg.clip_len)
            images = [f.image for f in sample.frames]
            result = self.face_pipeline().run(images, [f.index for f in sample.frames],
                                               [f.t for f in sample.frames])
        except MediaError as exc:
            entry.error = _one_line(str(exc))
            return entry
        except Exception as exc:  # a bad file must never end the batch
            entry.error = _one_line(f"{row.path}: {type(exc).__name__}: {exc}")
            return entry
        entry.frames_sampled = [f.index for f in sample.frames]
        entry.complete, entry.warning = sample.complete, sample.warning
        entry.no_face_frames = list(result.no_face_frames)
        entry.faces = [_face_record(c) for c in result.crops]
        self._store_crops(entry, [c.crop for c in result.crops])
        return entry

    def _recrop(self, old: CacheEntry, row: ManifestRow) -> CacheEntry:
        entry = CacheEntry(**{**asdict(old), "crop_key": self.config.crop_key(), "label": row.label,
                              "method": row.method, "identity": row.identity, "split": row.split})
        wanted = sorted({f["frame"] for f in old.faces})
        try:
            sample = sample_frames(row.path, n=None if self.config.every else self.config.frames,
                                   every=self.config.every, clip_len=None if self.config.every else self.config.clip_len)
        except Exception as exc:
            return CacheEntry(**{**asdict(entry), "status": "error", "error": _one_line(str(exc))})
        images = {f.index: f.image for f in sample.frames if f.index in wanted}
        crops = []
        for face in old.faces:
            image = images.get(face["frame"])
            if image is None:  # the decoder no longer yields that frame: fall back to a full pass
                return self._process(row)
            crops.append(aligned_crop(image, stored_face(face), self.config.crop)[0])
        self._store_crops(entry, crops)
        return entry

    def _store_crops(self, entry: CacheEntry, crops: list[np.ndarray]) -> None:
        if not crops:
            entry.status, entry.crops_file = "no_face", None
            return
        name = f"crops/{hashlib.sha1(entry.source.encode()).hexdigest()[:16]}-{entry.crop_key[:8]}.npy"
        with atomic_path(self.root / name) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.stack(crops).astype(np.uint8), allow_pickle=False)
        entry.status, entry.crops_file, entry.error = "ok", name, None

    def face_pipeline(self) -> FacePipeline:
        """The one face path (forensics.faces.FacePipeline) with this cache's crop and face settings."""
        if self._pipeline is None:
            self._pipeline = FacePipeline(self.config.crop, self.config.faces, device=self.config.device)
        return self._pipeline

    def _write_settings(self) -> None:
        settings = {"version": CACHE_VERSION, "config": asdict(self.config),
                    "detection_key": self.config.detection_key(), "crop_key": self.config.crop_key()}
        atomic_write_text(self.root / "settings.json", json.dumps(settings, indent=2) + "\n")


def _face_record(crop) -> dict:
    return {"frame": int(crop.frame), "t": float(crop.t), "track": int(crop.track),
            "box": [round(float(v), 2) for v in crop.box], "prob": round(float(crop.prob), 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(crop.landmarks)]}


def stored_face(face: dict) -> Face:
    """A Face from its index record (box, prob, landmarks as _face_record wrote them)."""
    return Face(box=np.asarray(face["box"], np.float32), prob=float(face["prob"]),
                landmarks=np.asarray(face["landmarks"], np.float32))


def _source_key(path: str) -> str:
    return str(Path(path).resolve())


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:500]
