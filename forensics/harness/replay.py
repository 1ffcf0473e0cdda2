"""Earlier rounds' fakes, kept on disk so the detector's move can replay them: what it caught before must
stay caught."""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np

from forensics.io import atomic_path


class ReplayBuffer:
    """Earlier rounds' fakes as uint8 .npy files (one per round and generator), capped in total.

    The cap is shared evenly: each file keeps at most cap // files rows, trimmed by a seeded choice, so
    adding a round shrinks the older ones and a repeated add (a resumed round) changes nothing.
    """

    PATTERN = re.compile(r"^round_(\d+)_(.+)\.npy$")

    def __init__(self, folder: str | Path, cap: int, seed: int = 0):
        self.folder, self.cap, self.seed = Path(folder), int(cap), seed

    def files(self) -> list[tuple[int, str, Path]]:
        out = []
        for path in sorted(self.folder.glob("round_*.npy")):
            match = self.PATTERN.match(path.name)
            if match:
                out.append((int(match.group(1)), match.group(2), path))
        return out

    def load(self, before_round: int) -> np.ndarray:
        parts = [np.load(p, allow_pickle=False) for r, _, p in self.files() if r < before_round]
        parts = [p for p in parts if len(p)]
        return np.concatenate(parts) if parts else np.zeros((0, 1, 1, 3), np.uint8)

    def add(self, round_index: int, name: str, images: np.ndarray) -> None:
        if self.cap <= 0 or len(images) == 0:
            return
        target = self.folder / f"round_{round_index:02d}_{name}.npy"
        if not target.exists():
            self._write(target, images)
        files = self.files()
        quota = max(1, self.cap // len(files))
        for r, n, path in files:
            rows = np.load(path, allow_pickle=False)
            if len(rows) > quota:
                rng = np.random.default_rng([self.seed, r, zlib.crc32(n.encode()), quota])
                keep = np.sort(rng.choice(len(rows), quota, replace=False))
                self._write(path, rows[keep])

    @staticmethod
    def _write(path: Path, images: np.ndarray) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(images, np.uint8))
