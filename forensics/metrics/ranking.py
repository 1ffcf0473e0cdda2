"""Threshold-free and thresholded detection metrics from one ROC sweep.

Conventions used everywhere in forensics: label 1 = fake, 0 = real; a higher score means "more fake";
a sample is called fake when ``score >= threshold`` (scikit-learn's convention, so thresholds read off a
ROC curve classify exactly the points that curve counted).

Every metric that needs both classes (AUC, EER, AP, TPR@FPR) returns ``nan`` when one class is missing,
instead of raising: a tiny validation split or a bootstrap resample with no fakes must not crash a run.
``summarize_scores`` says why in its ``note``.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np
from sklearn.metrics import roc_curve

NAN = float("nan")
_FPR_TOLERANCE = 1e-12   # k / n_real is not always exactly the decimal target (3/300 != 0.01 in floats)


def check_inputs(labels, scores, who: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int 0/1 and scores as finite float64, both 1-D and the same length, or one clear error."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"{who}: {y.size} labels but {s.size} scores")
    if y.dtype == bool:
        y = y.astype(np.int64)
    bad = y[(y != 0) & (y != 1)] if y.size else y
    if bad.size:
        raise ValueError(f"{who}: labels must be 0 (real) or 1 (fake), got {np.unique(bad)[:3].tolist()}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{who}: {int(np.sum(~np.isfinite(s)))} of {s.size} scores are NaN or infinite")
    return y.astype(np.int64), s


def has_both_classes(labels: np.ndarray) -> bool:
    return labels.size > 0 and 0 < int(labels.sum()) < labels.size


@dataclass(frozen=True)
class RocPoints:
    """Every distinct operating point of a score list: one sort shared by AUC, EER, AP and TPR@FPR.

    ``thresholds[0]`` is +inf (nothing called fake); each later entry is a distinct score, descending.
    Tied scores form one point: a threshold cannot split a tie, so neither can any metric here.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    n_fake: int
    n_real: int

    @classmethod
    def of(cls, labels: np.ndarray, scores: np.ndarray) -> "RocPoints | None":
        """None when a class is missing (no curve exists); inputs must already be checked."""
        if not has_both_classes(labels):
            return None
        # drop_intermediate=False keeps every threshold: EER/TPR@FPR interpolate and read thresholds off them.
        fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=False)
        n_fake = int(labels.sum())
        return cls(fpr, tpr, thr, n_fake, int(labels.size - n_fake))

    def auc(self) -> float:
        return float(np.trapezoid(self.tpr, self.fpr))

    def eer(self) -> tuple[float, float]:
        """(EER, threshold) where FPR = FNR, linearly interpolated between the two points that straddle it."""
        gap = self.fpr - (1.0 - self.tpr)          # -1 at the +inf threshold, +1 at the lowest score
        i = int(np.argmax(gap >= 0.0))
        if gap[i] == 0.0 or i == 0:
            return float(self.fpr[i]), self.finite_threshold(i)
        t = gap[i - 1] / (gap[i - 1] - gap[i])     # fraction of the way from point i-1 to point i
        rate = self.fpr[i - 1] + t * (self.fpr[i] - self.fpr[i - 1])
        if not np.isfinite(self.thresholds[i - 1]):
            return float(rate), float(self.thresholds[i])
        threshold = self.thresholds[i - 1] + t * (self.thresholds[i] - self.thresholds[i - 1])
        return float(rate), float(threshold)

    def average_precision(self) -> float:
        """sum over thresholds of (recall gain) x precision: scikit-learn's step-wise AP, no interpolation."""
        tp = self.tpr * self.n_fake
        fp = self.fpr * self.n_real
        called = tp + fp
        precision = np.divide(tp, called, out=np.ones_like(tp), where=called > 0)
        return float(np.sum(np.diff(self.tpr) * precision[1:]))

    def best_index_at_fpr(self, fpr: float) -> int:
        """Index of the point with the highest TPR (then the lowest FPR) among those with FPR <= target.

        Point 0 (threshold +inf, FPR 0) always qualifies, so there is always an answer.
        """
        ok = np.flatnonzero(self.fpr <= fpr + _FPR_TOLERANCE)
        best_tpr = self.tpr[ok].max()
        return int(ok[self.tpr[ok] == best_tpr][0])

    def finite_threshold(self, i: int) -> float:
        """Threshold of point i; point 0's +inf becomes "just above the top score" so JSON can store it."""
        thr = self.thresholds[i]
        return float(thr if np.isfinite(thr) else np.nextafter(self.thresholds[1], np.inf))


def _points(labels, scores, who: str) -> RocPoints | None:
    return RocPoints.of(*check_inputs(labels, scores, who))


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve (tied scores count half); nan with one class."""
    points = _points(labels, scores, "roc_auc")
    return NAN if points is None else points.auc()


def eer(labels, scores) -> tuple[float, float]:
    """(equal error rate, threshold at which FPR = FNR); (nan, nan) with one class.

    The crossing is interpolated linearly between the two ROC points around it (and so is the threshold),
    so the EER of a small set is not stuck to the nearest k/n.
    """
    points = _points(labels, scores, "eer")
    return (NAN, NAN) if points is None else points.eer()


def average_precision(labels, scores) -> float:
    """Average precision with fake as the positive class (scikit-learn's definition); nan with one class."""
    points = _points(labels, scores, "average_precision")
    return NAN if points is None else points.average_precision()


def accuracy_at(labels, scores, threshold: float) -> float:
    """Fraction classified correctly when ``score >= threshold`` means fake; defined for one class too."""
    y, s = check_inputs(labels, scores, "accuracy_at")
    return NAN if y.size == 0 else float(np.mean((s >= threshold).astype(np.int64) == y))


def tpr_at_fpr(labels, scores, fpr: float) -> float:
    """Highest TPR over thresholds whose FPR <= ``fpr``; nan with one class.

    No interpolation: this is an operating point a deployed threshold can actually reach. Tied scores move
    together, so a tie of reals at the cut-off counts whole (conservative). With fewer than ``1/fpr`` real
    samples the only reachable FPR below the target is 0, so the value is the TPR at the strictest
    threshold: coarse and pessimistic; ``summarize_scores`` flags it in its ``note``.
    """
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"tpr_at_fpr: fpr must be in [0, 1], got {fpr}")
    points = _points(labels, scores, "tpr_at_fpr")
    return NAN if points is None else float(points.tpr[points.best_index_at_fpr(fpr)])


def threshold_at_fpr(labels, scores, fpr: float) -> float:
    """The threshold that reaches ``tpr_at_fpr`` (the strictest one if several do); nan with one class.

    If even the top score belongs to a real sample (only "nothing is fake" qualifies), the threshold is just
    above the top score, a finite number that a JSON config can store.
    """
    points = _points(labels, scores, "threshold_at_fpr")
    if points is None:
        return NAN
    return points.finite_threshold(points.best_index_at_fpr(fpr))


def fpr_is_coarse(n_real: int, target: float) -> bool:
    """True when ``n_real`` reals cannot resolve ``target`` (n_real < 1/target: only FPR = 0 fits under it)."""
    return target > 0 and n_real * target < 1.0 - _FPR_TOLERANCE
