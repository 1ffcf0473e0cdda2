"""The evaluation panel: a fixed, hashed set of videos that no step of the game ever trains on.

It holds the world's test-split real videos, a self-blend of each of their crops (the "sbi" column), and
product-path fakes of every generator version: each version's panel fakes are made once, when the version is
made, one per real test video, and added as a column that never changes afterwards (append-only). The held-out
family's fakes are a column made at the start. Every file's sha256 is recorded; `verify` re-reads them and
refuses a panel whose files or earlier columns changed, so figures from different rounds are figures on the
same evidence.

Scores are per video, the way `forensics detect` scores a video: the detector's logits on the video's crops
(read through the face-crop cache, the one crop path), aggregated robustly; a column's AUC is its fakes
against the real test videos. A clip detector scores the video's clips of consecutive faces instead (the game's
cache then samples windows of its clip length), and its self-blend column holds each real clip self-blended
frame by frame. Scores are kept per detector (by its weights' sha256), so each round scores only
what is new.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from detectors.aggregate import aggregate_scores
from detectors.batches import pseudo_fake
from detectors.checkpoint import LoadedDetector
from detectors.clips import ClipSet, track_runs, windows
from detectors.meta import CLIP_KIND
from forensics.data.cache import FaceCache
from forensics.data.crops import CropSet
from forensics.io import atomic_write_json, sha256_file

SBI, UNION, REAL = "sbi", "union", "real"
FORMAT = "forensics-panel/1"


class PanelError(ValueError):
    """A panel that changed under the run (or cannot be read); one line."""


@dataclass(frozen=True)
class PanelVideo:
    path: str                  # absolute
    sha256: str
    column: str                # "real", or the fake column ("faceswap@G1", "animation", ...)
    target: str | None = None  # the real video a fake was made from
    crf: int | None = None

    @property
    def label(self) -> int:
        return 0 if self.column == REAL else 1


class Panel:
    """panel.json under the run folder; see the module docstring."""

    def __init__(self, path: Path, videos: list[PanelVideo], digests: dict[str, str],
                 no_face: dict[str, list[str]] | None = None):
        self.path, self.videos, self.digests = Path(path), list(videos), dict(digests)
        self.no_face = dict(no_face or {})     # column -> fakes left out because no face is found in them

    @classmethod
    def create(cls, path: Path, reals: list[str]) -> "Panel":
        if len(reals) < 2:
            raise PanelError(f"{path}: the panel needs at least 2 real test videos, the world has {len(reals)}")
        panel = cls(path, [PanelVideo(str(Path(p).resolve()), sha256_file(p), REAL) for p in sorted(reals)], {})
        panel.digests[REAL] = panel.digest([REAL])
        panel.save()
        return panel

    @classmethod
    def load(cls, path: Path) -> "Panel":
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise PanelError(f"{path}: unreadable panel ({' '.join(str(exc).split())})") from None
        if doc.get("format") != FORMAT:
            raise PanelError(f"{path}: not a panel file (format {doc.get('format')!r})")
        return cls(path, [PanelVideo(**v) for v in doc["videos"]], doc["digests"], doc.get("no_face"))

    def save(self) -> None:
        atomic_write_json(self.path, {"format": FORMAT, "videos": [asdict(v) for v in self.videos],
                                      "digests": self.digests, "no_face": self.no_face, "hash": self.digest()})

    # ------------------------------------------------------------------ content
    @property
    def reals(self) -> list[PanelVideo]:
        return [v for v in self.videos if v.column == REAL]

    @property
    def fake_columns(self) -> list[str]:
        """Fake columns in the order they were added."""
        return list(dict.fromkeys(v.column for v in self.videos if v.column != REAL))

    @property
    def columns(self) -> list[str]:
        """Every column a detector is scored on: self-blends, each fake column, and all fakes together."""
        return [SBI, *self.fake_columns, UNION]

    def fakes(self, column: str) -> list[PanelVideo]:
        if column == UNION:
            return [v for v in self.videos if v.column != REAL]
        return [v for v in self.videos if v.column == column]

    def add_column(self, column: str, fakes: list[tuple[str, str | None, int | None]],
                   no_face: list[str] = ()) -> None:
        """Add a column of fake videos (path, target real, crf); a column is written once and never again.

        no_face: fakes of this version in which the face pipeline finds no face. `forensics detect` gives such
        a video no score, so it cannot be ranked; it is left out of the column and listed, so that a version
        that hides faces shows up in the panel's record rather than as a better or worse AUC."""
        if column in (REAL, SBI, UNION) or column in self.fake_columns:
            raise PanelError(f"{self.path}: panel column {column!r} exists already; columns are never rewritten")
        if len(fakes) < 2:
            raise PanelError(f"{self.path}: panel column {column!r} needs at least 2 fake videos with a face, got "
                             f"{len(fakes)} ({len(no_face)} without a face the face pipeline finds)")
        self.videos += [PanelVideo(str(Path(p).resolve()), sha256_file(p), column, t, crf) for p, t, crf in fakes]
        self.digests[column] = self.digest([column])
        if no_face:
            self.no_face[column] = [str(Path(p).resolve()) for p in no_face]
        self.save()

    def digest(self, columns: list[str] | None = None) -> str:
        """sha256 over (column, file name, file sha256) of the given columns' videos (all by default)."""
        chosen = sorted((v.column, Path(v.path).name, v.sha256) for v in self.videos
                        if columns is None or v.column in columns)
        return hashlib.sha256(json.dumps(chosen).encode()).hexdigest()

    def verify(self) -> None:
        """Every file still has its recorded hash, and every column still has the digest it was frozen with."""
        for video in self.videos:
            if not Path(video.path).is_file():
                raise PanelError(f"{video.path}: panel video is missing; the panel is fixed for the whole run")
            if sha256_file(video.path) != video.sha256:
                raise PanelError(f"{video.path}: panel video changed since it was added (sha256 differs); the panel "
                                 f"is fixed for the whole run")
        for column, frozen in self.digests.items():
            if self.digest([column]) != frozen:
                raise PanelError(f"{self.path}: panel column {column!r} changed since it was frozen")


# ---------------------------------------------------------------------- scoring

class PanelScorer:
    """Per-video logits of detectors on the panel, through the face-crop cache; kept per detector sha256."""

    def __init__(self, panel: Panel, cache: FaceCache, store: Path, seed: int = 0):
        self.panel, self.cache, self.store, self.seed = panel, cache, Path(store), seed
        self._entries = {e.source: e for e in cache.entries()}
        self._blends: dict[str, np.ndarray] = {}     # real video -> its self-blends (the same for every detector)
        self._reals: CropSet | None = None

    def scores(self, detector: LoadedDetector) -> dict[str, float]:
        """{video path: logit} for every panel video, plus "<real path>#sbi" for the self-blend of each real."""
        path = self.store / f"{detector.sha256[:16]}.json"
        known = json.loads(path.read_text()) if path.is_file() else {}
        wanted = [v.path for v in self.panel.videos if v.path not in known]
        wanted_sbi = [v.path for v in self.panel.reals if f"{v.path}#sbi" not in known]
        if wanted or wanted_sbi:
            aggregate = detector.meta.get("aggregate", "robust")
            logits, views, blends = self._inputs(detector)
            for video in wanted:
                known[video] = aggregate_scores(logits(views(video)), method=aggregate)
            for video in wanted_sbi:
                known[f"{video}#sbi"] = aggregate_scores(logits(blends(video)), method=aggregate)
            self.store.mkdir(parents=True, exist_ok=True)
            atomic_write_json(path, known)
        return known

    def column(self, scores: dict[str, float], column: str) -> tuple[np.ndarray, np.ndarray]:
        """(real video logits, fake video logits) of one column."""
        reals = np.array([scores[v.path] for v in self.panel.reals])
        if column == SBI:
            fakes = np.array([scores[f"{v.path}#sbi"] for v in self.panel.reals])
        else:
            fakes = np.array([scores[v.path] for v in self.panel.fakes(column)])
        return reals, fakes

    def blends(self, video: str) -> np.ndarray:
        """The self-blend of each cached crop of a real panel video, seeded by the video and the crop."""
        if video not in self._blends:
            if self._reals is None:                   # the real videos are all cached at setup
                self._reals = CropSet(self.cache, None)
            self._blends[video] = np.stack([
                pseudo_fake(self._reals, ref, np.random.default_rng([self.seed, _key(video), ref.index])).image
                for ref in self._reals.refs if ref.video == video])
        return self._blends[video]

    def _inputs(self, detector: LoadedDetector):
        """(logits of a batch, a video's inputs, a real video's self-blended inputs) for this detector: crops for
        a frame detector, clips of its length for a clip detector."""
        if detector.kind != CLIP_KIND:
            return detector.logits, self.crops, self.blends
        length = int(detector.meta["detector"]["clip_len"])
        return (lambda clips: detector.clip_logits(clips)[0], lambda video: self.clips(video, length),
                lambda video: self.clip_blends(video, length))

    def crops(self, video: str) -> np.ndarray:
        """The cached face crops of one panel video."""
        return np.asarray(self.cache.load_crops(self._entry(video)))

    def clips(self, video: str, length: int) -> np.ndarray:
        """The video's clips of `length` consecutive faces of one track: uint8 [N, T, H, W, 3]."""
        entry = self._entry(video)
        rows = [w for run in track_runs(entry.faces) for w in windows(run, length, length)]
        if not rows:
            raise PanelError(f"{video}: no run of {length} consecutive faces for the clip detector (the game's cache "
                             f"must sample windows of its clip length)")
        crops = self.cache.load_crops(entry)
        return np.stack([crops[list(w)] for w in rows])

    def clip_blends(self, video: str, length: int) -> np.ndarray:
        """Each clip of a real panel video self-blended frame by frame, seeded by the video and the clip."""
        key = f"{video}#clips{length}"
        if key not in self._blends:
            clips = ClipSet(self.cache, None, length)
            self._blends[key] = np.stack([
                clips.self_blended(ref, np.random.default_rng([self.seed, _key(video), ref.rows[0]]))
                for ref in clips.refs if ref.video == video])
        return self._blends[key]

    def _entry(self, video: str):
        entry = self._entries.get(video)
        if entry is None:
            self._entries = {e.source: e for e in self.cache.entries()}
            entry = self._entries.get(video)
        if entry is None:
            raise PanelError(f"{video}: no face found in this panel video (or it was not cached); every panel "
                             f"video must show a face")
        return entry


def _key(path: str) -> int:
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:4], "little")
