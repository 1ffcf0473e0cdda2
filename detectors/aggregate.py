"""Clip-level score: one logit for a face track (or a whole clip) from its frame logits.

Why not the mean: a manipulated track is often fake in only part of its frames (the swap fails or is
switched off under occlusion, profile views, fast motion; an edit may cover only a few seconds), so the
mean dilutes a clear signal with the untouched frames. Why not the max: it is decided by one frame, and
on a real video a single blurred, occluded or badly aligned frame is the usual false alarm.

"robust" (the default) is the winsorised mean of the upper half of the frame logits:
  1. keep the k = ceil(n / 2) highest logits: the track's evidence for "fake" lives in its most
     suspicious frames, and as long as a sizeable fraction f of frames are fake the score moves by about
     min(2f, 1) of the gap between fake and real frame logits, where the mean moves by only f;
  2. winsorise: the top m = floor(0.1 n) of those are set to the (m+1)-th highest value, so no single
     frame (or up to 10 % of frames) can drive the score, which bounds the influence a spurious spike
     can have on a real track.
For short tracks (n < 10) nothing is winsorised: with a handful of frames an outlier cannot be told
from the signal. The result stays in logit space so the model's calibration (fitted on these track
scores) turns it into a probability.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from forensics.registry import Registry

UPPER_FRACTION = 0.5   # share of frames that carry a track's evidence in "robust"
WINSOR_FRACTION = 0.1  # share of top frames whose individual values are capped in "robust"
TOPK_FRACTION = 0.25   # share of frames averaged by "topk"


def robust_upper_mean(logits: np.ndarray, upper: float = UPPER_FRACTION, winsor: float = WINSOR_FRACTION) -> float:
    ordered = np.sort(logits)[::-1]
    n = len(ordered)
    top = ordered[: max(1, math.ceil(upper * n))].copy()
    capped = min(int(math.floor(winsor * n)), len(top) - 1)
    if capped > 0:
        top[:capped] = top[capped]
    return float(top.mean())


def topk_mean(logits: np.ndarray, fraction: float = TOPK_FRACTION) -> float:
    ordered = np.sort(logits)[::-1]
    return float(ordered[: max(1, math.ceil(fraction * len(ordered)))].mean())


AGGREGATORS: Registry[Callable[[np.ndarray], float]] = Registry("aggregation method")
AGGREGATORS.add("robust", robust_upper_mean)
AGGREGATORS.add("mean", lambda x: float(np.mean(x)))
AGGREGATORS.add("median", lambda x: float(np.median(x)))
AGGREGATORS.add("max", lambda x: float(np.max(x)))
AGGREGATORS.add("topk", topk_mean)


def aggregate_scores(frame_logits: Sequence[float], method: str = "robust") -> float:
    """One logit for a track/clip from its frame logits; see the module docstring for "robust"."""
    aggregate = AGGREGATORS.get(method)
    values = np.asarray(frame_logits, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("aggregate_scores: no frame logits to aggregate")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"aggregate_scores: {int(np.sum(~np.isfinite(values)))} frame logit(s) are not finite")
    return aggregate(values)
