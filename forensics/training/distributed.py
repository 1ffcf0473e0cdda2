"""Thin helpers over torch.distributed, initialised from the environment torchrun sets.

Every helper also works in a plain single process (no process group): rank 0, world size 1, and the
collectives return their input. That keeps the training loop free of `if distributed:` branches.
"""
from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any, Iterator

import torch
import torch.distributed as dist


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(device_type: str, timeout_s: float | None = None) -> bool:
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
    extra = {"timeout": datetime.timedelta(seconds=timeout_s)} if timeout_s else {}
    dist.init_process_group(backend=backend, init_method="env://", **extra)
    return True


@contextlib.contextmanager
def job(device_type: str, timeout_s: float | None = None) -> Iterator[None]:
    """A whole command as one torchrun job: the group is joined at the start and left at the end, so that
    rank 0 alone can do the job's side effects (render data, open the MLflow run, export, register) while
    the other ranks wait for it at barriers, and every Trainer inside trains on all ranks. A no-op in a plain
    process. `timeout_s` bounds how long a rank waits at a collective (rank 0's side work between training
    phases can be long)."""
    created = init_from_env(device_type, timeout_s)
    try:
        yield
    finally:
        if created:
            destroy()


def main_only(work, *args, **kwargs) -> Any:
    """Run `work` on rank 0 only, and return its result on every rank (the others wait for it)."""
    result = work(*args, **kwargs) if is_main() else None
    return broadcast_object(result)


def main_first(work, *args, **kwargs) -> Any:
    """Run `work` on rank 0, then on the other ranks once it has finished: for steps that fill a cache on disk
    (rank 0 fills it, the others find it filled) and that every rank needs the result of."""
    result = work(*args, **kwargs) if is_main() else None
    barrier()
    return result if is_main() else work(*args, **kwargs)


def shard(size: int, rank: int, world: int, what: str = "batch") -> slice:
    """This rank's rows of a global batch of `size` rows: rank, rank + world, ...

    Tasks that split every global batch this way, with the batches drawn from the seed and epoch alone (the
    same on every rank), train the same weights on N processes as on one: DDP averages the ranks' gradients
    of their mean losses, which is the global batch's mean-loss gradient when the shares are equal. A batch
    of fewer rows than ranks would leave a rank with nothing to back-propagate, so it is refused.
    """
    if size < world:
        raise ValueError(f"a {what} of {size} cannot be split over {world} processes: use a {what} of at least "
                         f"{world}, or fewer processes")
    return slice(rank, size, world)


def destroy() -> None:
    if is_distributed():
        dist.destroy_process_group()


_solo = False


@contextlib.contextmanager
def solo(active: bool = True) -> Iterator[None]:
    """Inside, this process works alone even within a torchrun job: rank 0, world size 1, collectives return
    their input, and a Trainer trains single-process. For rank 0's own work between the phases every rank joins
    (the co-evolution game trains probes and generator moves alone); `solo(False)` rejoins for such a phase."""
    global _solo
    before, _solo = _solo, active
    try:
        yield
    finally:
        _solo = before


def is_distributed() -> bool:
    return not _solo and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


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


def shard_weight(size: int, rank: int, world: int) -> float:
    """The loss weight of this rank's share of a global batch of `size` rows (1.0 when the shares are equal):
    with it, the ranks' averaged gradient is the gradient of the global batch's mean loss even when `size`
    does not divide evenly."""
    return len(range(size)[shard(size, rank, world)]) * world / size
