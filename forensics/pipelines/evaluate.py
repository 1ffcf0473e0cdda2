"""`forensics evaluate`: a frame detector's numbers on any labelled dataset the adapters read.

Users bring FaceForensics++, Celeb-DF, DFDC or their own folders and want the figures papers print, so each is
reported the way it is usually computed, beside what `forensics detect` would say:

- frame level: every sampled face crop on its own (CIs resample whole videos, so they are not too narrow);
- video level, DeepfakeBench's way: the mean of the frame probabilities (plain sigmoid) per video;
- video level, the product's way: the model's own robust aggregate of the frame logits, calibrated, at the
  model's threshold, exactly as a `detect` record scores a video;
- AUC, EER, AP, accuracy at the threshold and TPR at FPR 1% / 0.1%, each with a 95% bootstrap interval;
- the same per manipulation method (each method's fakes against all the reals).

Faces come through the face-crop cache with the model's own crop size and margin (the one crop path), 32
frames per video by default as in DeepfakeBench. Results: results.json and results.md in the output folder,
ROC and PR figures, and one MLflow run in the `evaluate` experiment. The model's training footage is part of
every result, so a number is never shown apart from what the model was trained on.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from detectors.aggregate import aggregate_scores
from detectors.checkpoint import LoadedDetector, load_detector
from detectors.evaluate import score_report, sigmoid
from detectors.footage import trained_on
from detectors.registry import detector_kind
from forensics.data.cache import CacheConfig
from forensics.data.crops import CropSet, Sample
from forensics.data.prepare import cache_dataset
from forensics.device import resolve_device
from forensics.figures import pr_figure, roc_figure
from forensics.io import atomic_write_json, atomic_write_text
from forensics.metrics import summarize_scores, video_scores
from forensics.metrics.summary import metric_values
from forensics.provenance import SYNTHETIC_ONLY
from forensics.tracking import start_run

EXPERIMENT = "evaluate"
SPLITS = ("train", "val", "test", "all")
LEVELS = {"frame": "frame (every sampled face)",
          "video_mean": "video, mean of frame probabilities (DeepfakeBench)",
          "video": "video, forensics detect's aggregate"}


class EvaluateError(ValueError):
    """Why a dataset cannot be evaluated (one line)."""


@dataclass
class Evaluation:
    doc: dict
    out: Path


def evaluate_detector(model_dir: str | Path, root: str | Path, out: str | Path, dataset: str | None = None,
                      split: str = "test", frames: int = 32, cache_dir: str | Path | None = None,
                      device: str = "auto", seed: int = 0, progress: bool = True, run_name: str | None = None,
                      say: Callable[[str], None] = print, options: dict | None = None,
                      log_run: bool = True) -> Evaluation:
    """Score the dataset at `root` with the detector at `model_dir`; write the results, and log them in an MLflow
    run unless `log_run` is False (a benchmark suite logs its own). `options` go to the dataset adapter."""
    if split not in SPLITS:
        raise EvaluateError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    started = time.perf_counter()
    detector = load_detector(model_dir, device=resolve_device(device))
    if detector_kind(detector.name) != "frame":
        raise EvaluateError(f"{model_dir}: {detector.name} is a clip detector; evaluate scores frame detectors "
                            f"(pass a frame detector, or a bundle's frame model)")
    spec = detector.crop_spec
    cached = cache_dataset(root, CacheConfig(frames=frames, crop_size=spec.size, margin=spec.margin, device=device),
                           dataset=dataset, cache_dir=cache_dir or default_cache(root, out),
                           split=None if split == "all" else split,
                           progress=progress, options=options)
    crops = CropSet(cached.cache, None if split == "all" else split)
    samples, logits = score_crops(detector, crops)
    _check_classes(samples, root, split)
    doc = report(detector, samples, logits, seed=seed)
    doc.update(model={"path": str(Path(model_dir).resolve()), "name": detector.name, "sha256": detector.sha256,
                      "threshold": detector.threshold, "trained_on": trained_on([detector])},
               dataset={"name": cached.dataset, "root": str(Path(root).resolve()), "split": split,
                        "options": dict(options or {}),
                        "frames_per_video": frames, "videos": len({s.video for s in samples}),
                        **_left_out(cached)},
               seconds=round(time.perf_counter() - started, 1))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "results.json", doc)
    atomic_write_text(out / "results.md", markdown(doc))
    figures = {"roc.png": roc_figure(_curves(doc, samples, logits, detector), "video ROC"),
               "pr.png": pr_figure(_curves(doc, samples, logits, detector), "video precision-recall")}
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110)
    if log_run:
        _log(doc, figures, run_name or f"{detector.name}-{cached.dataset}-{split}")
    say(summary_line(doc, out))
    return Evaluation(doc, out)


def default_cache(root: str | Path, out: str | Path) -> Path:
    """ROOT/face_cache_eval, apart from a training cache of the same dataset (other frame counts would
    invalidate each other's crops), so every later evaluation of the same crop size reuses it; OUT/face_cache
    when the dataset folder is read-only (shared storage)."""
    root = Path(root)
    return root / "face_cache_eval" if os.access(root, os.W_OK) else Path(out) / "face_cache"


def _left_out(cached) -> dict:
    """The dataset's files (in the split) that gave no face, or could not be read: named in the results."""
    sources = {str(Path(r.path).resolve()) for r in cached.rows}
    entries = [e for e in cached.cache.entries(status=None) if e.source in sources]
    return {"no_face": sum(e.status == "no_face" for e in entries),
            "unreadable": [f"{e.source}: {e.error}" for e in entries if e.status == "error"]}


def score_crops(detector: LoadedDetector, crops: CropSet) -> tuple[list[Sample], np.ndarray]:
    """Every cached crop of the split as a sample, with its frame logit; one source file's crops at a time, so
    memory stays bounded on a dataset of any size."""
    by_entry: dict[str, list] = {}
    for ref in crops.refs:
        by_entry.setdefault(ref.entry.source, []).append(ref)
    samples, logits = [], []
    for refs in by_entry.values():
        array = crops.crops_of(refs[0].entry)
        logits.append(detector.logits(np.asarray(array[[r.index for r in refs]])))
        samples.extend(crops.real_sample(r) for r in refs)
    return samples, (np.concatenate(logits) if logits else np.zeros(0))


def report(detector: LoadedDetector, samples: list[Sample], logits: np.ndarray, seed: int = 0) -> dict:
    """The three levels for all fakes, then per method (see the module docstring)."""
    aggregate = detector.meta.get("aggregate", "robust")
    out = {"levels": _levels(detector, samples, logits, aggregate, seed), "by_method": {}}
    for method in sorted({s.method for s in samples if s.label == 1}):
        keep = [i for i, s in enumerate(samples) if s.label == 0 or s.method == method]
        out["by_method"][method] = _levels(detector, [samples[i] for i in keep], logits[keep], aggregate, seed)
    return out


def _levels(detector: LoadedDetector, samples: list[Sample], logits: np.ndarray, aggregate: str, seed: int) -> dict:
    product = score_report(samples, logits, aggregate, threshold=detector.threshold,
                           probability=detector.probability, ci=True)
    labels = np.array([s.label for s in samples])
    _, video_labels, mean_probs = video_scores([s.video for s in samples], sigmoid(logits), labels,
                                               aggregate=np.mean)
    mean = summarize_scores(np.asarray(video_labels), np.asarray(mean_probs), ci=True, seed=seed)
    return {"frame": _plain(product["frame"]), "video_mean": _plain(mean), "video": _plain(product["video"])}


def _plain(summary: dict) -> dict:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in summary.items()}


def _curves(doc: dict, samples: list[Sample], logits: np.ndarray, detector: LoadedDetector) -> dict:
    """Video-level curves (the product's aggregate): all fakes, then each method."""
    aggregate = detector.meta.get("aggregate", "robust")
    labels = np.array([s.label for s in samples])
    curves = {}
    for method in [None, *doc["by_method"]]:
        keep = [i for i, s in enumerate(samples) if s.label == 0 or method is None or s.method == method]
        _, y, z = video_scores([samples[i].video for i in keep], logits[keep], labels[keep],
                               aggregate=lambda v: aggregate_scores(v, method=aggregate))
        curves["all fakes" if method is None else method] = (np.asarray(y), np.asarray(z))
    return curves


def _check_classes(samples: list[Sample], root, split: str) -> None:
    videos = {label: len({s.video for s in samples if s.label == label}) for label in (0, 1)}
    if not samples:
        raise EvaluateError(f"{root}: no face crops in the {split} split (no videos there, or no face found in any)")
    if not videos[0] or not videos[1]:
        missing = "real" if not videos[0] else "fake"
        hint = "" if split == "all" else " (try --split all)"
        raise EvaluateError(f"{root}: the {split} split has no {missing} videos with a face ({videos[0]} real, "
                            f"{videos[1]} fake); AUC needs both{hint}")


def _log(doc: dict, figures: dict, run_name: str) -> None:
    params = {"model": doc["model"]["path"], "model_sha256": doc["model"]["sha256"], "dataset": doc["dataset"]["name"],
              "root": doc["dataset"]["root"], "split": doc["dataset"]["split"],
              "frames_per_video": doc["dataset"]["frames_per_video"]}
    with start_run(EXPERIMENT, run_name=run_name, params=params,
                   tags={"trained_on": doc["model"]["trained_on"] or "not recorded"}) as run:
        for level, summary in doc["levels"].items():
            run.log_metrics(metric_values(summary, f"{level}/"))
        for method, levels in doc["by_method"].items():
            run.log_metrics(metric_values(levels["video"], f"method/{method}/video_"))
        for name, fig in figures.items():
            run.log_figure(fig, name)
        run.log_dict(doc, "results.json")


# ---------------------------------------------------------------------- text

def _cell(summary: dict, key: str) -> str:
    value, ci = summary.get(key), summary.get(f"{key}_ci")
    if value is None:
        return "n/a"
    if ci and all(b is not None and np.isfinite(b) for b in ci):
        return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"
    return f"{value:.3f}"


def _table(levels: dict) -> list[str]:
    lines = ["| level | fake / real | AUC [95% CI] | EER | AP | TPR@FPR 1% | TPR@FPR 0.1% |",
             "|---|---|---|---|---|---|---|"]
    for level, title in LEVELS.items():
        s = levels[level]
        lines.append(f"| {title} | {s['n_fake']} / {s['n_real']} | {_cell(s, 'auc')} | {_cell(s, 'eer')} | "
                     f"{_cell(s, 'ap')} | {_cell(s, 'tpr@fpr=1%')} | {_cell(s, 'tpr@fpr=0.1%')} |")
    notes = sorted({s["note"] for s in levels.values() if s.get("note")})
    return lines + [f"\nNote: {n}" for n in notes]


def markdown(doc: dict) -> str:
    model, data = doc["model"], doc["dataset"]
    lines = [f"# {model['name']} on {data['name']} ({data['split']} split)", "",
             f"Model `{model['path']}` (sha256 {model['sha256'][:16]}), trained on: "
             f"{model['trained_on'] or 'not recorded in the model'}. Dataset `{data['root']}`: {data['videos']} "
             f"videos with a face, {data['frames_per_video']} frames each"
             + (f"; {data['no_face']} files with no face were left out" if data["no_face"] else "")
             + (f"; {len(data['unreadable'])} files could not be read" if data["unreadable"] else "") + "."]
    if model["trained_on"] == SYNTHETIC_ONLY:
        lines += ["", "**This model never saw a real face** (built-in synthetic world only): its scores on real "
                      "footage are not validated probabilities."]
    lines += ["", "## All fakes", "", *_table(doc["levels"])]
    for method, levels in doc["by_method"].items():
        lines += ["", f"## {method} (its fakes against all the reals)", "", *_table(levels)]
    lines += ["", f"Accuracy at the model's threshold {model['threshold']:.3f} (video level, calibrated): "
                  f"{_cell(doc['levels']['video'], 'acc')}. Intervals: 95% bootstrap over videos.", ""]
    return "\n".join(lines)


def summary_line(doc: dict, out: Path) -> str:
    video, mean, frame = (doc["levels"][k] for k in ("video", "video_mean", "frame"))
    return (f"evaluate: {doc['dataset']['name']} {doc['dataset']['split']}: {video['n_fake']} fake / "
            f"{video['n_real']} real videos; video AUC {_cell(video, 'auc')} (detect's aggregate), "
            f"{_cell(mean, 'auc')} (mean of frame probabilities); frame AUC {_cell(frame, 'auc')}; "
            f"trained on {doc['model']['trained_on'] or 'not recorded'}; results in {out}")
