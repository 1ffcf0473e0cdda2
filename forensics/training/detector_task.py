"""How one detector learns, as a task for the shared training loop: real crops against fakes (pseudo or real).

The loop (forensics.training.loop) owns device, AMP, accumulation, DDP, checkpoints and early stopping;
this task only says what a batch is, what the loss is and how validation is scored. Validation is the
same kind of fake as training by default (self-blended), on identities the model never trained on, and is
scored both per frame and per video because a video verdict is what users get.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from forensics.data.crops import CropSet, Sample, evaluation_samples, stack, training_batches

PRESET_DIR = Path(__file__).parent / "presets" / "detector"


@dataclass
class DetectorTrainConfig:
    """Everything that decides a detector training run; YAML presets under training/presets/detector/."""
    detector: str = "mobilenetv3-small"
    input_size: int | None = None          # None: the architecture's own
    pretrained_file: str | None = None     # optional local backbone weights; nothing is downloaded
    crop_size: int = 128                   # cache crops (aligned at this size)
    margin: float = 0.25
    frames_per_video: int = 16             # cache sampling
    epochs: int = 8
    batch_size: int = 32
    grad_accum: int = 1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int | None = 3
    sbi: bool = True                       # train on self-blended pseudo-fakes of every real crop
    augment: bool = True
    eval_per_video: int | None = 8         # crops per video scored at validation (None: all)
    eval_batch_size: int = 128
    aggregate: str = "robust"              # frame logits -> video logit (detectors.aggregate_scores)
    seed: int = 0
    device: str = "auto"
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_preset(cls, name_or_path: str, **overrides) -> "DetectorTrainConfig":
        from forensics.presets import read_preset

        return cls(**read_preset(cls, PRESET_DIR, name_or_path, "detector", overrides))

    def to_dict(self) -> dict:
        return asdict(self)


class DetectorTask:
    """Binary real/fake training of one FrameDetector over cached crops (see module docstring)."""

    def __init__(self, config: DetectorTrainConfig, train: CropSet, val: CropSet):
        if not train.reals:
            raise ValueError("detector training: the train split has no real face crops")
        if not val.refs:
            raise ValueError("detector training: the validation split has no face crops")
        self.config = config
        self.train = train
        self.val = val
        self.model = None
        self._val_batches: list[tuple[torch.Tensor, np.ndarray]] | None = None
        self._val_samples: list[Sample] | None = None
        self.last_eval: dict | None = None

    # ---------------------------------------------------------------- loop protocol
    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        from detectors import create_detector

        overrides = {"pretrained_file": self.config.pretrained_file}
        if self.config.input_size:
            overrides["input_size"] = self.config.input_size
        torch.manual_seed(self.config.seed)
        self.model = create_detector(self.config.detector, **{k: v for k, v in overrides.items() if v})
        return {"model": self.model}

    def configure_optimizers(self, modules) -> dict[str, torch.optim.Optimizer]:
        params = modules["model"].parameters()
        return {"main": torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay)}

    def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, epoch, rank])
        for batch in training_batches(self.train, cfg.batch_size, shuffle_seed=cfg.seed * 100_003 + epoch,
                                      rng=rng, rank=rank, world_size=world_size, augment=cfg.augment,
                                      sbi=cfg.sbi):
            images, labels = stack(batch)
            yield self.model.preprocess(images), torch.from_numpy(labels)

    def training_step(self, batch, ctx) -> dict[str, float]:
        images, labels = batch
        images, labels = images.to(ctx.device, non_blocking=True), labels.to(ctx.device)
        logits = ctx.modules["model"](images).float()
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        ctx.backward(loss, "main")
        accuracy = ((logits > 0).float() == labels).float().mean()
        return {"loss": float(loss.detach()), "acc": float(accuracy)}

    def evaluate(self, epoch: int, ctx) -> dict[str, float]:
        model = ctx.raw_modules["model"]
        samples = self.validation_samples()
        logits = predict_logits(model, [s.image for s in samples], ctx.device, self.config.eval_batch_size)
        result = score_report(samples, logits, self.config.aggregate)
        self.last_eval = result
        labels = np.array([s.label for s in samples], np.float32)
        loss = float(F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels)))
        return {"val/auc": result["frame"]["auc"], "val/video_auc": result["video"]["auc"],
                "val/eer": result["frame"]["eer"], "val/ap": result["frame"]["ap"], "val/loss": loss}

    def on_epoch_end(self, epoch: int, metrics: dict, run) -> None:
        if run is None or self.last_eval is None:
            return
        from forensics.tracking.figures import pr_figure, roc_figure

        curves = self.last_eval["curves"]
        for name, maker in (("roc", roc_figure), ("pr", pr_figure)):
            fig = maker({"frames": curves["frame"], "videos": curves["video"]}, title=f"validation, epoch {epoch}")
            run.log_figure(fig, f"validation/epoch_{epoch:03d}_{name}.png")

    # ---------------------------------------------------------------- helpers
    def validation_samples(self) -> list[Sample]:
        if self._val_samples is None:
            self._val_samples = evaluation_samples(self.val, seed=self.config.seed + 1, pseudo_fakes=self.config.sbi
                                                   or not self.val.fakes)
        return self._val_samples


def predict_logits(model, images: Sequence[np.ndarray], device, batch_size: int = 128) -> np.ndarray:
    """Fake logits for uint8 RGB crops, in batches, without gradients (eval mode restored afterwards)."""
    from forensics.device import autocast

    was_training = model.training
    model.eval()
    out: list[np.ndarray] = []
    try:
        with torch.inference_mode(), autocast(device):
            for start in range(0, len(images), batch_size):
                x = model.preprocess(np.stack(images[start:start + batch_size])).to(device)
                out.append(model(x).float().cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def score_report(samples: Sequence[Sample], logits: np.ndarray, aggregate: str = "robust",
                 threshold: float | None = None, probability=None, ci: bool = False) -> dict:
    """Frame- and video-level metrics for scored samples; video logits come from detectors.aggregate_scores.

    `probability` maps logits to calibrated probabilities (identity sigmoid if None); `threshold` applies to
    those probabilities (EER threshold if None).
    """
    from detectors import aggregate_scores
    from forensics.metrics import summarize_scores, video_scores

    to_prob = probability or (lambda z: 1.0 / (1.0 + np.exp(-np.asarray(z, np.float64))))
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

