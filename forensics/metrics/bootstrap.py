"""Percentile bootstrap confidence intervals, optionally resampling whole groups (videos).

Frames of one video are strongly correlated: resampling frames as if they were independent pretends there
is far more evidence than there is and gives intervals that are too narrow. With ``groups`` each resample
draws videos with replacement and keeps all their frames, which is the unit that was actually sampled.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from forensics.metrics.ranking import NAN, check_inputs


def resample_indices(n: int, groups: Sequence | None, n_boot: int, seed: int):
    """Yield ``n_boot`` index arrays: plain with-replacement draws, or draws of whole groups."""
    rng = np.random.default_rng(seed)
    if groups is None:
        for _ in range(n_boot):
            yield rng.integers(0, n, size=n)
        return
    keys = np.asarray([str(g) for g in groups])
    if keys.size != n:
        raise ValueError(f"bootstrap: {keys.size} groups for {n} samples")
    _, inverse = np.unique(keys, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    for _ in range(n_boot):
        picked = rng.integers(0, len(members), size=len(members))
        yield np.concatenate([members[g] for g in picked])


def percentile_interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    """(lo, hi) over the finite values; resamples where the metric is undefined (one class) are skipped."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return NAN, NAN
    lo, hi = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def bootstrap_ci(metric_fn: Callable[[np.ndarray, np.ndarray], float], labels, scores, n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0, groups: Sequence | None = None) -> tuple[float, float]:
    """Percentile (1 - alpha) confidence interval of ``metric_fn(labels, scores)``.

    ``groups`` (e.g. the video id of each frame) makes each resample draw whole groups. Resamples on which
    the metric is nan (e.g. no fakes drawn) are left out; if all are, the interval is (nan, nan).
    """
    _check_boot_args(n_boot, alpha)
    y, s = check_inputs(labels, scores, "bootstrap_ci")
    if y.size == 0:
        return NAN, NAN
    values = np.array([metric_fn(y[idx], s[idx]) for idx in resample_indices(y.size, groups, n_boot, seed)],
                      dtype=np.float64)
    return percentile_interval(values, alpha)


def bootstrap_many(metrics_fn: Callable[[np.ndarray, np.ndarray], Mapping[str, float]], labels: np.ndarray,
                   scores: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0,
                   groups: Sequence | None = None) -> dict[str, tuple[float, float]]:
    """Like ``bootstrap_ci`` for a function returning several metrics, computed on the same resamples
    (one sort per resample instead of one per metric)."""
    _check_boot_args(n_boot, alpha)
    if labels.size == 0:
        return {}
    rows = [metrics_fn(labels[idx], scores[idx])
            for idx in resample_indices(labels.size, groups, n_boot, seed)]
    return {key: percentile_interval(np.array([row[key] for row in rows]), alpha) for key in rows[0]}


def _check_boot_args(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"bootstrap: n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"bootstrap: alpha must be in (0, 1), got {alpha}")
