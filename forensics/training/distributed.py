"""Thin helpers over torch.distributed, initialised from the environment torchrun sets.

Every helper also works in a plain single process (no process group): rank 0, world size 1, and the
collectives return their input. That keeps the training loop free of `if distributed:` branches.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(device_type: str) -> bool:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT).

    Returns True only when this call created the group, so the caller knows it must destroy it; a
    group created by someone else, or a single-process run, returns False.
    """
    if not dist.is_available() or dist.is_initialized() or env_world_size() <= 1:
        return False
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={env_world_size()} but {name} is not set: launch with torchrun")
    if device_type == "cuda":
        torch.cuda.set_device(env_local_rank())
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return True


def destroy() -> None:
    if is_distributed():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_gather_object(obj: Any) -> list:
    """Every rank's `obj`, in rank order (a one-element list without a process group)."""
    if not is_distributed():
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Mean of each key over the ranks that reported it.

    Gathered as objects rather than one tensor all-reduce so that ranks reporting different keys
    cannot deadlock or silently mix up values; this runs a few times per epoch, so cost is irrelevant.
    """
    gathered = all_gather_object({k: float(v) for k, v in values.items()})
    keys = sorted({k for d in gathered for k in d})
    return {k: sum(d[k] for d in gathered if k in d) / sum(1 for d in gathered if k in d) for k in keys}


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """`obj` as it is on rank `src`, on every rank."""
    if not is_distributed():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]
