"""Training throughput of the cpu-small generator families: images/s of one training step through the shared
loop's parts, per torch thread count. Part of `python -m benchmarks.generators` (its "throughput" record)."""
from __future__ import annotations

import os
import time
from typing import Mapping, Sequence

import numpy as np
import torch

from forensics.training import StepContext, seed_everything
from forensics.training.step import GradientWindow
from generators.registry import create_generator

FAMILIES = ("faceswap", "animation")


def throughput(family: str, epoch_seconds: Sequence[float], steps: int, warmup: int) -> dict:
    """Images/s of the family's cpu-small training step (adversarial terms on) through the shared loop's
    parts; beside it, the real training run's epochs (`epoch_seconds`, evaluation included): the fastest is
    the one least slowed by other jobs on this shared machine."""
    spec, config = create_generator(family, "cpu-small", device="cpu")
    task = spec.make_task(config)
    device = torch.device("cpu")
    seed_everything(0)
    modules = {name: module.to(device).train() for name, module in task.build(device).items()}
    window = GradientWindow(task.configure_optimizers(modules), {}, 1, None, device, amp=True)
    epoch = getattr(config, "adv_start_epoch", getattr(config, "adversarial_start_epoch", 1))
    ctx = StepContext(device=device, modules=modules, raw_modules=modules, epoch=epoch, _window=window)
    batches = iter(task.train_batches(epoch, 0, 1))
    per_step = 2 * config.batch_size if family == "faceswap" else config.batch_size  # images generated
    per_epoch = len(task.train_batches(0, 0, 1)) * per_step
    load_before = [round(x, 2) for x in os.getloadavg()]
    for index in range(warmup + steps):
        if index == warmup:
            started = time.perf_counter()
        task.training_step(next(batches), ctx)
        window.end_micro_batch()
        window.step()
    seconds = time.perf_counter() - started
    epochs = [s for s in epoch_seconds if s > 0]
    return {"images_per_s": round(steps * per_step / seconds, 2), "steps": steps, "warmup_steps": warmup,
            "images_per_step": per_step, "seconds": round(seconds, 2), "torch_threads": torch.get_num_threads(),
            "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "training_run": {"images_per_epoch": per_epoch,
                             "fastest_epoch_images_per_s": round(per_epoch / min(epochs), 2) if epochs else None,
                             "median_epoch_images_per_s": round(per_epoch / float(np.median(epochs)), 2)
                             if epochs else None},
            "counts": "faceswap: 2 x batch crops reconstructed per step; animation: one driving frame per pair"}


def measure_throughput(threads: Sequence[int], epoch_seconds: Mapping[str, Sequence[float]], steps: int,
                       warmup: int) -> dict:
    """Per family and thread count: with other jobs on the 2 cores, 2 threads can be several times slower
    than 1 (each thread waits for the one that lost its core), so both are recorded. `epoch_seconds`: each
    family's training-run epoch times (its checkpoint's record); torch is left at `threads[0]` threads."""
    out: dict = {"families": {}}
    for count in threads:
        torch.set_num_threads(count)
        for family in FAMILIES:
            out["families"].setdefault(family, {})[f"threads_{count}"] = throughput(
                family, epoch_seconds[family], steps, warmup)
    torch.set_num_threads(threads[0])
    return out
