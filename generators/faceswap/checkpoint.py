"""Face-swap checkpoints: the shared generator format (generators/checkpoint.py) with this family's loader.

config.json = {"format", "family": "faceswap", "model": <FaceswapModelConfig>, "identities", "crop", "mask",
"training", "metrics", "weights_sha256"}; the weights hold one module, "generator" (the autoencoder).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from generators.checkpoint import (CONFIG_FILE, FORMAT, WEIGHTS_FILE, GeneratorCheckpointError, checkpoint_dir,
                                   load_modules, one_line, read_generator as read_checkpoint, save_generator,
                                   state_mismatch)
from generators.faceswap.model import FaceswapAutoencoder, FaceswapModelConfig

FAMILY = "faceswap"

__all__ = ["CONFIG_FILE", "FAMILY", "FORMAT", "WEIGHTS_FILE", "GeneratorCheckpointError", "LoadedFaceswap",
           "checkpoint_dir", "load_faceswap", "read_generator", "save_generator", "state_mismatch"]


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


def read_generator(path: str | os.PathLike, family: str = FAMILY
                   ) -> tuple[dict[str, dict[str, torch.Tensor]], dict, str, Path]:
    """(state dict per module name, config.json, weights sha256, directory) of a `family` checkpoint."""
    return read_checkpoint(path, family)


def load_faceswap(path: str | os.PathLike, device: str | torch.device = "cpu", size: int | None = None) -> LoadedFaceswap:
    """Rebuild the autoencoder from config.json and load its weights strictly.

    `size`: the crop size the caller will feed; a different training resolution is refused here, in one
    line, rather than failing later inside a convolution.
    """
    states, config, sha, directory = read_checkpoint(path, FAMILY)
    try:
        arch = FaceswapModelConfig.from_dict(config.get("model") or {})
    except (TypeError, ValueError) as exc:
        raise GeneratorCheckpointError(f"{directory / CONFIG_FILE}: bad 'model' section ({one_line(exc)})") from None
    if size is not None and int(size) != arch.size:
        raise GeneratorCheckpointError(f"{directory}: trained on {arch.size}x{arch.size} crops, "
                                       f"asked for {size}x{size} (resolution mismatch)")
    modules = load_modules({"generator": FaceswapAutoencoder(arch)}, states, directory, device,
                           "the faceswap model", crop_size=arch.size)
    meta = {k: v for k, v in config.items() if k not in ("format", "family", "model", "weights_sha256")}
    return LoadedFaceswap(model=modules["generator"], config=config, sha256=sha, path=directory, meta=meta)
