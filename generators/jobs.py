"""Making fake videos once: each FakeJob is made unless a previous run already made it under the same key.

A fake video takes seconds to minutes (face detection on every frame, generation, compositing, encoding), and
benchmarks and the co-evolution game ask for the same ones again when they resume. So a folder keeps
recipes.jsonl, one line per made (or failed) output, keyed by a hash of what decides the fake (the
checkpoint's sha256, the inputs, the CRF); a job whose key matches a finished line and whose file exists is
reused. A fake that cannot be made (a target with no face, a damaged file) is recorded and skipped: the
caller decides what a missing fake means.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from forensics.io import append_jsonl, read_jsonl
from forensics.media import MediaError
from generators.family import FakeJob

RECIPES = "recipes.jsonl"


class JobRunner:
    """Makes FakeJobs into `root` (see the module docstring); counts what it made, reused and skipped."""

    def __init__(self, root: str | Path, progress: bool = True):
        self.root, self.progress = Path(root), progress
        self.made = self.reused = 0
        self.failed: list[tuple[str, str]] = []
        self.root.mkdir(parents=True, exist_ok=True)
        self._known = {rec["path"]: rec for rec in read_jsonl(self.root / RECIPES) if "path" in rec}

    def run(self, job: FakeJob) -> dict | None:
        """The job's recipe (made now or earlier), or None when it could not be made."""
        digest = hashlib.sha256(json.dumps(job.key, sort_keys=True).encode()).hexdigest()[:16]
        known = self._known.get(job.name)
        path = self.root / job.name
        if known and known.get("key") == digest and known.get("status") == "ok" and path.is_file():
            self.reused += 1
            return dict(known["recipe"])
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        try:
            recipe = job.make(path)
        except (ValueError, OSError, MediaError) as exc:     # a video without a face, a damaged file: skip that fake
            reason = " ".join(str(exc).split())
            self.failed.append((job.name, reason))
            append_jsonl(self.root / RECIPES, {"path": job.name, "key": digest, "status": "error", "error": reason})
            if self.progress:
                print(f"fake skipped: {job.name}: {reason}", file=sys.stderr)
            return None
        recipe = {k: v for k, v in recipe.items() if k != "output"}
        record = {"path": job.name, "key": digest, "status": "ok", "recipe": recipe,
                  "seconds": round(time.perf_counter() - started, 2)}
        append_jsonl(self.root / RECIPES, record)
        self._known[job.name] = record
        self.made += 1
        if self.progress:
            print(f"made {job.name} ({record['seconds']} s)", file=sys.stderr)
        return dict(recipe)
