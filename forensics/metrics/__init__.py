"""Detection metrics: frame- and video-level ROC AUC, EER, AP, TPR@FPR, bootstrap CIs, calibration.

Labels: 1 = fake, 0 = real. Scores: higher = more fake; ``score >= threshold`` is called fake.
"""
from forensics.metrics.bootstrap import bootstrap_ci
from forensics.metrics.calibration import (apply_platt, calibrate_threshold, expected_calibration_error,
                                           fit_platt)
from forensics.metrics.ranking import (accuracy_at, average_precision, eer, roc_auc, threshold_at_fpr,
                                       tpr_at_fpr)
from forensics.metrics.summary import metric_values, summarize_scores, video_scores

__all__ = [
    "roc_auc", "eer", "average_precision", "accuracy_at", "tpr_at_fpr", "threshold_at_fpr", "bootstrap_ci",
    "summarize_scores", "metric_values", "video_scores", "fit_platt", "apply_platt", "calibrate_threshold",
    "expected_calibration_error",
]
