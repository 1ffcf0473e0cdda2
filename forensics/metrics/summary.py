"""One dictionary per evaluated score list (what runs log and reports show), and frame -> video scores."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from forensics.metrics.bootstrap import bootstrap_many
from forensics.metrics.ranking import NAN, RocPoints, check_inputs, fpr_is_coarse

FPR_TARGETS = {"tpr@fpr=1%": 0.01, "tpr@fpr=0.1%": 0.001}
CI_KEYS = ("auc", "eer", "ap", "acc", *FPR_TARGETS)


def _metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """All score metrics from a single ROC sweep (so a 1000-resample bootstrap stays cheap)."""
    acc = float(np.mean((scores >= threshold).astype(np.int64) == labels)) if labels.size else NAN
    points = RocPoints.of(labels, scores)
    if points is None:
        return {"auc": NAN, "eer": NAN, "eer_threshold": NAN, "ap": NAN, "acc": acc,
                **{key: NAN for key in FPR_TARGETS}}
    rate, rate_threshold = points.eer()
    out = {"auc": points.auc(), "eer": rate, "eer_threshold": rate_threshold, "ap": points.average_precision(),
           "acc": acc}
    for key, target in FPR_TARGETS.items():
        out[key] = float(points.tpr[points.best_index_at_fpr(target)])
    return out


def summarize_scores(labels, scores, threshold: float = 0.5, ci: bool = False, n_boot: int = 1000,
                     seed: int = 0, groups: Sequence | None = None, alpha: float = 0.05) -> dict:
    """auc, eer, eer_threshold, ap, acc (at ``threshold``), tpr@fpr=1%, tpr@fpr=0.1%, n, n_fake, n_real.

    With ``ci``: "<key>_ci": [lo, hi] for auc, eer, ap, acc and the TPRs (percentile bootstrap; ``groups``
    resamples whole videos). A "note" key (a string) is present only when a number needs a caveat: a
    missing class (the ranking metrics are nan) or too few reals to resolve an FPR target. Use
    ``metric_values`` to get just the finite numbers for a metrics logger.
    """
    y, s = check_inputs(labels, scores, "summarize_scores")
    out: dict = _metrics(y, s, threshold)
    n_fake = int(y.sum())
    out.update(n=int(y.size), n_fake=n_fake, n_real=int(y.size - n_fake))
    if ci:
        intervals = bootstrap_many(lambda yy, ss: _metrics(yy, ss, threshold), y, s, n_boot=n_boot, alpha=alpha,
                                   seed=seed, groups=groups)
        for key in CI_KEYS:
            out[f"{key}_ci"] = list(intervals.get(key, (NAN, NAN)))
    note = _note(out["n_fake"], out["n_real"])
    if note:
        out["note"] = note
    return out


def _note(n_fake: int, n_real: int) -> str:
    if n_fake + n_real == 0:
        return "no samples: every metric is undefined (nan)"
    if n_fake == 0 or n_real == 0:
        present = "fake" if n_real == 0 else "real"
        return f"only {present} samples: auc, eer, ap and tpr@fpr are undefined (nan); acc is still defined"
    coarse = [key for key, target in FPR_TARGETS.items() if fpr_is_coarse(n_real, target)]
    if not coarse:
        return ""
    return (f"{', '.join(coarse)}: only {n_real} real samples, too few to resolve that FPR; "
            f"the value is the TPR with no false alarm at all (coarse, pessimistic)")


def metric_values(summary: dict, prefix: str = "") -> dict[str, float]:
    """The finite numeric entries of a summary (CIs as <key>_ci_lo/_hi), ready for ``Run.log_metrics``."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if key.endswith("_ci") and isinstance(value, (list, tuple)) and len(value) == 2:
            for end, bound in zip(("lo", "hi"), value):
                if np.isfinite(bound):
                    out[f"{prefix}{key}_{end}"] = float(bound)
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and np.isfinite(value):
            out[f"{prefix}{key}"] = float(value)
    return out


def video_scores(frame_groups: Sequence, frame_scores, frame_labels,
                 aggregate: Callable[[list[float]], float] | None = None
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video_ids in order of first appearance, labels int64, scores float64): one score per video.

    ``aggregate`` receives the video's frame scores (a list of floats, in input order); default: the mean.
    For logits, pass ``detectors.aggregate_scores``, which resists a few outlier frames. A video whose
    frames carry different labels is a manifest bug, not something to average away: ValueError naming it.
    """
    y, s = check_inputs(frame_labels, frame_scores, "video_scores")
    aggregate = aggregate or (lambda xs: float(np.mean(xs)))
    groups = [str(g) for g in frame_groups]
    if len(groups) != y.size:
        raise ValueError(f"video_scores: {len(groups)} group ids for {y.size} frame scores")
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    ids = list(members)
    labels = np.empty(len(ids), np.int64)
    scores = np.empty(len(ids), np.float64)
    for k, vid in enumerate(ids):
        idx = np.asarray(members[vid])
        video_labels = np.unique(y[idx])
        if video_labels.size != 1:
            raise ValueError(f"video_scores: video {vid!r} has frames labelled both real and fake")
        labels[k] = video_labels[0]
        scores[k] = float(aggregate([float(v) for v in s[idx]]))
    return ids, labels, scores
