"""Turning detector logits into probabilities that mean what they say, and choosing thresholds.

A detector trained with BCE on balanced crops is usually over-confident on new data; Platt scaling fits
``p = sigmoid(a * logit + b)`` on held-out data: ``a`` is an inverse temperature, ``b`` a prior shift.
Two parameters cannot overfit a validation set, and the ranking (AUC) is unchanged when ``a > 0``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from forensics.metrics.ranking import NAN, RocPoints, check_inputs

# scikit-learn minimises C * sum(log-loss) + a^2 / 2 (the intercept b is not penalised). C = 1 is negligible
# against hundreds of samples, yet keeps ``a`` finite when the validation logits separate perfectly.
PLATT_C = 1.0


def fit_platt(labels, logits) -> dict[str, float]:
    """{"a", "b"} of ``sigmoid(a * logit + b)`` by (mildly L2-regularised) logistic regression on the logits.

    Needs both classes: a calibration fitted on one class would silently map everything to that class, so
    this raises ValueError instead.
    """
    y, z = check_inputs(labels, logits, "fit_platt")
    if y.size == 0 or y.min() == y.max():
        raise ValueError(f"fit_platt: needs both real and fake samples, got {int(y.sum())} fake of {y.size}")
    model = LogisticRegression(C=PLATT_C, solver="lbfgs", max_iter=1000)
    model.fit(z.reshape(-1, 1), y)
    return {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}


def apply_platt(params: dict, logits) -> np.ndarray:
    """Calibrated probabilities of fake, computed without overflow for any logit."""
    z = np.asarray(logits, dtype=np.float64)
    return expit(float(params.get("a", 1.0)) * z + float(params.get("b", 0.0)))


def calibrate_threshold(labels, probs, method: str = "eer", target_fpr: float = 0.01) -> float:
    """A decision threshold (``score >= threshold`` is fake) chosen on held-out scores.

    method="eer": where false alarms and misses are equally likely (FPR = FNR), interpolated.
    method="fpr": the threshold giving the highest TPR with FPR <= ``target_fpr`` (real data is mostly real,
    so false alarms are what a deployment budgets). Raises ValueError with one class: there is no threshold
    to learn from it, and a nan stored in a model's config would break every later detection.
    """
    y, s = check_inputs(labels, probs, "calibrate_threshold")
    points = RocPoints.of(y, s)
    if points is None:
        raise ValueError(f"calibrate_threshold: needs both real and fake samples, "
                         f"got {int(y.sum())} fake of {y.size}")
    if method == "eer":
        return points.eer()[1]
    if method == "fpr":
        if not 0.0 <= target_fpr <= 1.0:
            raise ValueError(f"calibrate_threshold: target_fpr must be in [0, 1], got {target_fpr}")
        return points.finite_threshold(points.best_index_at_fpr(target_fpr))
    raise ValueError(f"calibrate_threshold: method must be 'eer' or 'fpr', got {method!r}")


def expected_calibration_error(labels, probs, bins: int = 10) -> float:
    """ECE of the fake probability: sum over equal-width bins of (bin share) x |fraction fake - mean prob|.

    0 means "of the samples given p = 0.8, 80 % are fake" holds throughout; nan for no samples.
    """
    y, p = check_inputs(labels, probs, "expected_calibration_error")
    if bins < 1:
        raise ValueError(f"expected_calibration_error: bins must be >= 1, got {bins}")
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError(f"expected_calibration_error: probabilities must be in [0, 1], "
                         f"got range [{p.min():.3g}, {p.max():.3g}]")
    if y.size == 0:
        return NAN
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    frac_fake = np.bincount(which, weights=y, minlength=bins)
    mean_prob = np.bincount(which, weights=p, minlength=bins)
    return float(np.sum(np.abs(frac_fake - mean_prob)) / y.size)
