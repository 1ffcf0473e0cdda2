"""How a detector learns, as a task of the shared training loop: real against fake crops, BCE on one logit.

The loop (forensics.training) owns device, AMP, accumulation, DDP, checkpoints and early stopping; the task
says what a model is (a fresh architecture from the registry, or warm-started from a saved detector), what
a batch is (a pluggable BatchSource, see batches.py) and how validation is scored (frame and video AUC on
fixed samples, because a video verdict is what users get). One task serves `forensics train detector`, the
co-evolution fine-tune and the benchmarks' rows.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from detectors.batches import BatchSource
from detectors.checkpoint import load_detector
from detectors.evaluate import epoch_figures, score_report
from detectors.predict import predict_logits
from detectors.registry import DEFAULT_DETECTOR, create_detector, detector_kind
from forensics.data.crops import Sample, stack
from forensics.presets import read_preset

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass
class DetectorTrainConfig:
    """Everything that decides a detector training run; YAML presets in detectors/presets/."""
    detector: str = DEFAULT_DETECTOR
    input_size: int | None = None          # None: the architecture's own
    pretrained_file: str | None = None     # optional local backbone weights; nothing is downloaded
    crop_size: int = 128                   # cache crops (aligned at this size)
    margin: float = 0.25
    frames_per_video: int = 16             # cache sampling
    clip_len: int | None = None            # clip detectors: frames per clip (cache samples windows of them)
    temporal_kinds: list[str] | None = None   # clip detectors: pseudo-fake kinds trained on (None: all)
    held_out_kinds: list[str] = field(default_factory=list)   # ... and kinds never trained on, reported apart
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
        return cls(**read_preset(cls, PRESET_DIR, name_or_path, "detector", overrides))

    def to_dict(self) -> dict:
        return asdict(self)


class DetectorTask:
    """Binary real/fake training of one FrameDetector (see the module docstring).

    batches: the BatchSource of training batches. validation: fixed samples scored after every epoch
    (None: no validation; the loop then monitors nothing). start_from: a saved detector to continue from
    (its weights; the architecture in `config.detector` is then ignored).
    """

    def __init__(self, config: DetectorTrainConfig, batches: BatchSource, validation: Sequence[Sample] | None = None,
                 start_from: str | Path | None = None):
        if validation is not None and not validation:
            raise ValueError("detector training: the validation split has no face crops")
        self.config = config
        self.batches = batches
        self.validation = list(validation) if validation is not None else None
        self.start_from = Path(start_from) if start_from is not None else None
        self.model = None
        self.start_meta: dict = {}          # the warm start's config.json (calibration, crop, lineage)
        self.last_eval: dict | None = None

    # ---------------------------------------------------------------- loop protocol
    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        torch.manual_seed(self.config.seed)
        if self.start_from is not None:
            loaded = load_detector(self.start_from, device="cpu")
            self.model, self.start_meta = loaded.model, loaded.meta
        else:
            overrides = {"pretrained_file": self.config.pretrained_file, "input_size": self.config.input_size}
            if detector_kind(self.config.detector) == "clip":
                overrides["clip_len"] = self.config.clip_len
            self.model = create_detector(self.config.detector, **{k: v for k, v in overrides.items() if v})
        return {"model": self.model}

    def configure_optimizers(self, modules) -> dict[str, torch.optim.Optimizer]:
        return {"main": torch.optim.AdamW(modules["model"].parameters(), lr=self.config.lr,
                                          weight_decay=self.config.weight_decay)}

    def train_batches(self, epoch: int, rank: int, world_size: int) -> "_Tensors":
        return _Tensors(self.batches.epoch(epoch, rank, world_size), self.model)

    def training_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        images, labels = batch
        images, labels = images.to(ctx.device, non_blocking=True), labels.to(ctx.device)
        logits = ctx.modules["model"](images).float()
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        ctx.backward(loss, "main")
        return {"loss": loss.detach(), "acc": ((logits > 0).float() == labels).float().mean().detach()}

    def evaluate(self, epoch: int, ctx) -> dict[str, float]:
        if self.validation is None:
            return {}
        model = ctx.raw_modules["model"]
        logits = predict_logits(model, [s.image for s in self.validation], ctx.device, self.config.eval_batch_size)
        result = score_report(self.validation, logits, self.config.aggregate)
        self.last_eval = result
        labels = np.array([s.label for s in self.validation], np.float32)
        loss = float(F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels)))
        return {"val/auc": result["frame"]["auc"], "val/video_auc": result["video"]["auc"],
                "val/eer": result["frame"]["eer"], "val/ap": result["frame"]["ap"], "val/loss": loss}

    def on_epoch_end(self, epoch: int, metrics: dict, run) -> None:
        if run is not None and self.last_eval is not None:
            epoch_figures(run, self.last_eval, epoch)


class _Tensors:
    """A batch source's epoch as (preprocessed images, float labels) tensors; keeps its length for progress."""

    def __init__(self, epoch, model):
        self.epoch, self.model = epoch, model

    def __len__(self) -> int:
        return len(self.epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for samples in self.epoch:
            images, labels = stack(samples)
            yield self.model.preprocess(images), torch.from_numpy(labels)
