"""What every safetensors loader here says when a file does not fit its model: one line naming the first
mismatch (shapes first, since they say the most), shared by detectors, generators and their checkpoints."""
from __future__ import annotations

from typing import Mapping

import torch


def state_mismatch(module: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """Why `state` cannot load strictly into `module`, or None."""
    expected = module.state_dict()
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if wrong:
        k = wrong[0]
        return (f"{len(wrong)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} vs model "
                f"{tuple(expected[k].shape)}")
    missing = [k for k in expected if k not in state]
    if missing:
        return f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        return f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}"
    return None


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (library errors often span several), capped for log lines."""
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
