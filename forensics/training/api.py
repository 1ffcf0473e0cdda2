"""The contract between the training loop and what it trains: config, task protocol, result."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

import torch
from torch import nn

from .step import StepContext


@dataclass
class TrainConfig:
    """How to train; what to train is the task's business.

    epochs: total epochs of the run (a resumed run continues up to this number; raising it on
        resume extends a finished run). Epochs are numbered from 0 everywhere.
    grad_accum: micro-batches per optimizer step; losses are scaled by 1/grad_accum.
    amp: bf16 autocast around training_step/evaluate on CUDA; no effect on CPU (no GradScaler needed).
    patience: epochs without improvement of `monitor` before stopping; None never stops early.
    monitor: key of the epoch record to watch ("val/..." from evaluate, or "train/<loss>" for tasks
        without evaluate); None = no monitoring: every epoch counts as the best so far.
    min_delta: an epoch improves only if it beats the best by more than this.
    checkpoint_dir: where last/ and best/ go; None keeps nothing (and cannot resume).
    log_every: optimizer steps between step-level metric logs.
    progress: progress on rank 0 (a bar on a terminal, a line every 30 s and per epoch in a log); False: none.
    find_unused_parameters: passed to DistributedDataParallel.
    """
    epochs: int = 10
    grad_accum: int = 1
    device: str = "auto"
    amp: bool = True
    seed: int = 0
    patience: int | None = 3
    monitor: str | None = "val/auc"
    mode: str = "max"
    min_delta: float = 0.0
    checkpoint_dir: str | Path | None = None
    resume: bool = True
    max_grad_norm: float | None = None
    log_every: int = 10
    progress: bool | None = None
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"TrainConfig.epochs must be >= 0, got {self.epochs}")
        if self.grad_accum < 1:
            raise ValueError(f"TrainConfig.grad_accum must be >= 1, got {self.grad_accum}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"TrainConfig.mode must be 'max' or 'min', got {self.mode!r}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"TrainConfig.patience must be >= 1 or None, got {self.patience}")
        if self.log_every < 1:
            raise ValueError(f"TrainConfig.log_every must be >= 1, got {self.log_every}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"TrainConfig.max_grad_norm must be > 0 or None, got {self.max_grad_norm}")


@runtime_checkable
class TrainTask(Protocol):
    """What a detector or a GAN implements to be trained by `Trainer`.

    Required: build, configure_optimizers, train_batches, training_step.
    Optional: evaluate (rank 0 only, modules in eval mode, under no_grad, unwrapped modules: DDP
    collectives would hang with one rank), on_epoch_end (rank 0 only), and
    configure_schedulers(optimizers) -> {optimizer_name: LR scheduler}, stepped after each step of
    that optimizer.

    Rules the loop relies on:
    - train_batches must give every rank the same number of batches (DDP steps in lockstep) and should
      derive any shuffle from (seed, epoch) so shards agree and a resumed epoch sees the same data.
    - training_step calls ctx.backward(loss, optimizer_name) instead of loss.backward(): gradients then
      reach only that optimizer's parameters, so a generator loss flowing through the discriminator does
      not pollute the discriminator's gradients (no requires_grad toggling needed).
    - Under DDP, a loss for optimizer X that passes through a module X does not train must call that
      module unwrapped (ctx.raw_modules[name]): its DDP wrapper would wait for gradients that never come.
    """

    def build(self, device: torch.device) -> dict[str, nn.Module]: ...

    def configure_optimizers(self, modules: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]: ...

    def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterable: ...

    def training_step(self, batch: Any, ctx: StepContext) -> dict[str, float]: ...


@dataclass
class FitResult:
    """best_epoch: index (from 0) of the best epoch (None if no epoch ran); best_metrics: its epoch
    record; history: one record per completed epoch ("epoch", "train/<k>", evaluate's keys,
    "lr/<optimizer>", "time/epoch_s"); epochs_run: completed epochs including those before a resume."""
    best_epoch: int | None
    best_metrics: dict
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    epochs_run: int = 0
    checkpoint_dir: Path | None = None

