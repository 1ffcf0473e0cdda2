"""A model against the champion on the game's fixed panel, through the product path, and the gate it must pass.

The game's panel (forensics.harness.panel) is a frozen set of encoded test videos nothing trained on: the real
test videos and, per column, the product-path fakes made from them. The game scores frame detectors on the
panel's cached crops; a model that judges time (a bundle with a clip detector) needs the videos themselves, so
here every panel video goes through `forensics detect`'s own pipeline (DetectPipeline: decode, MTCNN, tracks,
aligned crops, each model's runtime), once per model, and the media score is what a user would read.

The decision is the game's gate (forensics.harness.gate.decide) on those scores: no fake column worse, better
on the union of all fakes by a paired bootstrap over videos. The self-blend column is left out (it is made in
crop space, not a video). A video that a model cannot score (no face found) is left out for both models, so
the comparison is paired.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from forensics.harness.gate import cell, decide
from forensics.harness.panel import UNION, Panel
from forensics.pipelines.detect import DetectConfig, DetectPipeline


def product_scores(model_dir: str | Path, videos: list[str], config: DetectConfig,
                   say: Callable[[str], None] | None = None, label: str = "model") -> dict[str, float]:
    """{video: media score} of every video the model could score (`forensics detect`'s record score)."""
    pipeline = DetectPipeline.from_path(model_dir, config)
    scores, started = {}, time.perf_counter()
    for k, video in enumerate(videos, 1):
        record = pipeline.analyse(video).record
        if record.score is not None:
            scores[video] = float(record.score)
        if say is not None and (k % 20 == 0 or k == len(videos)):
            say(f"  {label}: {k}/{len(videos)} panel videos ({time.perf_counter() - started:.0f} s)")
    return scores


def panel_columns(panel: Panel, scores: list[dict[str, float]]) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per model, {column: (real scores, fake scores)} over the videos every model scored, plus the union."""
    both = set.intersection(*(set(s) for s in scores))
    reals = [v.path for v in panel.reals if v.path in both]
    columns = {c: [v.path for v in panel.fakes(c) if v.path in both] for c in panel.fake_columns}
    columns = {c: paths for c, paths in columns.items() if paths}
    columns[UNION] = [p for paths in columns.values() for p in paths]
    return [{c: (np.array([s[v] for v in reals]), np.array([s[v] for v in paths])) for c, paths in columns.items()}
            for s in scores]


def gate_on_panel(candidate: str | Path, champion: str | Path, panel_path: str | Path, bootstrap: int = 1000,
                  confidence: float = 0.9, tolerance: float = 0.01, seed: int = 0, config: DetectConfig | None = None,
                  say: Callable[[str], None] | None = None) -> dict:
    """Score both models on every panel video through the product path and decide: {"decision", "auc":
    {"candidate"|"champion": {column: cell}}, "videos", "seconds"}."""
    started = time.perf_counter()
    config = config or DetectConfig(thumbnails=0)
    panel = Panel.load(Path(panel_path))
    panel.verify()
    videos = [v.path for v in panel.videos]
    scored = [product_scores(model, videos, config, say, label)
              for model, label in ((candidate, "candidate"), (champion, "champion"))]
    mine, theirs = panel_columns(panel, scored)
    decision = decide(mine, theirs, None, bootstrap, confidence, tolerance, seed)
    cells = {name: {c: cell(*cols[c], bootstrap, confidence, seed) for c in cols}
             for name, cols in (("candidate", mine), ("champion", theirs))}
    left_out = sorted(set(videos) - set.intersection(*(set(s) for s in scored)))
    return {"decision": decision.to_dict(), "auc": cells, "videos": {"panel": len(videos), "left_out": left_out},
            "candidate": str(candidate), "champion": str(champion), "panel_hash": panel.digest(),
            "detect_config": {"frames": config.frames, "clip_len": config.clip_len},
            "seconds": round(time.perf_counter() - started, 1)}
