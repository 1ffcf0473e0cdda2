"""Recalibrate the co-evolved detector for the domain `forensics detect` serves before it becomes champion.

The rounds play out at the generators' resolution (64-px faces resized to the detector's input), and each
round's threshold is a frame-level EER on those crops. `forensics detect` instead scores native-resolution
crops and turns a track's aggregated logit into a verdict. A threshold carried over from the game calls real
videos fake (the first cpu-small demo's champion scored its real test video 0.785 against a game threshold),
so the champion's Platt scale and threshold are refitted the way `forensics train detector` fits them: Platt on
frame logits, threshold at the EER of per-video aggregated scores, on native crops of the world's validation
identities (reals and their self-blended pseudo-fakes), which no round trained on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

FRAMES_PER_VIDEO = 8


def native_calibration_samples(world: str | Path, size: int, margin: float, seed: int, split: str = "val"):
    """Native-resolution crops of `split` (falling back to train) as real Samples plus a seeded pseudo-fake of
    each, grouped by video so that video-level scores aggregate like detect's."""
    from forensics.data.crops import FAKE, REAL, Sample
    from forensics.data.faceset import load_faceset
    from generators.blending import self_blend

    faces = load_faceset(world, size=size, margin=margin)
    chosen = faces.of_split(split)
    if len(chosen) == 0:
        chosen = faces.of_split("train")
    rng = np.random.default_rng(seed)
    samples = []
    for video in chosen.video_ids():
        clip = chosen.of_video(video)
        rows = np.linspace(0, len(clip) - 1, min(FRAMES_PER_VIDEO, len(clip))).round().astype(int)
        key = chosen.videos[video]
        for r in rows:
            image, frame = clip.images[r], int(clip.frame[r])
            samples.append(Sample(image, REAL, key, frame, "real"))
            fake = self_blend(image, clip.landmarks[r], rng)[0]
            samples.append(Sample(fake, FAKE, key + "#sbi", frame, "sbi"))
    if not samples:
        raise ValueError(f"{world}: no faces to calibrate the champion on")
    return samples


def calibrate_champion(model_dir: str | Path, world: str | Path, seed: int = 0, device: str = "cpu") -> dict:
    """Refit calibration and threshold of the detector in model_dir in place (see module docstring); the game's
    own calibration is kept in the config under `coevolve_calibration`. Returns the new figures."""
    from detectors import load_detector, save_detector
    from forensics.device import resolve_device
    from forensics.metrics import apply_platt, calibrate_threshold, fit_platt
    from forensics.training.detector_task import predict_logits, score_report

    loaded = load_detector(model_dir, device="cpu")
    meta = {k: v for k, v in loaded.meta.items() if k not in ("format", "detector", "weights_sha256")}
    crop = loaded.crop
    samples = native_calibration_samples(world, int(crop["size"]), float(crop["margin"]), seed)
    where = resolve_device(device)
    logits = predict_logits(loaded.model.to(where), [s.image for s in samples], where)
    labels = np.array([s.label for s in samples])
    calibration = fit_platt(labels, logits)
    if calibration["a"] <= 0:       # the detector ranks native pseudo-fakes below reals: keep the game's scale
        calibration = {**(meta.get("calibration") or {"a": 1.0, "b": 0.0}), "note": "native refit gave a <= 0; kept"}
    probability = lambda z: apply_platt(calibration, z)  # noqa: E731
    aggregate = meta.get("aggregate", "robust")
    pre = score_report(samples, logits, aggregate, None, probability)
    threshold = float(calibrate_threshold(*pre["curves"]["video"], method="eer"))
    report = score_report(samples, logits, aggregate, threshold, probability)
    figures = {f"{level}_{k}": float(report[level][k]) for level in ("frame", "video") for k in ("auc", "eer")}
    meta.update({
        "coevolve_calibration": {"threshold": meta.get("threshold"), "calibration": meta.get("calibration"),
                                 "threshold_level": meta.get("threshold_level")},
        "threshold": threshold, "calibration": calibration,
        "threshold_level": "video (EER of aggregated scores, native crops of validation identities + pseudo-fakes)",
        "champion_calibration": {"world": str(world), "samples": len(samples), **figures},
    })
    save_detector(model_dir, loaded.model.cpu(), meta)
    return {"threshold": threshold, "calibration": calibration, **figures}
