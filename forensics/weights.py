"""What every checkpoint loader here shares (detectors, generators, probes): read a weights file whose hash
the config recorded, read the config, say in one line why a file does not fit its model (shapes first, since
they say the most), and put the modules on their device. Each caller passes its own error class, so a user
sees "PATH: reason" from whichever kind of checkpoint they pointed at."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from forensics.device import resolve_device
from forensics.io import one_line, read_json_object, sha256_file  # noqa: F401  (re-exported)


def read_weights(weights: Path, recorded_sha256: str | None, config_name: str,
                 error: type[ValueError]) -> tuple[dict[str, torch.Tensor], str]:
    """(tensors on the CPU, the file's sha256); the file must be the one its config recorded (a torn overwrite
    pairs new weights with an old config) and a readable safetensors file."""
    sha = sha256_file(weights)
    if recorded_sha256 not in (None, sha):
        raise error(f"{weights}: does not match {config_name} (sha256 differs; the pair was written by different "
                    "saves)")
    try:
        with interrupts_deferred():
            return load_file(str(weights), device="cpu"), sha
    except (SafetensorError, OSError, ValueError) as exc:
        raise error(f"{weights}: not a readable safetensors file ({one_line(exc)})") from None


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, then deliver it as it would have been. torch turns a KeyboardInterrupt
    raised inside its C++ (as safetensors builds tensors) into an unrelated ValueError, so a Ctrl-C in the middle
    of a load read as "not a readable safetensors file" and a resumable run exited as if the file were bad.
    Loads take well under a second, so the user does not notice the wait. Only the main thread owns signals."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
        yield
        return
    caught: list[Any] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            else:
                signal.raise_signal(signal.SIGINT)


def place(modules: Mapping[str, torch.nn.Module], device: str | torch.device, error: type[ValueError],
          where: Path) -> dict[str, torch.nn.Module]:
    """The modules on `device`, in eval mode; an unusable device fails in one line naming `where`."""
    try:
        target = resolve_device(device)
    except ValueError as exc:
        raise error(f"{where}: {exc}") from None
    return {name: module.to(target).eval() for name, module in modules.items()}


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
