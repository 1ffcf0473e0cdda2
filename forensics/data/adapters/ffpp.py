"""FaceForensics++ as downloaded by its official script.

Layout (``<c>`` is the compression: ``c0`` (the script calls it ``raw``), ``c23`` or ``c40``)::

    original_sequences/youtube/<c>/videos/000.mp4 ...           pristine, id 000..999
    original_sequences/actors/<c>/videos/01__exit_phone_room.mp4 pristine, DeepFakeDetection (optional)
    manipulated_sequences/<Method>/<c>/videos/000_003.mp4       fake: target 000, source 003
    manipulated_sequences/DeepFakeDetection/<c>/videos/01_02__meeting_serious__YVGY8LOK.mp4
    splits/train.json val.json test.json                         [["071", "054"], ...] pairs

A fake ``a_b`` and both its ids share their pair's split, so a face never appears on both sides of
a split. Without split files the usual numeric fallback (0-719 train, 720-859 val, 860-999 test) is used
and each row says so (``meta["split_source"] == "default"``). DeepFakeDetection has no official split:
its actors are split by a hash of the actor id.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from forensics.data.adapters._common import (
    DatasetAdapter, hash_split, list_files, sort_rows, warn_skipped,
)
from forensics.data.manifest import SPLITS, ManifestRow
from forensics.data.registry import register_dataset

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
DFD_METHOD = "DeepFakeDetection"
COMPRESSION_FOLDERS = {"c0": ("c0", "raw"), "raw": ("raw", "c0"), "c23": ("c23",), "c40": ("c40",)}
DEFAULT_SPLIT_BOUNDS = ((720, "train"), (860, "val"))  # ids below 720 train, below 860 val, the rest test

YOUTUBE_NAME = re.compile(r"^(\d+)$")
PAIR_NAME = re.compile(r"^(\d+)_(\d+)$")
ACTOR_NAME = re.compile(r"^(\d+)__(.+)$")
DFD_FAKE_NAME = re.compile(r"^(\d+)_(\d+)__(.+)__([^_]+)$")


@register_dataset("ffpp")
@dataclass
class FaceForensicsPP(DatasetAdapter):
    """FaceForensics++ at one compression; ``methods`` limits the manipulations read (default: all found);
    ``reals`` picks the pristine videos (the DFD protocol scores DeepFakeDetection's fakes against the actors)."""
    compression: str = "c23"
    methods: tuple[str, ...] | list[str] | None = None
    reals: str = "all"                            # "youtube", "actors" (DFD's own reals) or "all"
    splits_dir: str | os.PathLike | None = None   # default: root/splits
    val_fraction: float = 0.1                     # DeepFakeDetection only (no official split)
    test_fraction: float = 0.1

    detect_priority = 20

    @classmethod
    def looks_like(cls, root: Path) -> bool:
        return (root / "original_sequences").is_dir() or (root / "manipulated_sequences").is_dir()

    def rows(self) -> list[ManifestRow]:
        if self.compression not in COMPRESSION_FOLDERS:
            raise self.error(f"compression {self.compression!r} is not one of c0, c23, c40")
        self.check_fractions(self.val_fraction, self.test_fraction)
        if self.reals not in ("all", "youtube", "actors"):
            raise self.error(f"reals {self.reals!r} is not one of all, youtube, actors")
        splits = self._official_splits()
        rows = (self._youtube_rows(splits) if self.reals != "actors" else []) + \
            (self._actor_rows() if self.reals != "youtube" else [])
        for method, videos in self._method_folders():
            rows += self._dfd_fake_rows(videos) if method == DFD_METHOD else self._fake_rows(method, videos, splits)
        return sort_rows(rows)

    # -- folders -----------------------------------------------------------------------------------
    @property
    def compression_label(self) -> str:
        return "c0" if self.compression == "raw" else self.compression

    def _videos_dir(self, parent: Path) -> Path | None:
        for name in COMPRESSION_FOLDERS[self.compression]:
            if (parent / name / "videos").is_dir():
                return parent / name / "videos"
        return None

    def _method_folders(self) -> list[tuple[str, Path]]:
        base = self.root_dir / "manipulated_sequences"
        if self.methods is not None:
            found = []
            for method in self.methods:
                videos = self._videos_dir(base / method)
                if videos is None:
                    raise self.error(f"no manipulated_sequences/{method}/{self.compression}/videos folder")
                found.append((method, videos))
            return found
        present = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if base.is_dir() else []
        found, lacking = [], []
        for method in present:
            videos = self._videos_dir(base / method)
            if videos is None:
                lacking.append(method)
            else:
                found.append((method, videos))
        if lacking:
            warn_skipped(f"{self.root}: no {self.compression}/videos folder for {', '.join(lacking)}; skipped")
        return found

    def _meta(self, **extra) -> dict:
        return {"compression": self.compression_label, **extra}

    # -- rows --------------------------------------------------------------------------------------
    def _youtube_rows(self, splits: OfficialSplits | None) -> list[ManifestRow]:
        youtube = self.root_dir / "original_sequences" / "youtube"
        videos = self._videos_dir(youtube)
        if videos is None:
            present = sorted(p.parent.name for p in youtube.glob("*/videos") if p.is_dir())
            if not present:
                raise self.error("no original_sequences/youtube/*/videos folder")
            raise self.error(f"no original_sequences/youtube/{self.compression}/videos folder "
                             f"(found: {', '.join(present)})")
        rows, unparsed = [], []
        for path in list_files(videos, ".mp4"):
            match = YOUTUBE_NAME.match(path.stem)
            if match is None:
                unparsed.append(path.name)
                continue
            video_id = match.group(1)
            split, split_source = _id_split(video_id, splits)
            rows.append(ManifestRow(path=str(path), label="real", method="real", identity=video_id, split=split,
                                    source=self.name,
                                    meta=self._meta(subset="youtube", split_source=split_source)))
        _warn_unparsed(self.root, videos, unparsed, "<id>.mp4")
        return rows

    def _fake_rows(self, method: str, videos: Path, splits: OfficialSplits | None) -> list[ManifestRow]:
        original_dir = self.relative(self._videos_dir(self.root_dir / "original_sequences" / "youtube"))
        rows, unparsed = [], []
        for path in list_files(videos, ".mp4"):
            match = PAIR_NAME.match(path.stem)
            if match is None:
                unparsed.append(path.name)
                continue
            target, source = match.groups()
            split, split_source = _pair_split(target, source, splits)
            meta = self._meta(target_id=target, source_id=source, original=f"{original_dir}/{target}.mp4",
                              split_source=split_source)
            rows.append(ManifestRow(path=str(path), label="fake", method=method, identity=target, split=split,
                                    source=self.name, meta=meta))
        _warn_unparsed(self.root, videos, unparsed, "<target>_<source>.mp4")
        return rows

    def _actor_rows(self) -> list[ManifestRow]:
        videos = self._videos_dir(self.root_dir / "original_sequences" / "actors")
        if videos is None:
            return []
        rows, unparsed = [], []
        for path in list_files(videos, ".mp4"):
            match = ACTOR_NAME.match(path.stem)
            if match is None:
                unparsed.append(path.name)
                continue
            actor, scene = match.groups()
            identity = f"actor{actor}"
            rows.append(ManifestRow(path=str(path), label="real", method="real", identity=identity,
                                    split=self._hash_split(identity), source=self.name,
                                    meta=self._meta(subset="actors", scene=scene, split_source="identity-hash")))
        _warn_unparsed(self.root, videos, unparsed, "<actor>__<scene>.mp4")
        return rows

    def _dfd_fake_rows(self, videos: Path) -> list[ManifestRow]:
        actors = self._videos_dir(self.root_dir / "original_sequences" / "actors")
        original_dir = self.relative(actors) if actors else f"original_sequences/actors/{self.compression}/videos"
        rows, unparsed = [], []
        for path in list_files(videos, ".mp4"):
            match = DFD_FAKE_NAME.match(path.stem)
            if match is None:
                unparsed.append(path.name)
                continue
            target, source, scene, take = match.groups()
            identity = f"actor{target}"
            meta = self._meta(target_id=identity, source_id=f"actor{source}", scene=scene, take=take,
                              original=f"{original_dir}/{target}__{scene}.mp4", split_source="identity-hash")
            rows.append(ManifestRow(path=str(path), label="fake", method=DFD_METHOD, identity=identity,
                                    split=self._hash_split(identity), source=self.name, meta=meta))
        _warn_unparsed(self.root, videos, unparsed, "<target>_<source>__<scene>__<take>.mp4")
        return rows

    def _hash_split(self, identity: str) -> str:
        return hash_split(f"ffpp-dfd/{identity}", self.val_fraction, self.test_fraction)

    # -- official splits ---------------------------------------------------------------------------
    def _official_splits(self) -> OfficialSplits | None:
        folder = Path(self.splits_dir) if self.splits_dir is not None else self.root_dir / "splits"
        files = {split: folder / f"{split}.json" for split in SPLITS}
        present = [split for split, path in files.items() if path.is_file()]
        if not present:
            if self.splits_dir is not None:
                raise self.error(f"no train.json, val.json or test.json in {self.splits_dir}")
            return None
        if len(present) < len(SPLITS):
            missing = [f"{split}.json" for split in SPLITS if split not in present]
            raise self.error(f"{self.relative(folder)}/ has {', '.join(f'{s}.json' for s in present)} "
                             f"but no {', '.join(missing)}")
        splits = OfficialSplits()
        for split, path in files.items():
            for a, b in self._read_pairs(path):
                for video_id in (a, b):
                    known = splits.by_id.setdefault(video_id, split)
                    if known != split:
                        raise self.error(f"{path.name}: id {video_id} is also in {known}.json")
                splits.by_pair[frozenset((a, b))] = split
        return splits

    def _read_pairs(self, path: Path) -> list[tuple[str, str]]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise self.error(f"{path.name} is not readable JSON: {exc}") from None
        ok = isinstance(data, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in data)
        if not ok:
            raise self.error(f"{path.name} is not a JSON list of [id, id] pairs")
        return [(_normalise_id(a), _normalise_id(b)) for a, b in data]


@dataclass
class OfficialSplits:
    """The split files, indexed both ways: by video id (pristine videos) and by pair (fakes)."""
    by_id: dict[str, str] = field(default_factory=dict)
    by_pair: dict[frozenset, str] = field(default_factory=dict)


def _normalise_id(value) -> str:
    """Split files hold ids as strings ("071"); tolerate numbers (71) by padding them the same way."""
    text = str(value).strip()
    return text.zfill(3) if text.isdigit() else text


def default_split(video_id: str) -> str:
    number = int(video_id)
    for bound, split in DEFAULT_SPLIT_BOUNDS:
        if number < bound:
            return split
    return "test"


def _id_split(video_id: str, splits: OfficialSplits | None) -> tuple[str, str]:
    if splits is not None and video_id in splits.by_id:
        return splits.by_id[video_id], "official"
    return default_split(video_id), "default"


def _pair_split(target: str, source: str, splits: OfficialSplits | None) -> tuple[str, str]:
    """The pair's split; if the pair is not listed, the target's (it is the video the fake is made from)."""
    if splits is not None and frozenset((target, source)) in splits.by_pair:
        return splits.by_pair[frozenset((target, source))], "official"
    return _id_split(target, splits)


def _warn_unparsed(root: Path, folder: Path, names: list[str], pattern: str) -> None:
    if names:
        warn_skipped(f"{root}: {len(names)} files in {folder.name}/ of {folder.parent.parent.name} do not match "
                     f"{pattern} (first: {names[0]}); skipped")
