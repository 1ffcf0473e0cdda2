"""Training jobs as a user starts them: data in place, one MLflow run, the model trained and registered.

`forensics train detector`, `forensics train generator` and `forensics demo` call these; the model kinds
do the training itself (detectors.train.train_detector, a generator family's `train`). What lives here is
what turns that into a job: render the synthetic world when the data folder is absent (so every command
works offline on a fresh machine), fill the face-crop cache, open the run, and make the first detector ever
trained the champion so that `forensics detect` has a model.

Under torchrun (`torchrun --nproc_per_node N -m forensics train ...`) a job is one process group from start to
end: rank 0 renders, caches, opens the MLflow run, saves and registers; every rank trains its share of each
batch; the other ranks return None, so the command prints on rank 0 alone.
"""
from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from detectors.fusion import make_bundle
from detectors.promote import CHALLENGER, CHAMPION, promote_if_first, register
from detectors.registry import detector_kind
from detectors.task import DetectorTrainConfig
from detectors.train import DetectorTrainResult, train_detector, training_data
from forensics.data.cache import CacheConfig, FaceCache
from forensics.data.prepare import CachedDataset, cache_dataset
from forensics.data.registry import DatasetError
from forensics.device import resolve_device
from forensics.synthetic import WorldConfig, generate_world
from forensics.tracking import start_run
from forensics.training import distributed as D
from generators.registry import create_generator

DETECTOR_EXPERIMENT = "detectors"
GENERATOR_EXPERIMENT = "generators"


def say_on_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def render_world_if_missing(world: str | Path, identities: int, seed: int = 0, progress: bool = True,
                            say: Callable[[str], None] = say_on_stderr) -> bool:
    """Render the synthetic world into `world` unless it holds one already; True if it rendered."""
    world = Path(world)
    if (world / "manifest.csv").is_file():
        return False
    say(f"rendering the synthetic world ({identities} identities x 2 videos) -> {world}")
    generate_world(world, WorldConfig(identities=identities, videos_per_identity=2, frames=32, seed=seed),
                   progress=progress)
    return True


def prepare_cache(root: str | Path, config: DetectorTrainConfig, dataset: str | None = None,
                  cache_dir: str | Path | None = None, identities: int = 40, progress: bool = True,
                  say: Callable[[str], None] = say_on_stderr) -> CachedDataset:
    """The face-crop cache a detector trains on, filled for the dataset at `root` (rendered first when `root`
    is absent and the dataset is the synthetic one). Usage problems raise DatasetError in one line."""
    root = Path(root)
    if not root.exists():
        if dataset not in (None, "synthetic"):
            raise DatasetError(f"{root}: no such folder")
        render_world_if_missing(root, identities, seed=config.seed, progress=progress, say=say)
        dataset = "synthetic"
    return cache_dataset(root, CacheConfig(frames=config.frames_per_video, crop_size=config.crop_size,
                                           margin=config.margin, device=config.device, clip_len=config.clip_len),
                         dataset=dataset, cache_dir=cache_dir, progress=progress)


@dataclass
class TrainedDetector:
    result: DetectorTrainResult
    run_id: str | None
    promoted: bool           # became the champion because there was none


def run_detector_training(config: DetectorTrainConfig, cache: FaceCache, out: str | Path, run_name: str | None = None,
                          resume: bool = True, register_as: str | None = CHALLENGER, progress: bool = True,
                          params: dict | None = None, tags: dict | None = None) -> TrainedDetector | None:
    """Train in an MLflow run of the `detectors` experiment, register the model (unless register_as is None)
    and make it the champion if the registry has none. Under torchrun: None on every rank but 0."""
    params = {**{k: v for k, v in config.to_dict().items() if k != "extra"}, "cache": str(cache.root), **(params or {})}
    data = training_data(config, cache)      # a dataset too small to train on fails here, before any MLflow run
    with D.job(resolve_device(config.device).type), main_run(
            DETECTOR_EXPERIMENT, run_name=run_name or f"{config.detector}-{time.strftime('%m%d-%H%M')}",
            params=params, tags={"kind": "detector-training", **(tags or {})}) as run:
        result = train_detector(config, cache, out, run=run, resume=resume, register_as=register_as,
                                progress=progress and D.is_main(), data=data)
        if not D.is_main():
            return None
        # A clip detector cannot judge a still or a short track alone: `forensics detect` runs it inside a bundle,
        # so it never becomes the champion by being first.
        first_ok = detector_kind(config.detector) == "frame"
        promoted = register_as != CHAMPION and first_ok and promote_if_first(result.registered_version)
    return TrainedDetector(result, getattr(run, "run_id", None), promoted)


def run_bundle_fitting(frame: str | Path, temporal: str | Path, cache: FaceCache, out: str | Path, seed: int = 0,
                       device: str = "cpu", register_as: str | None = CHALLENGER,
                       run_name: str | None = None) -> dict:
    """Fit a bundle's fusion (detectors.fusion.make_bundle) in an MLflow run of the `detectors` experiment and
    register the bundle as a version of the detector model (unless register_as is None): `forensics detect
    --model challenger` (or the champion, once evidence promotes it) then runs both detectors. The result of
    make_bundle, with `registered_version` and `run_id`."""
    with start_run(DETECTOR_EXPERIMENT, run_name=run_name or f"bundle-{time.strftime('%m%d-%H%M')}",
                   params={"frame": str(frame), "temporal": str(temporal), "cache": str(cache.root), "seed": seed},
                   tags={"kind": "bundle"}) as run:
        result = make_bundle(frame, temporal, cache, out, seed=seed, device=device)
        run.log_metrics({f"val/{role}_video_auc": figures["all"] for role, figures in result["auc"].items()})
        run.log_dict(result, "bundle_fit.json")
        version = register(run, out, alias=register_as) if register_as else None
    return {**result, "registered_version": version, "run_id": getattr(run, "run_id", None)}


def main_run(experiment: str, tags: dict | None = None, **kwargs):
    """The job's MLflow run on rank 0, tagged with how many processes trained; on the other ranks of a torchrun
    job, no run (None): they log nothing."""
    if not D.is_main():
        return contextlib.nullcontext(None)
    return start_run(experiment, tags={**(tags or {}), "processes": D.world_size()}, **kwargs)


@dataclass
class TrainedGenerator:
    family: str
    model_dir: Path
    epochs_run: int
    run_id: str | None
    seconds: float


def run_generator_training(family: str, preset: str, out: str | Path, run_name: str | None = None,
                           world_identities: int = 40, tags: dict | None = None,
                           say: Callable[[str], None] = say_on_stderr, **overrides: Any) -> TrainedGenerator | None:
    """Train a generator family from a preset (keyword overrides; None values ignored) in an MLflow run of the
    `generators` experiment; the synthetic world it names is rendered first if absent. Under torchrun: None on
    every rank but 0."""
    spec, config = create_generator(family, preset, **overrides)
    started = time.perf_counter()
    with D.job(resolve_device(getattr(config, "device", "auto")).type):
        D.main_only(render_world_if_missing, getattr(config, "world", "data/synth"), world_identities, say=say)
        with main_run(GENERATOR_EXPERIMENT, run_name=run_name or f"{family}-{time.strftime('%m%d-%H%M')}",
                      params=config.to_dict(), tags={"family": family, **(tags or {})}) as run:
            fit, model_dir = spec.train(config, Path(out), run=run)
        if not D.is_main():
            return None
    return TrainedGenerator(family, Path(model_dir), fit.epochs_run, getattr(run, "run_id", None),
                            time.perf_counter() - started)
