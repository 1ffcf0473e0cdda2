"""A detector's metrics on scored samples (DeepfakeBench's `get_test_metrics`, ours): frame level and video
level, the video score being the robust aggregate of its frame logits exactly as `forensics detect` makes it,
and the figures a training run logs for an evaluated split."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from detectors.aggregate import aggregate_scores
from forensics.data.crops import Sample
from forensics.figures import confusion_figure, pr_figure, roc_figure, sample_grid
from forensics.metrics import summarize_scores, video_scores

HARDEST = 16   # crops per hardest-sample grid


def sigmoid(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64)))


def score_report(samples: Sequence[Sample], logits: np.ndarray, aggregate: str = "robust",
                 threshold: float | None = None, probability: Callable | None = None, ci: bool = False) -> dict:
    """Frame- and video-level metrics for scored samples.

    `probability` maps logits to calibrated probabilities (plain sigmoid if None); `threshold` applies to
    those probabilities (0.5 if None). Returns {"frame", "video"} summaries, the curves for figures, the
    video ids and the frame and video probabilities.
    """
    to_prob = probability or sigmoid
    labels = np.array([s.label for s in samples], np.int64)
    frame_probs = to_prob(logits)
    groups = [s.video for s in samples]
    videos, video_labels, video_logits = video_scores(groups, logits, labels,
                                                      aggregate=lambda z: aggregate_scores(z, method=aggregate))
    video_probs = to_prob(video_logits)
    thr = 0.5 if threshold is None else threshold
    frame = summarize_scores(labels, frame_probs, threshold=thr, ci=ci, groups=groups)
    video = summarize_scores(np.asarray(video_labels), video_probs, threshold=thr, ci=ci)
    return {"frame": frame, "video": video,
            "curves": {"frame": (labels, frame_probs), "video": (np.asarray(video_labels), video_probs)},
            "videos": list(videos), "frame_probs": frame_probs, "video_probs": video_probs}


def summaries(report: dict) -> dict:
    """The JSON-safe part of a score_report: {"frame": ..., "video": ...}."""
    return {"frame": report["frame"], "video": report["video"]}


def log_evaluation(run, split: str, samples: Sequence[Sample], report: dict, threshold: float) -> list[str]:
    """ROC, PR, confusion matrix and hardest-crop grids for one evaluated split; returns the artifact names."""
    curves = {"frames": report["curves"]["frame"], "videos": report["curves"]["video"]}
    names = []
    for name, fig in (("roc", roc_figure(curves, title=f"{split}: ROC")),
                      ("pr", pr_figure(curves, title=f"{split}: precision-recall"))):
        run.log_figure(fig, f"{split}/{name}.png")
        names.append(f"{split}/{name}.png")
    labels, probs = report["curves"]["video"]
    fig = confusion_figure(labels, (np.asarray(probs) >= threshold).astype(int))
    run.log_figure(fig, f"{split}/confusion_videos.png")
    names.append(f"{split}/confusion_videos.png")
    frame_probs = report["frame_probs"]
    for label, name, order in ((0, "hardest_real", -1), (1, "hardest_fake", 1)):
        idx = [i for i, s in enumerate(samples) if s.label == label]
        idx = sorted(idx, key=lambda i: order * frame_probs[i])[:HARDEST]
        if idx:
            grid = sample_grid([_still(samples[i].image) for i in idx],
                               [f"p={frame_probs[i]:.2f} f{samples[i].frame}" for i in idx], ncols=8)
            run.log_image(grid, f"{split}/{name}.png")
            names.append(f"{split}/{name}.png")
    return names


def _still(image: np.ndarray) -> np.ndarray:
    """A crop as it is; a clip [T, H, W, 3] by its middle frame."""
    return image[len(image) // 2] if image.ndim == 4 else image


def epoch_figures(run, report: dict, epoch: int) -> None:
    """Validation ROC and PR of one epoch (what DetectorTask logs at each epoch end)."""
    curves = report["curves"]
    for name, maker in (("roc", roc_figure), ("pr", pr_figure)):
        fig = maker({"frames": curves["frame"], "videos": curves["video"]}, title=f"validation, epoch {epoch}")
        run.log_figure(fig, f"validation/epoch_{epoch:03d}_{name}.png")
