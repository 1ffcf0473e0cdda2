"""Gradient accumulation and optimizer stepping, shared by one-optimizer and multi-optimizer tasks."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn


class GradientWindow:
    """Accumulates micro-batch gradients per optimizer and steps the ones that received any.

    A window is `grad_accum` micro-batches (fewer for the last window of an epoch). Each backward is
    scaled by 1/grad_accum; a short last window is rescaled at step time to a true mean, so no batch
    weighs more than another whatever the epoch length.
    """

    def __init__(self, optimizers: Mapping[str, torch.optim.Optimizer], schedulers: Mapping[str, Any],
                 grad_accum: int, max_grad_norm: float | None, device: torch.device, amp: bool):
        self.optimizers = dict(optimizers)
        self.schedulers = dict(schedulers)
        self.grad_accum = grad_accum
        self.max_grad_norm = max_grad_norm
        self._autocast_off = amp and device.type == "cuda"
        self._device_type = device.type
        self.touched: list[str] = []
        self.micro_batches = 0

    def params(self, name: str) -> list[torch.Tensor]:
        return [p for g in self.optimizers[name].param_groups for p in g["params"] if p.requires_grad]

    def backward(self, loss: torch.Tensor, name: str, retain_graph: bool = False) -> None:
        if name not in self.optimizers:
            raise KeyError(f"ctx.backward(loss, {name!r}): configure_optimizers returned {sorted(self.optimizers)}")
        params = self.params(name)
        if not params:
            raise ValueError(f"optimizer {name!r} has no parameters that require grad")
        scaled = loss / self.grad_accum if self.grad_accum > 1 else loss
        if self._autocast_off:  # backward runs outside autocast, as torch recommends
            with torch.autocast(device_type=self._device_type, enabled=False):
                torch.autograd.backward(scaled, inputs=params, retain_graph=retain_graph)
        else:
            torch.autograd.backward(scaled, inputs=params, retain_graph=retain_graph)
        if name not in self.touched:
            self.touched.append(name)

    def end_micro_batch(self) -> None:
        self.micro_batches += 1

    def step(self) -> dict[str, float]:
        """Step every optimizer that got a backward in this window; returns grad norms when clipping."""
        norms: dict[str, float] = {}
        if self.micro_batches and self.micro_batches != self.grad_accum:
            factor = self.grad_accum / self.micro_batches
            for name in self.touched:
                for p in self.params(name):
                    if p.grad is not None:
                        p.grad.mul_(factor)
        for name in self.touched:
            optimizer = self.optimizers[name]
            if self.max_grad_norm is not None:
                norm = torch.nn.utils.clip_grad_norm_(self.params(name), self.max_grad_norm)
                norms[f"grad_norm/{name}"] = norm.detach()
            optimizer.step()
            if name in self.schedulers:
                self.schedulers[name].step()
            optimizer.zero_grad(set_to_none=True)
        self.touched = []
        self.micro_batches = 0
        return norms


@dataclass
class StepContext:
    """What training_step and evaluate see of the loop.

    modules are DDP-wrapped when distributed (call them for losses their own optimizer trains);
    raw_modules are the same modules unwrapped. evaluate gets raw modules in both fields.
    global_step counts optimizer steps (accumulation windows) since the start of the run.
    """
    device: torch.device
    modules: dict[str, nn.Module]
    raw_modules: dict[str, nn.Module]
    rank: int = 0
    world_size: int = 1
    seed: int = 0
    epoch: int = 0
    global_step: int = 0
    micro_step: int = 0
    _window: GradientWindow | None = field(default=None, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def backward(self, loss: torch.Tensor, optimizer_name: str = "main", retain_graph: bool = False) -> None:
        """Accumulate d(loss)/d(params of that optimizer) only; the loop steps it at the window end."""
        if self._window is None:
            raise RuntimeError("ctx.backward() is only available in training_step, not in evaluate")
        self._window.backward(loss, optimizer_name, retain_graph=retain_graph)
