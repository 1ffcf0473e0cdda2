"""A detector's lifecycle after its architecture: train, continue training, calibrate, save.

train_detector (what `forensics train detector` runs): cached crops -> the shared loop -> calibrate on
validation -> test once on unseen identities -> save (safetensors + JSON) -> register in MLflow.
continue_training (the co-evolution's detector move): warm start from a saved detector, train on a given
batch source until validation stops improving, calibrate on validation, save.

Calibration always comes from detectors.calibrate on held-out data: Platt on frame logits, threshold at the
EER of the scores a verdict is made from (per video where samples are grouped by video). The test split
(identities never seen in training or calibration) is touched once, at the end, and its figures go to
MLflow: ROC and PR (frame and video level), the confusion matrix at the threshold, the hardest crops.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from detectors.batches import BatchSource, CropSetBatches, evaluation_samples
from detectors.clips import ClipBatches, ClipSet, clip_evaluation_samples
from detectors.calibrate import Calibration, CalibrationError, calibrate, with_threshold
from detectors.checkpoint import save_detector
from detectors.evaluate import log_evaluation, score_report, summaries
from detectors.footage import training_footage
from detectors.predict import predict_logits
from detectors.promote import CHALLENGER, register
from detectors.registry import detector_kind
from detectors.task import DetectorTask, DetectorTrainConfig
from detectors.temporal import CLIP
from forensics.data.cache import FaceCache
from forensics.data.crops import CropSet, Sample
from forensics.device import resolve_device
from forensics.training import TrainConfig, Trainer, load_module_weights
from forensics.training import distributed as D
from generators.blending.temporal import TEMPORAL_KINDS

CHECKPOINT_KEYS = ("format", "detector", "weights_sha256")   # written by save_detector itself


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
    calibration_refused: str | None = None     # why calibration was refused (only with keep_refused)
    test_by_kind: dict = field(default_factory=dict)   # fake method/kind -> test video AUC (clip detectors)
    held_out_kinds: list = field(default_factory=list)
    kind: str = "frame"                        # "frame" or "clip": what one sample is


def split_crops(cache: FaceCache, config: DetectorTrainConfig) -> tuple[CropSet, CropSet, CropSet | None]:
    """train / val / test crop sets; a dataset without a val split lends 15% of its train videos."""
    train = CropSet(cache, "train")
    val = CropSet(cache, "val", max_per_video=config.eval_per_video)
    test = CropSet(cache, "test", max_per_video=config.eval_per_video)
    if not val.refs:
        held = held_out_videos(train.videos(), config.seed)
        val = train.subset(lambda v: v in held)
        train = train.subset(lambda v: v not in held)
    return train, val, (test if test.refs else None)


@dataclass
class TrainingData:
    """What one training run reads, for a frame or a clip detector alike: the training batches, the fixed
    validation samples, the test samples (None: no test split) and what the model was trained on."""
    batches: BatchSource
    validation: list[Sample]
    test: list[Sample] | None
    train_refs: list            # CropRefs or ClipRefs (their .entry says which source files)
    train_videos: int
    notes: dict = field(default_factory=dict)


def training_data(config: DetectorTrainConfig, cache: FaceCache) -> TrainingData:
    """Crops and self-blends for a frame detector; clips and temporal pseudo-fakes for a clip detector."""
    if detector_kind(config.detector) == CLIP:
        return clip_training_data(config, cache)
    train, val, test = split_crops(cache, config)
    if not val.refs:
        raise ValueError("detector training: the validation split has no face crops")
    validation = evaluation_samples(val, seed=config.seed + 1, pseudo_fakes=config.sbi or not val.fakes)
    check_both_classes(validation, cache)
    tested = (evaluation_samples(test, seed=config.seed + 2, pseudo_fakes=config.sbi or not test.fakes)
              if test is not None else None)
    batches = CropSetBatches(train, config.batch_size, config.seed, augment=config.augment, sbi=config.sbi)
    return TrainingData(batches, validation, tested, train.refs, len(train.videos()))


def check_both_classes(validation: Sequence[Sample], cache: FaceCache) -> None:
    """Early stopping and calibration need real and fake validation samples: with one class the validation AUC
    is undefined, no epoch is ever "best", and training would end with nothing to keep."""
    present = {s.label for s in validation}
    if len(present) < 2:
        videos = {label: len({s.video for s in validation if s.label == label}) for label in (0, 1)}
        missing = "real" if 0 not in present else "fake"
        raise ValueError(f"{cache.root}: the validation split has no {missing} faces ({videos[0]} real and "
                         f"{videos[1]} fake videos); a detector needs both to pick its epoch and calibrate. Add "
                         f"videos (a few per class at least), or name a validation split in the dataset")


def clip_training_data(config: DetectorTrainConfig, cache: FaceCache) -> TrainingData:
    """Clips of the cache's splits. Training and validation draw pseudo-fakes of the trained kinds only; the
    test split gets one fake of every kind per real clip, held-out kinds included, so each is reported."""
    length = config.clip_len or 8
    held_out = list(config.held_out_kinds or [])
    kinds = [k for k in (config.temporal_kinds or TEMPORAL_KINDS) if k not in held_out]
    unknown = sorted(set(kinds + held_out) - set(TEMPORAL_KINDS))
    if unknown or not kinds:
        raise ValueError(f"detector training: pseudo-fake kinds {unknown or 'none left to train on'} "
                         f"(known: {', '.join(TEMPORAL_KINDS)})")
    train = ClipSet(cache, "train", length, step=max(1, length // 2))
    val = ClipSet(cache, "val", length, max_per_video=config.eval_per_video)
    test = ClipSet(cache, "test", length, max_per_video=config.eval_per_video)
    if not val.refs:
        raise ValueError(f"detector training: the validation split has no clip of {length} consecutive faces")
    # `sbi` means "learn from pseudo-fakes" for either kind of detector: temporal ones here.
    validation = clip_evaluation_samples(val, seed=config.seed + 1, kinds=kinds if config.sbi or not val.fakes
                                         else None)
    check_both_classes(validation, cache)
    tested = clip_evaluation_samples(test, seed=config.seed + 2, kinds=TEMPORAL_KINDS, per_kind=True) \
        if test.refs else None
    batches = ClipBatches(train, config.batch_size, config.seed, kinds=kinds, augment=config.augment,
                          pseudo=config.sbi or not train.fakes)
    return TrainingData(batches, validation, tested, train.refs, len(train.videos()),
                        notes={"clip_len": length, "kinds": kinds, "held_out_kinds": held_out,
                               "train_clips": len(train.refs)})


def by_kind(samples: Sequence[Sample], logits: np.ndarray, aggregate: str) -> dict[str, dict]:
    """Video AUC of reals against the fakes of each method/kind alone (with bootstrap CIs)."""
    methods = sorted({s.method for s in samples if s.label == 1})
    out = {}
    for method in methods:
        keep = [i for i, s in enumerate(samples) if s.label == 0 or s.method == method]
        report = score_report([samples[i] for i in keep], logits[keep], aggregate, ci=True)
        out[method] = {k: report["video"].get(k) for k in ("auc", "auc_ci", "n", "n_fake", "n_real")}
    return out


def train_detector(config: DetectorTrainConfig, cache: FaceCache, out_dir: str | Path, run=None,
                   resume: bool = True, register_as: str | None = CHALLENGER, progress: bool = True,
                   keep_refused: bool = False, data: TrainingData | None = None) -> DetectorTrainResult | None:
    """Train on the cache's train split (see the module docstring); register_as=None: do not register.

    A refused calibration (detectors.calibrate) raises CalibrationError, unless keep_refused: then the
    model is kept with a plain sigmoid (a=1, b=0), the threshold set under it, and the refusal recorded in
    the result and the checkpoint (benchmark rows, scored by AUC and never registered, report it so).
    Under torchrun every rank trains and rank 0 alone does the rest; the other ranks return None.
    """
    if keep_refused and register_as:
        raise ValueError("train_detector: a model kept despite a refused calibration is never registered")
    out_dir = Path(out_dir)
    data = data or training_data(config, cache)     # callers may check the data before opening a run
    validation = data.validation
    task = DetectorTask(config, data.batches, validation)
    trainer = Trainer(task, TrainConfig(epochs=config.epochs, grad_accum=config.grad_accum, device=config.device,
                                        seed=config.seed, patience=config.patience, monitor="val/auc", mode="max",
                                        checkpoint_dir=str(out_dir / "checkpoints"), resume=resume,
                                        progress=progress), run=run)
    fit = trainer.fit()
    if not D.is_main():      # under torchrun, rank 0 alone calibrates, tests, saves and registers
        return None
    model = task.model
    model.load_state_dict(load_module_weights(out_dir / "checkpoints" / "best", "model"))
    device = resolve_device(config.device)
    model.to(device).eval()

    val_logits = predict_logits(model, [s.image for s in validation], device, config.eval_batch_size)
    labels, groups = [s.label for s in validation], [s.video for s in validation]
    if keep_refused:
        calibration, refused = calibrate_or_keep(labels, val_logits, {"a": 1.0, "b": 0.0}, groups, config.aggregate)
    else:
        calibration, refused = calibrate(labels, val_logits, groups, config.aggregate), None
    validated = score_report(validation, val_logits, config.aggregate, calibration.threshold, calibration.probability)

    tested = None
    figures: list[str] = []
    kinds: dict = {}
    if data.test is not None:
        test_samples = data.test
        test_logits = predict_logits(model, [s.image for s in test_samples], device, config.eval_batch_size)
        tested = score_report(test_samples, test_logits, config.aggregate, calibration.threshold,
                              calibration.probability, ci=True)
        kinds = by_kind(test_samples, test_logits, config.aggregate)
        if run is not None:
            figures = log_evaluation(run, "test", test_samples, tested, calibration.threshold)
    if run is not None:
        figures += log_evaluation(run, "validation", validation, validated, calibration.threshold)

    metrics = {f"{split}/{level}_{k}": v for split, rep in (("val", validated), ("test", tested)) if rep
               for level in ("frame", "video") for k, v in rep[level].items() if _is_number(v)}
    metrics.update({f"test/{method}_video_auc": row["auc"] for method, row in kinds.items() if _is_number(row["auc"])})
    meta = {
        **calibration.to_meta(),
        "crop": cache.config.crop.to_dict(),
        "aggregate": config.aggregate,
        "metrics": metrics,
        "data_hash": data_hash(data.train_refs),
        "footage": training_footage(cache),
        "trained": {"config": config.to_dict(), "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run,
                    "stopped_early": fit.stopped_early, "train_crops": len(data.train_refs),
                    "train_videos": data.train_videos, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "run_id": getattr(run, "run_id", None), **data.notes},
        **({"test_by_kind": kinds} if kinds else {}),
        **({"calibration_refused": refused} if refused else {}),
    }
    model_dir = save_detector(out_dir / "model", model.cpu(), meta)
    version = None
    if run is not None:
        run.log_metrics({k: float(v) for k, v in metrics.items()})
        run.log_dict(meta, "model_meta.json")
        if register_as:
            version = register(run, model_dir, alias=register_as)
    return DetectorTrainResult(model_dir=Path(model_dir), threshold=calibration.threshold,
                               calibration=calibration.platt, validation=summaries(validated),
                               test=summaries(tested) if tested else None, best_epoch=fit.best_epoch,
                               epochs_run=fit.epochs_run, stopped_early=fit.stopped_early,
                               registered_version=version, figures=figures, calibration_refused=refused,
                               test_by_kind=kinds, held_out_kinds=list(data.notes.get("held_out_kinds") or []),
                               kind=detector_kind(config.detector))


@dataclass
class MoveResult:
    """A warm-started training run: where the candidate is (None when its calibration was refused), how it
    trained, and its validation figures at its own threshold."""
    model_dir: Path | None
    calibration: dict | None
    threshold: float | None
    refused: str | None
    validation: dict | None
    best_epoch: int | None
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)


def continue_training(start_dir: str | Path, out_dir: str | Path, checkpoint_dir: str | Path, batches: BatchSource,
                      validation: Sequence[Sample], epochs: int, patience: int | None, lr: float, seed: int,
                      device: str, batch_size: int = 32, progress: bool = True, run=None,
                      extra_meta: dict | None = None) -> MoveResult | None:
    """Warm-start from the detector in start_dir and train on `batches` until validation frame AUC stops
    improving (or `epochs`), keep the best epoch, calibrate on the validation samples (video level) and save
    to out_dir. A refused calibration saves nothing and says why (MoveResult.refused). Under torchrun every
    rank trains its share of each batch and rank 0 alone calibrates and saves; the others return None."""
    config = DetectorTrainConfig(lr=lr, weight_decay=1e-4, epochs=epochs, patience=patience, batch_size=batch_size,
                                 seed=seed, device=device)
    task = DetectorTask(config, batches, validation, start_from=start_dir)
    fit = Trainer(task, TrainConfig(epochs=epochs, device=device, seed=seed, patience=patience, monitor="val/auc",
                                    mode="max", checkpoint_dir=str(checkpoint_dir), progress=progress, log_every=5),
                  run=run).fit()
    if not D.is_main():      # under torchrun, rank 0 alone calibrates and saves
        return None
    model = task.model
    model.load_state_dict(load_module_weights(Path(checkpoint_dir) / "best", "model"))
    where = resolve_device(device)
    model.to(where).eval()
    aggregate = task.start_meta.get("aggregate", config.aggregate)
    logits = predict_logits(model, [s.image for s in validation], where)
    common = dict(best_epoch=fit.best_epoch, epochs_run=fit.epochs_run, stopped_early=fit.stopped_early,
                  history=fit.history)
    try:
        calibration = calibrate([s.label for s in validation], logits, [s.video for s in validation], aggregate)
    except CalibrationError as exc:
        return MoveResult(None, None, None, str(exc), None, **common)
    report = score_report(validation, logits, aggregate, calibration.threshold, calibration.probability)
    start = task.start_meta
    lineage = list(start.get("lineage") or []) + [{"path": str(start_dir), "threshold": start.get("threshold"),
                                                   "calibration": start.get("calibration")}]
    # A move trains on the synthetic world's fakes and reals: what the start model saw stays what it saw.
    meta = {**{k: v for k, v in start.items() if k in ("crop", "aggregate", "footage")}, **calibration.to_meta(),
            "metrics": {f"val/{level}_{k}": v for level in ("frame", "video") for k, v in report[level].items()
                        if _is_number(v)},
            "lineage": lineage, "trained": {"epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch,
                                            "stopped_early": fit.stopped_early, "lr": lr, "seed": seed,
                                            # a clip detector's pseudo-fake kinds stay its own (and its held-out
                                            # kind stays held out) over every move
                                            **{k: v for k, v in (start.get("trained") or {}).items()
                                               if k in ("kinds", "held_out_kinds")}},
            **(extra_meta or {})}
    save_detector(out_dir, model.cpu(), meta)
    return MoveResult(Path(out_dir), calibration.platt, calibration.threshold, None, summaries(report), **common)


def calibrate_or_keep(labels, logits, previous: dict | None, groups: Sequence[str] | None = None,
                      aggregate: str = "robust") -> tuple[Calibration, str | None]:
    """calibrate(), or on refusal the previous Platt scale with its threshold set anew: (calibration, reason)."""
    try:
        return calibrate(labels, logits, groups, aggregate), None
    except CalibrationError as exc:
        kept = with_threshold(previous or {"a": 1.0, "b": 0.0}, labels, logits, groups, aggregate)
        return kept, f"{exc}; kept the previous Platt scale"


def data_hash(refs: Sequence) -> str:
    """What the model was trained on: the content hashes and labels of its source files."""
    keys = sorted({f"{r.entry.sha256}:{r.entry.label}" for r in refs})
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and np.isfinite(value)


def held_out_videos(videos, seed: int, share: float = 0.15) -> set[str]:
    """The videos a dataset without a validation split lends to it. Keyed by each path inside the dataset, so a
    copy of the dataset elsewhere (another machine, a CI checkout) splits the same way."""
    videos = sorted(videos)
    root = os.path.commonpath(videos) if len(videos) > 1 else os.path.dirname(videos[0]) if videos else ""
    return {v for v in videos if _fraction(os.path.relpath(v, root), seed) < share}


def _fraction(key: str, seed: int) -> float:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little") / 2**64
