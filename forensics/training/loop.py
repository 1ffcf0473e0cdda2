"""The one training loop: detectors (one model, one optimizer) and GANs (several of each) alike.

Per epoch, on every rank: train on this rank's batches (gradient accumulation, DDP no_sync between
optimizer steps, optional clipping and LR schedulers), average the epoch's step outputs over ranks;
then rank 0 evaluates, updates early stopping, calls on_epoch_end and logs, and broadcasts the
resulting run state; every rank's RNG state is gathered and rank 0 writes last/ (and best/).

Logging (rank 0, only when a run is given):
- every `log_every` optimizer steps, step=global_step: "train_step/<key>" = mean over those steps of
  training_step's outputs (averaged over ranks), plus "train_step/lr/<optimizer>" and, when clipping,
  "train_step/grad_norm/<optimizer>";
- every epoch, step=epoch: the epoch record ("train/<key>" epoch means, evaluate's keys,
  "lr/<optimizer>", "time/epoch_s"). Each metric name therefore has a single x-axis.
"""
from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from forensics.device import autocast, resolve_device
from forensics.progress import progress_bar

from . import distributed as D
from .api import FitResult, TrainConfig
from .checkpoint import (copy_checkpoint, find_checkpoint, read_checkpoint, restore_training_state,
                         rng_state_for, save_checkpoint)
from .seed import capture_rng, rank_seed, restore_rng, seed_everything
from .step import GradientWindow, StepContext

REQUIRED_METHODS = ("build", "configure_optimizers", "train_batches", "training_step")


@dataclass
class RunState:
    """Everything about a run's progress besides tensors; what state.json records."""
    next_epoch: int = 0
    global_step: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)

    def result(self, checkpoint_dir: Path | None) -> FitResult:
        best = next((r for r in self.history if r.get("epoch") == self.best_epoch), {})
        return FitResult(best_epoch=self.best_epoch, best_metrics=dict(best), history=[dict(r) for r in self.history],
                         stopped_early=self.stopped_early, epochs_run=len(self.history),
                         checkpoint_dir=checkpoint_dir)


class Trainer:
    """Trains a TrainTask. After fit(): .modules (unwrapped), .optimizers, .schedulers, .device, .result."""

    def __init__(self, task: Any, config: TrainConfig | None = None, run: Any = None):
        self.task = task
        self.config = config or TrainConfig()
        self.run = run
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.device: torch.device | None = None
        self.result: FitResult | None = None

    # ------------------------------------------------------------------ entry point
    def fit(self) -> FitResult:
        self._check_task()
        device = resolve_device(self.config.device)
        created = D.init_from_env(device.type)
        try:
            if device.type == "cuda" and D.is_distributed():
                device = torch.device("cuda", D.env_local_rank())
            self.device = device
            self.result = self._fit(device)
            return self.result
        finally:
            if created:
                D.destroy()

    def _check_task(self) -> None:
        missing = [m for m in REQUIRED_METHODS if not callable(getattr(self.task, m, None))]
        if missing:
            raise TypeError(f"{type(self.task).__name__} is not a TrainTask: it lacks {', '.join(missing)}")
        monitor = self.config.monitor
        if monitor and not hasattr(self.task, "evaluate") and not monitor.startswith("train/"):
            raise ValueError(f"monitor {monitor!r} needs {type(self.task).__name__}.evaluate(), which it lacks "
                             f"(monitor a 'train/<key>' or set monitor=None)")

    # ------------------------------------------------------------------ setup
    def _fit(self, device: torch.device) -> FitResult:
        cfg, task = self.config, self.task
        rank, world = D.rank(), D.world_size()
        ckpt_dir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir is not None else None

        seed_everything(cfg.seed)  # same initial weights on every rank
        raw = self._build_modules(device)
        wrapped = {n: self._wrap(m, device) for n, m in raw.items()}
        self.optimizers = dict(task.configure_optimizers(raw))
        self.schedulers = {}
        if hasattr(task, "configure_schedulers"):
            self.schedulers = dict(task.configure_schedulers(self.optimizers))
        unknown = sorted(set(self.schedulers) - set(self.optimizers))
        if unknown:
            raise ValueError(f"configure_schedulers returned {unknown}, which are not optimizer names "
                             f"{sorted(self.optimizers)}")
        self.modules = raw
        seed_everything(rank_seed(cfg.seed, rank))

        state = RunState()
        found = find_checkpoint(ckpt_dir / "last") if (ckpt_dir is not None and cfg.resume) else None
        if found is not None:
            state = self._restore(found, device, rank, world)
        if state.stopped_early or state.next_epoch >= cfg.epochs:
            return state.result(ckpt_dir)

        window = GradientWindow(self.optimizers, self.schedulers, cfg.grad_accum, cfg.max_grad_norm, device, cfg.amp)
        ctx = StepContext(device=device, modules=wrapped, raw_modules=raw, rank=rank, world_size=world,
                          seed=cfg.seed, global_step=state.global_step, _window=window)
        log = D.broadcast_object(self.run is not None)  # a collective decision: step logs all-reduce
        for epoch in range(state.next_epoch, cfg.epochs):
            state = self._run_epoch(epoch, state, ctx, window, log, ckpt_dir)
            if state.stopped_early:
                break
        return state.result(ckpt_dir)

    def _build_modules(self, device: torch.device) -> dict[str, nn.Module]:
        built = self.task.build(device)
        if not isinstance(built, dict) or not built or not all(isinstance(m, nn.Module) for m in built.values()):
            raise TypeError(f"{type(self.task).__name__}.build() must return a non-empty dict of nn.Module")
        bad = [n for n in built if "/" in n]
        if bad:
            raise ValueError(f"module names may not contain '/': {bad}")
        return {n: m.to(device) for n, m in built.items()}

    def _wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        if not D.is_distributed() or not _trainable(module):
            return module
        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None,
                                       find_unused_parameters=self.config.find_unused_parameters)

    def _restore(self, found: Path, device: torch.device, rank: int, world: int) -> RunState:
        tensors, meta = read_checkpoint(found)
        restore_training_state(str(found), tensors, meta, modules=self.modules, optimizers=self.optimizers,
                               schedulers=self.schedulers)
        state = RunState(**meta["run"])
        rng = rng_state_for(meta, tensors, rank)
        if rng is not None:
            restore_rng(rng, device)
        else:  # more ranks than when saved: a fresh but reproducible stream for this rank
            seed_everything(rank_seed(self.config.seed, rank) + 1_000_003 * state.next_epoch)
        if meta.get("world_size", world) != world and rank == 0:
            warnings.warn(f"{found}: saved with {meta.get('world_size')} ranks, resuming with {world}; "
                          f"the data order will differ from an uninterrupted run", stacklevel=3)
        return state

    # ------------------------------------------------------------------ one epoch
    def _run_epoch(self, epoch: int, state: RunState, ctx: StepContext, window: GradientWindow,
                   log: bool, ckpt_dir: Path | None) -> RunState:
        started = time.perf_counter()
        train = self._train_epoch(epoch, state, ctx, window, log)
        record: dict = {"epoch": epoch, **{_prefixed("train/", k): v for k, v in train.items()},
                        **{f"lr/{n}": float(o.param_groups[0]["lr"]) for n, o in self.optimizers.items()}}
        payload = None
        if ctx.is_main:
            try:
                payload = ("ok", self._close_epoch(epoch, record, state, ctx, started, log))
            except Exception as exc:
                D.broadcast_object(("error", f"{type(exc).__name__}: {exc}"))
                raise
        status, value = D.broadcast_object(payload)
        if status == "error":
            raise RuntimeError(f"rank 0 failed at the end of epoch {epoch}: {value}")
        new_state, improved = value
        rng_states = D.all_gather_object(capture_rng(ctx.device))
        if ctx.is_main and ckpt_dir is not None:
            self._save(ckpt_dir, new_state, rng_states, improved)
        D.barrier()
        return new_state

    def _train_epoch(self, epoch: int, state: RunState, ctx: StepContext, window: GradientWindow,
                     log: bool) -> dict[str, float]:
        cfg = self.config
        for module in self.modules.values():
            module.train(_trainable(module))  # frozen helpers stay in eval mode (no BatchNorm drift)
        batches = self.task.train_batches(epoch, ctx.rank, ctx.world_size)
        total = _length(batches)
        if D.is_distributed():
            lengths = D.all_gather_object(total)
            if None not in lengths and len(set(lengths)) > 1:
                raise ValueError(f"train_batches(epoch={epoch}) gave ranks different batch counts {lengths}: "
                                 f"DDP needs the same number on every rank")
        ddp = [m for m in ctx.modules.values() if isinstance(m, DistributedDataParallel)]
        epoch_means, log_means = _Means(), _Means()
        ctx.epoch = epoch
        count = 0
        shown_here = cfg.progress is not False and ctx.is_main     # None: a bar on a terminal, lines in a log
        with progress_bar(total=total, desc=f"epoch {epoch}", unit="batch", enabled=shown_here, leave=False) as bar:
            for index, (batch, last) in enumerate(_flag_last(batches)):
                boundary = last or (index + 1) % cfg.grad_accum == 0
                ctx.micro_step = index
                with contextlib.ExitStack() as stack:
                    if not boundary:
                        for module in ddp:
                            stack.enter_context(module.no_sync())
                    with autocast(ctx.device, cfg.amp):
                        values = _step_values(self.task.training_step(batch, ctx))
                window.end_micro_batch()
                epoch_means.add(values)
                log_means.add(values)
                if boundary:
                    norms = window.step()
                    epoch_means.add(norms)
                    log_means.add(norms)
                    state.global_step += 1
                    ctx.global_step = state.global_step
                    if state.global_step % cfg.log_every == 0:
                        shown = self._log_steps(log_means, state.global_step, log)
                        bar.set_postfix({k: f"{v:.4g}" for k, v in list(shown.items())[:4]}, refresh=False)
                        log_means = _Means()
                bar.update(1)
                count += 1
        if count == 0:
            raise ValueError(f"train_batches(epoch={epoch}, rank={ctx.rank}) yielded no batches")
        return D.all_reduce_mean(epoch_means.means())

    def _log_steps(self, means: "_Means", step: int, log: bool) -> dict[str, float]:
        if not log:
            return means.means()
        values = D.all_reduce_mean(means.means())
        if D.is_main():
            metrics = {f"train_step/{k}": v for k, v in values.items()}
            metrics.update({f"train_step/lr/{n}": float(o.param_groups[0]["lr"]) for n, o in self.optimizers.items()})
            self.run.log_metrics(metrics, step=step)
        return values

    def _close_epoch(self, epoch: int, record: dict, state: RunState, ctx: StepContext, started: float,
                     log: bool) -> tuple[RunState, bool]:
        """Rank 0: evaluate, decide on early stopping, report. Returns (new run state, improved)."""
        cfg = self.config
        record.update(self._evaluate(epoch, ctx))
        record["time/epoch_s"] = time.perf_counter() - started
        value = _monitored(record, cfg.monitor, epoch)
        improved = _improves(value, state.best_value, cfg.mode, cfg.min_delta) if cfg.monitor else True
        bad = 0 if improved else state.bad_epochs + 1
        new = RunState(next_epoch=epoch + 1, global_step=state.global_step,
                       best_value=value if improved else state.best_value,
                       best_epoch=epoch if improved else state.best_epoch, bad_epochs=bad,
                       stopped_early=cfg.patience is not None and bad >= cfg.patience,
                       history=state.history + [record])
        if hasattr(self.task, "on_epoch_end"):
            self.task.on_epoch_end(epoch, dict(record), self.run)
        if log:
            self.run.log_metrics({k: v for k, v in record.items() if k != "epoch"}, step=epoch)
        return new, improved

    def _evaluate(self, epoch: int, ctx: StepContext) -> dict[str, float]:
        if not hasattr(self.task, "evaluate"):
            return {}
        for module in self.modules.values():
            module.eval()
        # Unwrapped modules: a DDP forward may broadcast buffers, which would hang with rank 0 alone.
        eval_ctx = StepContext(device=ctx.device, modules=self.modules, raw_modules=self.modules, rank=ctx.rank,
                               world_size=ctx.world_size, seed=ctx.seed, epoch=epoch, global_step=ctx.global_step)
        with torch.no_grad(), autocast(ctx.device, self.config.amp):
            metrics = self.task.evaluate(epoch, eval_ctx) or {}
        return {k: _as_float(v, f"evaluate() value {k!r}") for k, v in metrics.items()}

    def _save(self, ckpt_dir: Path, state: RunState, rng_states: list[dict], improved: bool) -> None:
        meta = {"run": asdict(state), "world_size": len(rng_states),
                "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self.config).items()}}
        last = save_checkpoint(ckpt_dir / "last", modules=self.modules, optimizers=self.optimizers,
                               schedulers=self.schedulers, rng_states=rng_states, meta=meta)
        if improved:
            copy_checkpoint(last, ckpt_dir / "best")


# ---------------------------------------------------------------------- small helpers

class _Means:
    """Running sums of step outputs; tensors stay on their device until read (no per-step sync)."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: float(self.sums[k]) / self.counts[k] for k in self.sums}


def _step_values(out: Any) -> dict:
    if out is None:
        return {}
    if not isinstance(out, dict):
        raise TypeError(f"training_step must return a dict of scalars, got {type(out).__name__}")
    values = {}
    for key, value in out.items():
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(f"training_step value {key!r} has {value.numel()} elements, expected a scalar")
            values[key] = value.detach().float().reshape(())
        else:
            values[key] = _as_float(value, f"training_step value {key!r}")
    return values


def _as_float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {type(value).__name__}") from None


def _prefixed(prefix: str, key: str) -> str:
    return key if key.startswith(prefix) else prefix + key


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def _length(batches: Iterable) -> int | None:
    try:
        return len(batches)  # type: ignore[arg-type]
    except TypeError:
        return None


def _flag_last(items: Iterable) -> Iterator[tuple[Any, bool]]:
    """Yield (item, is_last) by looking one item ahead: the last micro-batch must close its window."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


def _monitored(record: dict, monitor: str | None, epoch: int) -> float | None:
    if monitor is None:
        return None
    if monitor not in record:
        raise ValueError(f"monitor {monitor!r} is not among epoch {epoch}'s metrics {sorted(record)}")
    return float(record[monitor])


def _improves(value: float | None, best: float | None, mode: str, min_delta: float) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if mode == "max" else value < best - min_delta
