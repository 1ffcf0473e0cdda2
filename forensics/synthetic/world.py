"""A whole synthetic world on disk: identities, H.264 clips, per-frame ground truth and a manifest.

Layout (paths in the manifest are relative to OUT)::

    OUT/world.json              the WorldConfig that made it
    OUT/identities.json         every identity's parameters
    OUT/videos/id0007_v01.mp4   H.264 clips
    OUT/truth/id0007_v01.json   clip metadata and "frames": per frame index, t, box, face_box,
                                landmarks68 (iBUG order, pixels), pose, expression
    OUT/manifest.csv            label "real", identity, split (by identity), source "synthetic"

Identity k of a seed is the same person whatever ``identities`` count is asked for, so later stages can
render new, held-out people (ids beyond the world's) without touching the world. Generation resumes:
a clip whose truth file matches the config is not rendered again (the truth is written after the video).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from forensics.data.manifest import ManifestRow, write_manifest
from forensics.io import atomic_write_json
from forensics.media import write_video
from forensics.progress import progress_bar
from forensics.synthetic.identity import Identity, identity_rng, sample_identity
from forensics.synthetic.render import FrameTruth
from forensics.synthetic.video import VideoConfig, render_video, video_scene

WORLD_VERSION = 1


@dataclass
class WorldConfig:
    identities: int = 20
    videos_per_identity: int = 2
    frames: int = 48
    size: int = 256
    fps: int = 25
    crf: int = 23
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15

    def __post_init__(self):
        checks = [(self.identities >= 1, "identities must be >= 1"),
                  (self.videos_per_identity >= 1, "videos_per_identity must be >= 1"),
                  (self.frames >= 1, "frames must be >= 1"),
                  (32 <= self.size <= 2048 and self.size % 2 == 0, "size must be even and in 32..2048 "
                   "(H.264 4:2:0 needs even sizes)"),
                  (0 < self.fps <= 240, "fps must be in 1..240"),
                  (0 <= self.crf <= 51, "crf must be in 0..51"),
                  (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                   and self.val_fraction + self.test_fraction < 1, "val/test fractions must be in [0, 1) and sum < 1")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict:
        return asdict(self)

    def video_config(self) -> VideoConfig:
        return VideoConfig(size=self.size, frames=self.frames, fps=self.fps, crf=self.crf)


def world_identity(seed: int, id: int) -> Identity:
    """Identity ``id`` of the world with this seed (stable: independent of the world's size)."""
    return sample_identity(identity_rng(seed, id), id)


def video_seed(seed: int, id: int, video: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(id), int(video), 0x51D]).generate_state(1)[0])


def assign_splits(ids: list[int], seed: int, val_fraction: float, test_fraction: float) -> dict[int, str]:
    """Split by identity: a seeded shuffle, then test and val take their share (at least one each when
    the fraction is positive and there are three or more identities), train the rest."""
    order = sorted(ids, key=lambda k: np.random.default_rng([int(seed), int(k), 0x5B]).random())
    n = len(order)

    def share(fraction: float) -> int:
        return 0 if fraction <= 0 else max(1 if n >= 3 else 0, int(round(n * fraction)))
    n_test = share(test_fraction)
    n_val = min(share(val_fraction), max(n - n_test - 1, 0))
    splits = {k: "train" for k in order}
    for k in order[:n_test]:
        splits[k] = "test"
    for k in order[n_test:n_test + n_val]:
        splits[k] = "val"
    return splits


def _up_to_date(truth_path: Path, video_path: Path, expected: dict) -> bool:
    if not (truth_path.is_file() and video_path.is_file()):
        return False
    try:
        stored = json.loads(truth_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return all(stored.get(k) == v for k, v in expected.items())


def generate_world(out_dir, config: WorldConfig | None = None, progress: bool = True) -> Path:
    """Render (or finish rendering) a world into ``out_dir``; returns the path of its manifest.csv."""
    config = config or WorldConfig()
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "world.json", {"version": WORLD_VERSION, **config.to_dict()})
    ids = list(range(config.identities))
    identities = [world_identity(config.seed, k) for k in ids]
    atomic_write_json(out / "identities.json", [ident.to_dict() for ident in identities])
    splits = assign_splits(ids, config.seed, config.val_fraction, config.test_fraction)
    video_cfg = config.video_config()

    jobs = [(ident, v) for ident in identities for v in range(config.videos_per_identity)]
    bar = progress_bar(total=len(jobs), unit="video", desc="synth") if progress else None
    rows = []
    for ident, v in jobs:
        name = f"{ident.name}_v{v:02d}"
        seed = video_seed(config.seed, ident.id, v)
        video_rel, truth_rel = f"videos/{name}.mp4", f"truth/{name}.json"
        expected = {"version": WORLD_VERSION, "seed": seed, "frame_count": config.frames, "fps": config.fps,
                    "size": config.size, "crf": config.crf, "identity_id": ident.id}
        if not _up_to_date(out / truth_rel, out / video_rel, expected):
            t0 = time.perf_counter()
            frames, truths = render_video(ident, seed, video_cfg)
            write_video(out / video_rel, frames, fps=config.fps, crf=config.crf)
            atomic_write_json(out / truth_rel, {
                **expected, "identity": ident.name, "video": video_rel,
                "scene": video_scene(seed, video_cfg).to_dict(), "render_s": round(time.perf_counter() - t0, 3),
                "frames": [t.to_dict() for t in truths]}, indent=None)
        rows.append(ManifestRow(path=video_rel, label="real", method="real", identity=ident.name,
                                split=splits[ident.id], source="synthetic",
                                meta={"seed": seed, "frames": config.frames, "fps": config.fps,
                                      "size": config.size, "truth": truth_rel}))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return write_manifest(rows, out / "manifest.csv")


def load_truth(path) -> tuple[dict, list]:
    """Read a truth file: (clip metadata, list of FrameTruth)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    frames = [FrameTruth.from_dict(d) for d in data.pop("frames")]
    return data, frames

