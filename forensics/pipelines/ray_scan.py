"""`forensics detect --ray [ADDRESS]`: the same analysis on a Ray cluster, one detector per worker.

Each worker is a Ray actor holding one loaded DetectPipeline (the model is read once per worker, from a path
every node can read, or from the registry as on one machine). The driver keeps one input in flight per actor and
takes results as they finish, so the records are exactly the single-machine ones (same pipeline, same settings),
written by the driver as they arrive: appended to the JSONL, `--resume` and the reports work unchanged.

A file that kills its worker (out of memory, a decoder crash) fails only its own record: the dead actor is
replaced and the scan goes on. Actors ask for one GPU each where the cluster has GPUs, else one CPU; `workers`
defaults to what the cluster offers.

Why actors rather than Ray Data's map_batches: records and face crops travel as Python objects, a failure is
pinned to the one input that caused it, and results stream back in completion order with no batching to tune.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Iterator

import ray
from ray.exceptions import RayActorError, RayTaskError, WorkerCrashedError

from forensics.pipelines.detect import Analysis, DetectConfig, DetectPipeline

RESTARTS = 16        # actors replaced after crashes before the scan gives up (a broken cluster, not a bad file)


class RayScanError(RuntimeError):
    """The cluster cannot run the scan (cannot connect, no worker starts); one line."""


@ray.remote(max_restarts=0, max_task_retries=0)
class _Worker:
    """One DetectPipeline on a Ray worker."""

    def __init__(self, model_path: str, config: DetectConfig):
        self.pipeline = DetectPipeline.from_path(Path(model_path), config)

    def analyse(self, path: str) -> Analysis:
        return self.pipeline.analyse(Path(path))

    def ready(self) -> bool:
        return True


def connect(address: str | None) -> dict:
    """Join the cluster at `address` ("auto": the one this machine is part of; None: start a local one)."""
    if ray.is_initialized():             # another scan's connection, maybe to another cluster
        ray.shutdown()
    _reachable(address)
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                 configure_logging=False, runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore"}})
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayScanError(f"ray: cannot join the cluster at {address or 'a new local one'} "
                           f"({' '.join(str(exc).split())[:300]})") from None
    return ray.cluster_resources()


def _reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail in one line when nothing listens at a HOST:PORT address: ray.init would retry such an address for
    ever (Ray clients, "ray://...", and "auto" are left to Ray)."""
    if not address or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except ValueError:
        raise RayScanError(f"ray: {address}: not HOST:PORT of a Ray head node") from None
    except OSError as exc:
        raise RayScanError(f"ray: cannot join the cluster at {address} ({exc.strerror or exc}; is `ray start "
                           "--head` running there?)") from None


def analyses(paths: list[Path], model_path: Path, config: DetectConfig, local: DetectPipeline,
             address: str | None = None, workers: int | None = None) -> Iterator[tuple[Path, Analysis]]:
    """(path, analysis) for every input, in the order they finish; `local` (the driver's pipeline) makes the
    error record of an input whose worker died."""
    resources = connect(address)
    gpus = int(resources.get("GPU", 0))
    count = max(1, min(len(paths), workers or (gpus or int(resources.get("CPU", 1)))))
    options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
    model = str(Path(model_path).resolve())

    def worker():
        return _Worker.options(**options).remote(model, config)

    pending = list(reversed(paths))
    running: dict = {}                   # object ref -> (actor, path)
    actors = [worker() for _ in range(count)]
    restarts = 0
    try:
        for actor in actors:
            if pending:
                path = pending.pop()
                running[actor.analyse.remote(str(path))] = (actor, path)
        while running:
            (done,), _ = ray.wait(list(running), num_returns=1)
            actor, path = running.pop(done)
            try:
                yield path, ray.get(done)
            except (RayActorError, WorkerCrashedError, RayTaskError) as exc:
                reason = _why(exc)
                if isinstance(exc, RayTaskError) and "DetectorLoadError" in reason:
                    raise RayScanError(f"ray: a worker cannot load the model {model}: {reason}") from None
                restarts += 1
                if restarts > RESTARTS:
                    raise RayScanError(f"ray: {restarts} workers died; the last on {path} ({reason})") from None
                yield path, local.failed(path, f"analysis worker died ({reason}); other files were not affected")
                ray.kill(actor, no_restart=True)
                actor = worker()
            if pending:
                path = pending.pop()
                running[actor.analyse.remote(str(path))] = (actor, path)
    finally:
        for actor, _ in running.values():
            ray.kill(actor, no_restart=True)
        ray.shutdown()                   # leaves the cluster (and stops a Ray this scan started)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    for marker in ("OutOfMemoryError", "SIGKILL", "killed", "exited unexpectedly"):
        if marker in text:
            return f"worker {marker}"
    return text[:200] or type(exc).__name__


def default_address() -> str | None:
    """RAY_ADDRESS if set (a cluster this machine belongs to), else None: a local Ray started for this scan."""
    return os.environ.get("RAY_ADDRESS") or None
