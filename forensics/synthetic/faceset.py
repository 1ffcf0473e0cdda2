"""Aligned faces of the synthetic world with their exact ground truth, for generators and quality probes.

Generators and probes need what a detector does not: who each face is and where its 68 landmarks are,
in crop pixels. The synthetic world renders both exactly, so crops here are aligned on the *true* five
points (no MTCNN error) and the 68 landmarks are carried through the same transform. The array is cached
next to the world (``faceset-<size>-<margin>.npz``) because every generator run reads it again.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from forensics.data.manifest import read_manifest
from forensics.faces.crops import CropSpec, aligned_crop, face_from_points
from forensics.io import atomic_path
from forensics.landmarks import five_points
from forensics.media import iter_frames
from forensics.progress import progress_bar
from forensics.synthetic.world import load_truth

FACESET_VERSION = 1
# The co-evolution game's split of a held-out identity's footage: its first video is the "fit" portion (both
# sides train on it), its other videos the "eval" portion (scored only).
PORTIONS = ("fit", "eval")


@dataclass
class FaceSet:
    images: np.ndarray        # uint8 [N, S, S, 3] RGB aligned crops
    landmarks: np.ndarray     # float32 [N, 68, 2] in crop pixels (iBUG order)
    identity: np.ndarray      # int64 [N] synthetic identity id
    video: np.ndarray         # int64 [N] index into `videos`
    frame: np.ndarray         # int64 [N] frame index in its video
    split: np.ndarray         # <U5 [N] train | val | test (by identity)
    videos: list[str]         # video paths relative to the world root
    size: int
    margin: float

    def __len__(self) -> int:
        return len(self.images)

    def select(self, mask: np.ndarray) -> "FaceSet":
        mask = np.asarray(mask)
        return FaceSet(self.images[mask], self.landmarks[mask], self.identity[mask], self.video[mask],
                       self.frame[mask], self.split[mask], self.videos, self.size, self.margin)

    def of_identity(self, identity: int) -> "FaceSet":
        return self.select(self.identity == int(identity))

    def of_split(self, split: str) -> "FaceSet":
        return self.select(self.split == split)

    def of_video(self, video: int) -> "FaceSet":
        subset = self.select(self.video == int(video))
        return subset.select(np.argsort(subset.frame, kind="stable"))

    def identities(self) -> list[int]:
        return sorted(int(i) for i in np.unique(self.identity))

    def video_ids(self) -> list[int]:
        return sorted(int(v) for v in np.unique(self.video))

    def portion_rows(self, identities: Sequence[int], portion: str) -> np.ndarray:
        """Rows of `identities` in a portion ("fit": each identity's first video; "eval": the others),
        ordered by video and frame."""
        if portion not in PORTIONS:
            raise ValueError(f"portion must be one of {PORTIONS}, got {portion!r}")
        out = []
        for identity in identities:
            rows = np.flatnonzero(self.identity == int(identity))
            if len(rows) == 0:
                continue
            first = np.min(self.video[rows])
            keep = self.video[rows] == first if portion == "fit" else self.video[rows] != first
            out.append(rows[keep])
        rows = np.concatenate(out) if out else np.zeros(0, np.int64)
        return rows[np.lexsort((self.frame[rows], self.video[rows]))]

    def video_names(self, rows: np.ndarray) -> np.ndarray:
        """The video (path relative to the world) of each row: the group key of video-level scores."""
        return np.array([self.videos[v] for v in self.video[rows]])

    def inter_ocular(self) -> np.ndarray:
        """Distance between the eye centres, per face: the unit landmark errors are reported in."""
        return inter_ocular(self.landmarks)


def inter_ocular(landmarks68: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks68, np.float64)
    return np.linalg.norm(lm[..., 36:42, :].mean(-2) - lm[..., 42:48, :].mean(-2), axis=-1)


def load_faceset(world: str | Path, size: int = 64, margin: float = 0.25, identities: Sequence[int] | None = None,
                 every: int = 1, progress: bool = False) -> FaceSet:
    """Aligned crops of every frame (or every `every`-th) of a synthetic world, cached beside it."""
    world = Path(world).resolve()
    manifest = world / "manifest.csv"
    if not manifest.is_file():
        raise ValueError(f"{world}: not a synthetic world (no manifest.csv); render one with `forensics synth`")
    key = hashlib.sha256(json.dumps([FACESET_VERSION, size, margin, every, manifest.stat().st_mtime_ns,
                                     manifest.stat().st_size]).encode()).hexdigest()[:10]
    cache = world / f"faceset-{size}-{key}.npz"
    if cache.is_file():
        faces = _read(cache, size, margin)
    else:
        faces = _build(world, size, margin, every, progress)
        _write(cache, faces)
    if identities is not None:
        faces = faces.select(np.isin(faces.identity, np.asarray(list(identities), np.int64)))
    return faces


def _build(world: Path, size: int, margin: float, every: int, progress: bool) -> FaceSet:
    spec = CropSpec(size, margin)
    rows = read_manifest(world / "manifest.csv")
    images, landmarks, ids, videos_idx, frames, splits, videos = [], [], [], [], [], [], []
    for row in progress_bar(rows, desc="faceset", unit="video", enabled=progress):
        meta = row.meta if isinstance(row.meta, dict) else json.loads(row.meta or "{}")
        _, truths = load_truth(world / meta["truth"])
        by_index = {t.index: t for t in truths}
        video_id = len(videos)
        videos.append(str(Path(row.path).relative_to(world)) if Path(row.path).is_absolute() else row.path)
        path = Path(row.path) if Path(row.path).is_absolute() else world / row.path
        for frame in iter_frames(path, every=every):
            truth = by_index.get(frame.index)
            if truth is None:
                continue
            lm68 = np.asarray(truth.landmarks, np.float64)
            crop, matrix = aligned_crop(frame.image, face_from_points(five_points(lm68)), spec)
            images.append(crop)
            landmarks.append((lm68 @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32))
            ids.append(int(truth.identity))
            videos_idx.append(video_id)
            frames.append(int(frame.index))
            splits.append(row.split or "train")
    if not images:
        raise ValueError(f"{world}: no frames could be read")
    return FaceSet(np.stack(images), np.stack(landmarks), np.array(ids, np.int64), np.array(videos_idx, np.int64),
                   np.array(frames, np.int64), np.array(splits, "<U5"), videos, size, margin)


def _write(path: Path, faces: FaceSet) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, images=faces.images, landmarks=faces.landmarks, identity=faces.identity,
                     video=faces.video, frame=faces.frame, split=faces.split,
                     videos=np.array(faces.videos, dtype="<U256"))


def _read(path: Path, size: int, margin: float) -> FaceSet:
    with np.load(path, allow_pickle=False) as data:
        return FaceSet(data["images"], data["landmarks"], data["identity"], data["video"], data["frame"],
                       data["split"], [str(v) for v in data["videos"]], size, margin)
