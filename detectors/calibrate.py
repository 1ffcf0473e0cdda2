"""Turning a trained detector's logits into probabilities and a verdict threshold: the one recipe.

Platt scaling, p = sigmoid(a * logit + b), is fitted on frame logits of held-out data (two parameters
cannot overfit it, and with a > 0 the ranking is unchanged). The threshold is the EER point of the scores
a user's verdict is made from: per video when the samples are grouped by video (a track's robust aggregate
of its frame logits, as `forensics detect` computes it), per frame otherwise.

A fit with a <= 0 means the detector ranks these fakes *below* the reals: calibrating it would invert every
score downstream (and in `forensics detect`), so calibrate() refuses it with a one-line CalibrationError
and the caller decides what a refusal means (a training run fails; the game records it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from detectors.aggregate import aggregate_scores
from forensics.metrics import apply_platt, calibrate_threshold, fit_platt, video_scores


class CalibrationError(ValueError):
    """A calibration that must not be used; the message is one line saying why."""


@dataclass
class Calibration:
    """Platt parameters, the decision threshold on calibrated probabilities, and the level it was set at."""
    a: float
    b: float
    threshold: float
    level: str                  # "video" (aggregated per video) or "frame"
    samples: int
    videos: int | None = None

    @property
    def platt(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b}

    def probability(self, logits) -> np.ndarray:
        return apply_platt(self.platt, logits)

    def to_meta(self) -> dict:
        """The keys a checkpoint's config.json carries (threshold, calibration, threshold_level)."""
        return {"threshold": self.threshold, "calibration": self.platt,
                "threshold_level": f"{self.level} (EER of held-out {self.level}s)"}


def calibrate(labels: Sequence[int] | np.ndarray, logits: Sequence[float] | np.ndarray,
              groups: Sequence[str] | None = None, aggregate: str = "robust") -> Calibration:
    """Fit Platt on frame logits and set the threshold at the EER of video (with `groups`) or frame scores.

    Raises CalibrationError (one line) for data with one class only or a fit that would invert the scores.
    """
    labels, logits = _check(labels, logits)
    platt = fit_platt(labels, logits)
    if not platt["a"] > 0:
        raise CalibrationError(f"calibration refused: Platt slope a = {platt['a']:.4g} <= 0 (the detector scores "
                               f"these fakes below the reals)")
    return with_threshold(platt, labels, logits, groups, aggregate)


def with_threshold(platt: dict, labels, logits, groups: Sequence[str] | None = None,
                   aggregate: str = "robust") -> Calibration:
    """The EER threshold of given Platt parameters on these samples (video level with `groups`)."""
    labels, logits = _check(labels, logits)
    a, b = float(platt.get("a", 1.0)), float(platt.get("b", 0.0))
    probability = lambda z: apply_platt({"a": a, "b": b}, z)  # noqa: E731
    if groups is None:
        threshold = calibrate_threshold(labels, probability(logits), method="eer")
        level, videos = "frame", None
    else:
        names, video_labels, video_logits = video_scores(list(groups), logits, labels,
                                                         aggregate=lambda z: aggregate_scores(z, method=aggregate))
        if len(set(np.asarray(video_labels).tolist())) < 2:
            raise CalibrationError(f"calibration needs real and fake videos, got {len(names)} video(s) of one class")
        threshold = calibrate_threshold(video_labels, probability(video_logits), method="eer")
        level, videos = "video", len(names)
    return Calibration(a=a, b=b, threshold=float(threshold), level=level, samples=int(labels.size), videos=videos)


def _check(labels, logits) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, np.int64)
    logits = np.asarray(logits, np.float64)
    if labels.size == 0 or labels.min() == labels.max():
        raise CalibrationError(f"calibration needs real and fake samples, got {int(labels.sum())} fake of "
                               f"{labels.size}")
    return labels, logits
