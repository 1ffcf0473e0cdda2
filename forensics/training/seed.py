"""Seeding and RNG-state capture, so that a run is repeatable and a resumed run continues bit for bit.

Policy (the Trainer follows it):
- Modules are built right after `seed_everything(seed)` on every rank, so initial weights do not depend
  on the rank (DDP would broadcast rank 0's weights anyway; this keeps single-process runs identical).
- Then every rank re-seeds with `seed + rank`: dropout masks, augmentations and any other draw from the
  global python/numpy/torch generators differ between ranks (otherwise all ranks would make the same
  "random" choices on different shards), yet each rank's stream is fixed by (seed, rank).
- Shuffling that must agree across ranks (which rows go to which shard) belongs to the task: derive it
  from (seed, epoch), not from the global generators.
- At each checkpoint every rank's generator states are saved; a resumed run restores its own, so it
  draws exactly what an uninterrupted run would have drawn.
"""
from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def rank_seed(seed: int, rank: int) -> int:
    """The seed a rank uses for its training-time randomness (see the module docstring)."""
    return seed + rank


def capture_rng(device: torch.device | None = None) -> dict:
    """This process's generator states: JSON-safe python/numpy parts plus torch byte tensors."""
    np_state = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        # Only the training device: get_rng_state_all() would open a context on every GPU of the node.
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, device: torch.device | None = None) -> None:
    """Inverse of capture_rng (accepts the JSON round-trip of its python/numpy parts)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].to(dtype=torch.uint8, device="cpu"))
    if device is not None and device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].to(dtype=torch.uint8, device="cpu"), device)
