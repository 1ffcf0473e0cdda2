"""Recalibrate the co-evolved detector for the domain `forensics detect` serves before it becomes champion.

The rounds play out at the generators' resolution (64-px faces resized to the detector's input), and each
round's threshold is a frame-level EER on those crops. `forensics detect` instead scores native-resolution
crops and turns a track's aggregated logit into a verdict. A threshold carried over from the game calls real
videos fake (the first cpu-small demo's champion scored its real test video 0.785 against a game threshold),
so the champion's Platt scale and threshold are refitted the way `forensics train detector` fits them, on
crops cut by the one crop path that detect uses (the face-crop cache: MTCNN on the world's validation
videos, aligned at the detector's recorded crop), with a self-blended pseudo-fake of each crop.
"""
from __future__ import annotations

from pathlib import Path

from detectors.batches import evaluation_samples
from detectors.checkpoint import load_detector
from detectors.train import recalibrate
from forensics.data.cache import CacheConfig, FaceCache
from forensics.data.crops import CropSet, Sample
from forensics.data.registry import create_dataset

FRAMES_PER_VIDEO = 8


def native_calibration_samples(world: str | Path, cache_dir: str | Path, size: int, margin: float, seed: int,
                               device: str = "cpu", split: str = "val") -> list[Sample]:
    """Crops of `split`'s real videos (falling back to train) through the face-crop cache, each with a seeded
    pseudo-fake, grouped by video so that video-level scores aggregate like detect's."""
    rows = [r for r in create_dataset("synthetic", world).rows() if r.label == "real"]
    chosen = [r for r in rows if r.split == split] or [r for r in rows if r.split == "train"]
    cache = FaceCache(cache_dir, CacheConfig(frames=FRAMES_PER_VIDEO, crop_size=size, margin=margin, device=device))
    cache.build(chosen, progress=False)
    crops = CropSet(cache, chosen[0].split if chosen else split)
    if not crops.reals:
        raise ValueError(f"{world}: no faces to calibrate the champion on")
    return evaluation_samples(crops, seed=seed, pseudo_fakes=True)


def calibrate_champion(model_dir: str | Path, world: str | Path, cache_dir: str | Path, seed: int = 0,
                       device: str = "cpu") -> dict:
    """Refit calibration and threshold of the detector in model_dir in place (see module docstring); the game's
    own calibration is kept in the config under `coevolve_calibration`. Returns the new figures."""
    crop = load_detector(model_dir).crop_spec
    samples = native_calibration_samples(world, cache_dir, crop.size, crop.margin, seed, device)
    return recalibrate(model_dir, samples, device=device, keep_as="coevolve_calibration",
                       note="native crops of validation identities + pseudo-fakes",
                       extra_meta={"champion_calibration": {"world": str(world)}})
