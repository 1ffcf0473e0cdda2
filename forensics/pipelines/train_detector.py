"""The detector recipe: cached crops -> train with the shared loop -> calibrate on validation -> test on
unseen identities -> save (safetensors + JSON) -> register in MLflow.

Calibration happens after training, on validation data only: Platt scaling turns logits into
probabilities an analyst can read, and the decision threshold is the EER point of validation videos. The test split
(identities never seen in training or calibration) is touched once, at the end, and its figures go to
MLflow: ROC and PR (frame and video level), the confusion matrix at the threshold, and the hardest real
and fake crops.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forensics.data.cache import FaceCache
from forensics.data.crops import CropSet, evaluation_samples
from forensics.training.detector_task import DetectorTask, DetectorTrainConfig, predict_logits, score_report

HARDEST = 16   # crops per hardest-sample grid


@dataclass
class DetectorTrainResult:
    model_dir: Path
    threshold: float
    calibration: dict
    validation: dict            # frame/video summaries at the calibrated threshold
    test: dict | None           # same on the test split, with bootstrap CIs (None: no test split)
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    registered_version: str | None = None
    figures: list[str] = field(default_factory=list)


def split_crops(cache: FaceCache, config: DetectorTrainConfig) -> tuple[CropSet, CropSet, CropSet | None]:
    """train / val / test crop sets; a dataset without a val split lends 15% of its train videos."""
    train = CropSet(cache, "train")
    val = CropSet(cache, "val", max_per_video=config.eval_per_video)
    test = CropSet(cache, "test", max_per_video=config.eval_per_video)
    if not val.refs:
        held = {v for v in train.videos() if _fraction(v, config.seed) < 0.15}
        val = train.subset(lambda v: v in held)
        train = train.subset(lambda v: v not in held)
    return train, val, (test if test.refs else None)


def train_detector(config: DetectorTrainConfig, cache: FaceCache, out_dir: str | Path, run=None,
                   resume: bool = True, register: bool = True, alias: str = "challenger",
                   progress: bool = True) -> DetectorTrainResult:
    from detectors import save_detector
    from forensics.device import resolve_device
    from forensics.metrics import apply_platt, calibrate_threshold, fit_platt
    from forensics.training import TrainConfig, Trainer, load_module_weights

    out_dir = Path(out_dir)
    train, val, test = split_crops(cache, config)
    task = DetectorTask(config, train, val)
    trainer = Trainer(task, TrainConfig(epochs=config.epochs, grad_accum=config.grad_accum, device=config.device,
                                        seed=config.seed, patience=config.patience, monitor="val/auc", mode="max",
                                        checkpoint_dir=str(out_dir / "checkpoints"), resume=resume,
                                        progress=progress), run=run)
    fit = trainer.fit()
    model = task.model
    model.load_state_dict(load_module_weights(out_dir / "checkpoints" / "best", "model"))
    device = resolve_device(config.device)
    model.to(device).eval()

    val_samples = task.validation_samples()
    val_logits = predict_logits(model, [s.image for s in val_samples], device, config.eval_batch_size)
    val_labels = np.array([s.label for s in val_samples])
    calibration = fit_platt(val_labels, val_logits)
    probability = lambda z: apply_platt(calibration, z)  # noqa: E731
    # The verdict users get is per video (aggregated track logits), so the threshold is the EER point of the
    # validation videos, not of frames: aggregation shifts a video's logit above its typical frame's.
    pre = score_report(val_samples, val_logits, config.aggregate, None, probability)
    threshold = float(calibrate_threshold(*pre["curves"]["video"], method="eer"))
    validation = score_report(val_samples, val_logits, config.aggregate, threshold, probability)

    tested = None
    figures: list[str] = []
    if test is not None:
        test_samples = evaluation_samples(test, seed=config.seed + 2, pseudo_fakes=config.sbi or not test.fakes)
        test_logits = predict_logits(model, [s.image for s in test_samples], device, config.eval_batch_size)
        tested = score_report(test_samples, test_logits, config.aggregate, threshold, probability, ci=True)
        if run is not None:
            figures = log_evaluation(run, "test", test_samples, tested, threshold)
    if run is not None:
        figures += log_evaluation(run, "validation", val_samples, validation, threshold)

    metrics = {f"{split}/{level}_{k}": v for split, rep in (("val", validation), ("test", tested)) if rep
               for level in ("frame", "video") for k, v in rep[level].items() if _is_number(v)}
    meta = {
        "threshold": threshold,
        "calibration": calibration,
        "crop": {"size": cache.config.crop_size, "margin": cache.config.margin},
        "aggregate": config.aggregate,
        "metrics": metrics,
        "data_hash": data_hash(train),
        "trained": {"config": config.to_dict(), "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run,
                    "stopped_early": fit.stopped_early, "train_crops": len(train.refs),
                    "train_videos": len(train.videos()), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "run_id": getattr(run, "run_id", None)},
    }
    model_dir = save_detector(out_dir / "model", model.cpu(), meta)
    version = None
    if run is not None:
        run.log_metrics({k: float(v) for k, v in metrics.items()})
        run.log_dict(meta, "model_meta.json")
        if register:
            version = run.register_model(model_dir, name="forensics-detector", alias=alias)
    return DetectorTrainResult(model_dir=Path(model_dir), threshold=threshold, calibration=calibration,
                               validation=_summaries(validation), test=_summaries(tested) if tested else None,
                               best_epoch=fit.best_epoch, epochs_run=fit.epochs_run,
                               stopped_early=fit.stopped_early, registered_version=version, figures=figures)


def log_evaluation(run, split: str, samples, report: dict, threshold: float) -> list[str]:
    """ROC, PR, confusion matrix and hardest-crop grids for one evaluated split."""
    from forensics.tracking.figures import confusion_figure, pr_figure, roc_figure, sample_grid

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
            grid = sample_grid([samples[i].image for i in idx],
                               [f"p={frame_probs[i]:.2f} f{samples[i].frame}" for i in idx], ncols=8)
            run.log_image(grid, f"{split}/{name}.png")
            names.append(f"{split}/{name}.png")
    return names


def data_hash(crops: CropSet) -> str:
    """What the model was trained on: the content hashes and labels of its source files."""
    keys = sorted({f"{r.entry.sha256}:{r.entry.label}" for r in crops.refs})
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def _summaries(report: dict) -> dict:
    return {"frame": report["frame"], "video": report["video"]}


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and np.isfinite(value)


def _fraction(key: str, seed: int) -> float:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") / 2**64
