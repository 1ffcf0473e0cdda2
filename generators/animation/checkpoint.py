"""Face-animation checkpoints: the shared generator format (generators/checkpoint.py) with this family's loader.

config.json = {"format", "family": "animation", "config": <AnimationConfig>, "modules": [...],
"weights_sha256", **meta}. Only what inference needs is kept (keypoint detector and generator; the
discriminator and optimizer state stay in the training loop's own checkpoints, which resume training).
The crop size is checked at load time so that a model asked to work at another resolution fails with
one line instead of producing garbage.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from generators.checkpoint import (CONFIG_FILE, FORMAT, WEIGHTS_FILE, GeneratorCheckpointError, load_modules,
                                   one_line, read_generator as read_checkpoint, save_generator as save_checkpoint,
                                   state_mismatch)

from .config import FAMILY, AnimationConfig
from .model import build_modules

INFERENCE_MODULES = ("kp_detector", "generator")
_RESERVED = ("format", "family", "config", "modules", "weights_sha256")

__all__ = ["CONFIG_FILE", "FORMAT", "INFERENCE_MODULES", "WEIGHTS_FILE", "AnimationModel", "GeneratorCheckpointError",
           "load_animation", "read_generator", "save_animation", "save_generator", "state_mismatch"]


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

    @property
    def margin(self) -> float:
        return float(self.config.margin)


def save_generator(directory: str | os.PathLike, modules: dict[str, nn.Module], config: dict,
                   family: str = FAMILY, meta: dict[str, Any] | None = None) -> Path:
    """Write the modules and their config (AnimationConfig.to_dict()) plus `meta` as a generator checkpoint."""
    meta = dict(meta or {})
    clash = [k for k in _RESERVED if k in meta]
    if clash:
        raise ValueError(f"save_generator: meta may not set reserved key(s) {', '.join(clash)}")
    return save_checkpoint(directory, modules, {"family": family, "config": config, "modules": sorted(modules), **meta},
                           crop_size=config.get("size"))


def save_animation(directory: str | os.PathLike, modules: dict[str, nn.Module], config: AnimationConfig,
                   meta: dict[str, Any] | None = None) -> Path:
    """Keep the inference modules of a trained family (e.g. Trainer.modules) as a generator checkpoint."""
    missing = [m for m in INFERENCE_MODULES if m not in modules]
    if missing:
        raise ValueError(f"save_animation: modules lack {', '.join(missing)}")
    return save_generator(directory, {m: modules[m] for m in INFERENCE_MODULES}, config.to_dict(), FAMILY, meta)


def read_generator(path: str | os.PathLike) -> tuple[dict[str, dict[str, torch.Tensor]], dict, str, Path]:
    """(state dicts by module, config.json, weights sha256, directory) of an animation checkpoint."""
    return read_checkpoint(path, FAMILY)


def load_animation(path: str | os.PathLike, device: str | torch.device = "cpu",
                   size: int | None = None) -> AnimationModel:
    """Load an animation checkpoint; `size`, when given, must be the resolution the model was trained at."""
    states, document, sha, directory = read_checkpoint(path, FAMILY)
    config_path = directory / CONFIG_FILE
    try:
        config = AnimationConfig.from_dict(document.get("config") or {}, where=str(config_path))
    except (TypeError, ValueError) as exc:
        raise GeneratorCheckpointError(f"{config_path}: bad animation config ({one_line(exc)})") from None
    if size is not None and int(size) != config.size:
        raise GeneratorCheckpointError(f"{directory}: the model works on {config.size}px crops, not {int(size)}px")
    built = build_modules(config)
    modules = load_modules({name: built[name] for name in INFERENCE_MODULES}, states, directory, device,
                           "the animation model", crop_size=config.size)
    meta = {k: v for k, v in document.items() if k not in _RESERVED}
    return AnimationModel(modules["kp_detector"], modules["generator"], config, sha, directory, meta)
