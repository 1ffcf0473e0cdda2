"""Training checkpoints as safetensors + JSON: nothing is ever pickled, so loading one runs no code.

Layout of a checkpoint directory (`<checkpoint_dir>/last`, `<checkpoint_dir>/best`):
- state.safetensors: `module/<name>/<key>` (each module's state_dict), `optim/<name>/<param_idx>/<key>`
  (optimizer tensor state, e.g. Adam moments and step), `optim/<name>/param_groups/...` and
  `sched/<name>/...` for the rare tensor-valued hyper-parameter, `rng/<rank>/torch` and
  `rng/<rank>/cuda` (generator states of every rank).
- state.json: counters, history, early-stopping state, python/numpy RNG states per rank, and the
  non-tensor parts of optimizer/scheduler state dicts; tensors there are {"__tensor__": "<key>"}.

A directory is written whole into a temporary sibling and swapped in with os.replace. The previous
version is renamed aside first (a non-empty directory cannot be replaced in one rename) and deleted
after, so at every instant either the target or its `.<name>.old` sibling is a complete checkpoint;
`find_checkpoint` falls back to the latter after a crash between the two renames.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file, save_file

FORMAT = "forensics-train-state/1"
TENSORS_FILE = "state.safetensors"
META_FILE = "state.json"
_TENSOR_TAG = "__tensor__"
_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or does not match the modules/optimizers being restored."""


# ---------------------------------------------------------------- generic tensor/JSON split

def split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Copy of `obj` with every tensor moved into `tensors` (under a path key) and replaced by a tag."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().to("cpu").contiguous().clone()  # clone: tied tensors can't share
        return {_TENSOR_TAG: prefix}
    if isinstance(obj, Mapping):
        return {str(k): split_tensors(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [split_tensors(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"{prefix}: cannot store a {type(obj).__name__} without pickling it")


def join_tensors(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of split_tensors (tuples come back as lists, mapping keys as strings)."""
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR_TAG}:
            key = obj[_TENSOR_TAG]
            if key not in tensors:
                raise CheckpointError(f"{TENSORS_FILE} lacks tensor {key!r} that {META_FILE} refers to")
            return tensors[key]
        return {k: join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj


# ---------------------------------------------------------------- encoding of each part

def encode_optimizer(name: str, optimizer: torch.optim.Optimizer, tensors: dict) -> dict:
    sd = optimizer.state_dict()
    state = {str(idx): split_tensors(entry, f"optim/{name}/{idx}", tensors) for idx, entry in sd["state"].items()}
    groups = split_tensors(sd["param_groups"], f"optim/{name}/param_groups", tensors)
    return {"state": state, "param_groups": groups}


def decode_optimizer(encoded: dict, tensors: Mapping[str, torch.Tensor]) -> dict:
    # Optimizer.load_state_dict matches state to parameters by integer index: JSON made them strings.
    state = {int(idx): join_tensors(entry, tensors) for idx, entry in encoded["state"].items()}
    return {"state": state, "param_groups": join_tensors(encoded["param_groups"], tensors)}


def encode_rng(rank: int, rng: dict, tensors: dict) -> dict:
    return split_tensors(rng, f"rng/{rank}", tensors)


# ---------------------------------------------------------------- writing

def save_checkpoint(directory: str | os.PathLike, *, modules: Mapping[str, torch.nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer], schedulers: Mapping[str, Any],
                    rng_states: list[dict], meta: dict) -> Path:
    """Write one complete checkpoint directory atomically; `meta` holds the loop's counters/history."""
    tensors: dict[str, torch.Tensor] = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"module/{name}/{key}"] = value.detach().to("cpu").contiguous().clone()
    doc = {
        "format": FORMAT,
        **meta,
        "modules": list(modules),
        "optimizers": {n: encode_optimizer(n, o, tensors) for n, o in optimizers.items()},
        "schedulers": {n: split_tensors(s.state_dict(), f"sched/{n}", tensors) for n, s in schedulers.items()},
        "rng": [encode_rng(r, s, tensors) for r, s in enumerate(rng_states)],
    }
    text = json.dumps(doc, indent=1, allow_nan=True) + "\n"

    def write(tmp: Path) -> None:
        save_file(tensors, str(tmp / TENSORS_FILE), metadata={"format": FORMAT})
        (tmp / META_FILE).write_text(text, encoding="utf-8")

    return _write_dir_atomically(Path(directory), write)


def copy_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Atomically make `dst` a copy of the complete checkpoint `src` (used for best/ = last/)."""
    src = Path(src)

    def write(tmp: Path) -> None:
        for name in (TENSORS_FILE, META_FILE):
            shutil.copyfile(src / name, tmp / name)

    return _write_dir_atomically(Path(dst), write)


def _write_dir_atomically(target: Path, write) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.tmp-*"):  # left by a killed writer (one writer: rank 0)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(tmp)
        for f in tmp.iterdir():
            _fsync(f)
            os.chmod(f, 0o666 & ~_UMASK)  # mkdtemp/safetensors make private files; use the usual mode
        os.chmod(tmp, 0o777 & ~_UMASK)
        old = _old_path(target)
        if target.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _old_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


# ---------------------------------------------------------------- reading

def _complete(directory: Path) -> bool:
    return (directory / TENSORS_FILE).is_file() and (directory / META_FILE).is_file()


def find_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The complete checkpoint at `directory`, or the one a crash mid-swap left beside it, or None."""
    directory = Path(directory)
    for candidate in (directory, _old_path(directory)):
        if _complete(candidate):
            return candidate
    return None


def read_checkpoint(directory: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors on CPU, state.json document) of a checkpoint directory."""
    found = find_checkpoint(directory)
    if found is None:
        raise CheckpointError(f"{directory}: no complete checkpoint ({TENSORS_FILE} + {META_FILE})")
    try:
        meta = json.loads((found / META_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{found / META_FILE}: unreadable ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{found / META_FILE}: format {meta.get('format')!r} is not {FORMAT!r}")
    try:
        tensors = load_file(str(found / TENSORS_FILE), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{found / TENSORS_FILE}: unreadable ({exc})") from None
    return tensors, meta


def module_state(tensors: Mapping[str, torch.Tensor], name: str, source: str = "checkpoint") -> dict:
    prefix = f"module/{name}/"
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    if not state:
        names = sorted({k.split("/")[1] for k in tensors if k.startswith("module/")})
        raise CheckpointError(f"{source}: no module named {name!r} (it has {names})")
    return state


def load_module_weights(path: str | os.PathLike, name: str = "model") -> dict[str, torch.Tensor]:
    """One module's state_dict from a checkpoint directory or its state.safetensors (never unpickles)."""
    path = Path(path)
    file = path / TENSORS_FILE if path.is_dir() else path
    if path.is_dir() and not file.is_file():
        found = find_checkpoint(path)
        file = found / TENSORS_FILE if found else file
    if not file.is_file():
        raise CheckpointError(f"{path}: no {TENSORS_FILE} found")
    try:
        tensors = load_file(str(file), device="cpu")
    except Exception as exc:
        raise CheckpointError(f"{file}: unreadable ({exc})") from None
    return module_state(tensors, name, str(file))


def restore_module(module: torch.nn.Module, state: dict, name: str, source: str) -> None:
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(f"{source}: module {name!r} does not match the checkpoint "
                              f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
                              f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''})")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{source}: module {name!r} does not match the checkpoint ({first})") from None


def restore_training_state(source: str, tensors: Mapping[str, torch.Tensor], meta: dict, *,
                           modules: Mapping[str, torch.nn.Module],
                           optimizers: Mapping[str, torch.optim.Optimizer],
                           schedulers: Mapping[str, Any]) -> None:
    """Load modules, optimizers and schedulers in place from a read checkpoint."""
    if sorted(meta["modules"]) != sorted(modules):
        raise CheckpointError(f"{source}: modules {sorted(meta['modules'])} != task's {sorted(modules)}")
    if sorted(meta["optimizers"]) != sorted(optimizers):
        raise CheckpointError(f"{source}: optimizers {sorted(meta['optimizers'])} != task's {sorted(optimizers)}")
    if sorted(meta["schedulers"]) != sorted(schedulers):
        raise CheckpointError(f"{source}: schedulers {sorted(meta['schedulers'])} != task's {sorted(schedulers)}")
    for name, module in modules.items():
        restore_module(module, module_state(tensors, name, source), name, source)
    for name, optimizer in optimizers.items():
        try:
            optimizer.load_state_dict(decode_optimizer(meta["optimizers"][name], tensors))
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{source}: optimizer {name!r} does not match the checkpoint ({exc})") from None
    for name, scheduler in schedulers.items():
        scheduler.load_state_dict(join_tensors(meta["schedulers"][name], tensors))


def rng_state_for(meta: dict, tensors: Mapping[str, torch.Tensor], rank: int) -> dict | None:
    """This rank's saved generator states, or None when the checkpoint came from fewer ranks."""
    saved = meta.get("rng", [])
    return join_tensors(saved[rank], tensors) if rank < len(saved) else None
