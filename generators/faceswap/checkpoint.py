"""Generator checkpoints: generator.safetensors + config.json in one directory; loading never unpickles.

config.json = {"format": FORMAT, "family": "faceswap", "model": <architecture>, "weights_sha256": ...,
**meta (identities, crop, training data, metrics)}. The family is checked first so that a checkpoint of
another generator (or a detector) fails with one line naming it, instead of a wall of missing-key errors;
the weights' hash catches a torn overwrite (new weights beside an old config).

The directory may also hold the training loop's last/ and best/ states (resume); those are separate.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from forensics.io import atomic_path, atomic_write_json, sha256_file

FORMAT = "forensics-generator/1"
FAMILY = "faceswap"
WEIGHTS_FILE = "generator.safetensors"
CONFIG_FILE = "config.json"
_RESERVED = ("format", "weights_sha256")


class GeneratorCheckpointError(ValueError):
    """A generator checkpoint that cannot be used; the message is one line: 'PATH: reason'."""


@dataclass
class LoadedFaceswap:
    """A face-swap model ready to convert: the autoencoder (eval mode) and where it came from."""
    model: Any                 # FaceswapAutoencoder
    config: dict[str, Any]     # the whole config.json
    sha256: str
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return int(self.model.config.size)

    @property
    def margin(self) -> float:
        return float(self.model.config.margin)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def save_generator(directory: str | os.PathLike, modules: Mapping[str, torch.nn.Module], config: dict) -> Path:
    """Write directory/generator.safetensors (keys "<module>/<param>") then config.json, each atomically.

    `config` must name its "family"; it is stored as given plus the format tag and the weights' sha256.
    """
    config = dict(config)
    if not config.get("family"):
        raise ValueError("save_generator: config must name the generator 'family'")
    clash = [k for k in _RESERVED if k in config]
    if clash:
        raise ValueError(f"save_generator: config may not set reserved key(s) {', '.join(clash)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # clone(): safetensors refuses tensors sharing storage, and the copies detach us from the device.
    tensors = {f"{name}/{key}": value.detach().cpu().contiguous().clone()
               for name, module in modules.items() for key, value in module.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "family": str(config["family"])})
    atomic_write_json(directory / CONFIG_FILE, {"format": FORMAT, **config,
                                                "weights_sha256": sha256_file(directory / WEIGHTS_FILE)})
    return directory


def read_generator(path: str | os.PathLike, family: str = FAMILY) -> tuple[dict[str, dict[str, torch.Tensor]], dict, str, Path]:
    """(state dict per module name, config.json, weights sha256, directory) of a `family` checkpoint."""
    directory = checkpoint_dir(Path(path))
    config = _read_config(directory / CONFIG_FILE, family)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise GeneratorCheckpointError(f"{weights}: missing (a generator checkpoint is {WEIGHTS_FILE} + {CONFIG_FILE})")
    sha = sha256_file(weights)
    if config.get("weights_sha256") not in (None, sha):
        raise GeneratorCheckpointError(f"{weights}: does not match {CONFIG_FILE} (sha256 differs; the pair was "
                                       "written by different saves)")
    try:
        flat = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise GeneratorCheckpointError(f"{weights}: not a readable safetensors file ({_one_line(exc)})") from None
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        module, _, param = key.partition("/")
        states.setdefault(module, {})[param] = tensor
    return states, config, sha, directory


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[dict[str, torch.nn.Module], dict]:
    """({"generator": FaceswapAutoencoder} in eval mode, config.json): the shared generator contract."""
    loaded = load_faceswap(path, device=device)
    return {"generator": loaded.model}, loaded.config


def load_faceswap(path: str | os.PathLike, device: str | torch.device = "cpu", size: int | None = None) -> LoadedFaceswap:
    """Rebuild the autoencoder from config.json and load its weights strictly.

    `size`: the crop size the caller will feed; a different training resolution is refused here, in one
    line, rather than failing later inside a convolution.
    """
    from forensics.device import resolve_device
    from generators.faceswap.model import FaceswapAutoencoder, FaceswapModelConfig

    states, config, sha, directory = read_generator(path, FAMILY)
    try:
        arch = FaceswapModelConfig.from_dict(config.get("model") or {})
    except (TypeError, ValueError) as exc:
        raise GeneratorCheckpointError(f"{directory / CONFIG_FILE}: bad 'model' section ({_one_line(exc)})") from None
    if size is not None and int(size) != arch.size:
        raise GeneratorCheckpointError(f"{directory}: trained on {arch.size}x{arch.size} crops, "
                                       f"asked for {size}x{size} (resolution mismatch)")
    model = FaceswapAutoencoder(arch)
    state = states.get("generator")
    if state is None:
        raise GeneratorCheckpointError(f"{directory / WEIGHTS_FILE}: no 'generator' weights "
                                       f"(modules: {', '.join(sorted(states)) or 'none'})")
    problem = state_mismatch(model, state)
    if problem:
        raise GeneratorCheckpointError(f"{directory / WEIGHTS_FILE}: weights do not fit the {arch.size}px faceswap "
                                       f"model in {CONFIG_FILE}: {problem}")
    model.load_state_dict(state, strict=True)
    try:
        target = resolve_device(device)
    except ValueError as exc:
        raise GeneratorCheckpointError(f"{directory}: {exc}") from None
    model = model.to(target).eval()
    meta = {k: v for k, v in config.items() if k not in ("format", "family", "model", "weights_sha256")}
    return LoadedFaceswap(model=model, config=config, sha256=sha, path=directory, meta=meta)


def checkpoint_dir(path: Path) -> Path:
    """The checkpoint directory for a path naming it or its weights file."""
    if path.is_dir():
        return path
    if not path.exists():
        raise GeneratorCheckpointError(f"{path}: no such file or directory")
    if path.name == WEIGHTS_FILE or path.name == CONFIG_FILE:
        return path.parent
    raise GeneratorCheckpointError(f"{path}: not a generator checkpoint directory ({WEIGHTS_FILE} + {CONFIG_FILE})")


def _read_config(path: Path, family: str) -> dict[str, Any]:
    if not path.is_file():
        hint = " (this looks like a training state; pass the run directory above it)" \
            if (path.parent / "state.json").is_file() else ""
        raise GeneratorCheckpointError(f"{path}: missing (a generator checkpoint is {WEIGHTS_FILE} + "
                                       f"{CONFIG_FILE}){hint}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GeneratorCheckpointError(f"{path}: invalid JSON (line {exc.lineno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GeneratorCheckpointError(f"{path}: unreadable ({_one_line(exc)})") from None
    if not isinstance(config, dict):
        raise GeneratorCheckpointError(f"{path}: expected a JSON object")
    if config.get("format") != FORMAT:
        raise GeneratorCheckpointError(f"{path.parent}: not a generator checkpoint (format {config.get('format')!r}, "
                                       f"expected {FORMAT!r})")
    if config.get("family") != family:
        raise GeneratorCheckpointError(f"{path.parent}: a {config.get('family')!r} generator checkpoint, "
                                       f"not {family!r}")
    return config


def state_mismatch(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if wrong:
        k = wrong[0]
        return (f"{len(wrong)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} vs model "
                f"{tuple(expected[k].shape)}")
    if missing:
        return f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"
    if unexpected:
        return f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}"
    return None


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
