"""Generator checkpoints of the animation family: generator.safetensors + config.json; never unpickled.

config.json = {"format": FORMAT, "family": "animation", "config": <AnimationConfig>, "modules": [...],
"weights_sha256": ..., **meta}. Only what inference needs is kept (keypoint detector and generator; the
discriminator and optimizer state stay in the training loop's own checkpoints, which resume training).
The family and the crop size are checked at load time so that a face-swap checkpoint given to `animate`,
or a model asked to work at another resolution, fails with one line instead of producing garbage.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from forensics.io import atomic_path, atomic_write_json, sha256_file

from .task import FAMILY, AnimationConfig, build_modules

FORMAT = "forensics-generator/1"
WEIGHTS_FILE = "generator.safetensors"   # same layout as the face-swap family
CONFIG_FILE = "config.json"
INFERENCE_MODULES = ("kp_detector", "generator")
_RESERVED = ("format", "family", "config", "modules", "weights_sha256")


class GeneratorCheckpointError(ValueError):
    """A checkpoint that cannot be used here; the message is one line: 'PATH: reason'."""


@dataclass
class AnimationModel:
    """A loaded animation model in eval mode: what animate/reenact_crops run."""
    kp_detector: nn.Module
    generator: nn.Module
    config: AnimationConfig
    sha256: str
    path: Path | None = None
    meta: dict | None = None

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def size(self) -> int:
        return self.config.size


def save_generator(directory: str | os.PathLike, modules: dict[str, nn.Module], config: dict,
                   family: str = FAMILY, meta: dict[str, Any] | None = None) -> Path:
    """Write directory/model.safetensors (tensors named '<module>/<key>') then config.json, each atomically."""
    meta = dict(meta or {})
    clash = [k for k in _RESERVED if k in meta]
    if clash:
        raise ValueError(f"save_generator: meta may not set reserved key(s) {', '.join(clash)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # clone(): safetensors refuses tensors sharing storage, and the copies leave the device.
    tensors = {f"{name}/{key}": value.detach().cpu().contiguous().clone()
               for name, module in modules.items() for key, value in module.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "family": family})
    document = {"format": FORMAT, "family": family, "config": config, "modules": sorted(modules),
                "weights_sha256": sha256_file(directory / WEIGHTS_FILE), **meta}
    atomic_write_json(directory / CONFIG_FILE, document)
    return directory


def save_animation(directory: str | os.PathLike, modules: dict[str, nn.Module], config: AnimationConfig,
                   meta: dict[str, Any] | None = None) -> Path:
    """Keep the inference modules of a trained family (e.g. Trainer.modules) as a generator checkpoint."""
    missing = [m for m in INFERENCE_MODULES if m not in modules]
    if missing:
        raise ValueError(f"save_animation: modules lack {', '.join(missing)}")
    return save_generator(directory, {m: modules[m] for m in INFERENCE_MODULES}, config.to_dict(), FAMILY, meta)


def read_generator(path: str | os.PathLike) -> tuple[dict[str, dict[str, torch.Tensor]], dict, str, Path]:
    """(state dicts by module, config.json, weights sha256, directory) of a generator checkpoint (another
    family's is refused by its config.json before its weights are read)."""
    directory = _checkpoint_dir(Path(path))
    weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    document = _read_config(config_path)
    if not weights.is_file():
        raise GeneratorCheckpointError(f"{weights}: missing (a generator checkpoint is {WEIGHTS_FILE} + {CONFIG_FILE})")
    sha = sha256_file(weights)
    if document.get("weights_sha256") not in (None, sha):
        raise GeneratorCheckpointError(f"{weights}: does not match {CONFIG_FILE} (sha256 differs; the pair was "
                                       "written by different saves)")
    try:
        tensors = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise GeneratorCheckpointError(f"{weights}: not a readable safetensors file ({_one_line(exc)})") from None
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        module, _, name = key.partition("/")
        states.setdefault(module, {})[name] = value
    return states, document, sha, directory


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu",
                   size: int | None = None) -> tuple[dict[str, nn.Module], AnimationConfig]:
    """(kp_detector and generator rebuilt from config.json with the saved weights, in eval mode; config)."""
    model = load_animation(path, device=device, size=size)
    return {"kp_detector": model.kp_detector, "generator": model.generator}, model.config


def load_animation(path: str | os.PathLike, device: str | torch.device = "cpu",
                   size: int | None = None) -> AnimationModel:
    """Load an animation checkpoint; `size`, when given, must be the resolution the model was trained at."""
    from forensics.device import resolve_device

    states, document, sha, directory = read_generator(path)
    config_path = directory / CONFIG_FILE
    if document.get("family") != FAMILY:
        raise GeneratorCheckpointError(f"{directory}: no 'family' in {CONFIG_FILE}, not a face-animation checkpoint")
    try:
        config = AnimationConfig.from_dict(document.get("config") or {}, where=str(config_path))
    except (TypeError, ValueError) as exc:
        raise GeneratorCheckpointError(f"{config_path}: bad animation config ({_one_line(exc)})") from None
    if size is not None and int(size) != config.size:
        raise GeneratorCheckpointError(f"{directory}: the model works on {config.size}px crops, not {int(size)}px")
    modules = build_modules(config)
    for name in INFERENCE_MODULES:
        state = states.get(name)
        if state is None:
            raise GeneratorCheckpointError(f"{directory / WEIGHTS_FILE}: no weights for module {name!r}")
        problem = state_mismatch(modules[name], state)
        if problem:
            raise GeneratorCheckpointError(f"{directory / WEIGHTS_FILE}: {name} weights do not fit {CONFIG_FILE}: "
                                           f"{problem}")
        modules[name].load_state_dict(state, strict=True)
    try:
        target = resolve_device(device)
    except ValueError as exc:
        raise GeneratorCheckpointError(f"{directory}: {exc}") from None
    kp_detector, generator = (modules[n].to(target).eval() for n in INFERENCE_MODULES)
    meta = {k: v for k, v in document.items() if k not in _RESERVED}
    return AnimationModel(kp_detector, generator, config, sha, directory, meta)


def state_mismatch(module: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    expected = module.state_dict()
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if wrong:
        k = wrong[0]
        return (f"{len(wrong)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} "
                f"vs model {tuple(expected[k].shape)}")
    missing = [k for k in expected if k not in state]
    if missing:
        return f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        return f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]}"
    return None


def _checkpoint_dir(path: Path) -> Path:
    if path.is_dir():
        return path
    if not path.exists():
        raise GeneratorCheckpointError(f"{path}: no such file or directory")
    if path.name in (WEIGHTS_FILE, CONFIG_FILE):
        return path.parent
    raise GeneratorCheckpointError(f"{path}: not a generator checkpoint directory ({WEIGHTS_FILE} + {CONFIG_FILE})")


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        hint = " (training unfinished? train_animation exports here when it ends)" \
            if (path.parent / "last").is_dir() else ""
        raise GeneratorCheckpointError(f"{path}: missing (a generator checkpoint is {WEIGHTS_FILE} + "
                                       f"{CONFIG_FILE}){hint}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GeneratorCheckpointError(f"{path}: invalid JSON (line {exc.lineno}: {exc.msg})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GeneratorCheckpointError(f"{path}: unreadable ({_one_line(exc)})") from None
    if not isinstance(document, dict):
        raise GeneratorCheckpointError(f"{path}: expected a JSON object")
    family = document.get("family")
    if family is not None and family != FAMILY:  # another family's checkpoint, whatever its format version
        raise GeneratorCheckpointError(f"{path.parent}: a {family!r} generator checkpoint, not a face-animation one")
    if document.get("format") != FORMAT:
        kind = "a detector checkpoint" if "detector" in document else f"format {document.get('format')!r}"
        raise GeneratorCheckpointError(f"{path.parent}: {kind}, not a face-animation generator checkpoint")
    return document


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
