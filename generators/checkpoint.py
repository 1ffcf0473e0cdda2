"""Generator checkpoints, every family: generator.safetensors + config.json in one directory; never unpickled.

config.json = {"format": FORMAT, "family": <name>, ...family's own keys..., "weights_sha256": ...}. Weights
are stored flat as "<module>/<param>" so one file holds all the modules inference needs. The family is
checked before anything else, so that a checkpoint of another generator (or a detector) fails with one
line naming the directory instead of a wall of missing-key errors; the weights' hash catches a torn
overwrite (new weights beside an old config). Family-specific loaders (faceswap/checkpoint.py,
animation/checkpoint.py) rebuild their modules from config.json and hand them to `load_modules`.

The directory may also hold the training loop's last/ and best/ states (resume); those are separate.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from forensics.io import atomic_path, atomic_write_json, sha256_file
from forensics.weights import one_line, place, read_json_object, read_weights, state_mismatch  # noqa: F401

FORMAT = "forensics-generator/1"
WEIGHTS_FILE = "generator.safetensors"
CONFIG_FILE = "config.json"
RESERVED_KEYS = ("format", "weights_sha256")
CROP_SIZE_KEY = "crop_size"       # in the safetensors header: the resolution the weights were trained at
# How errors name a family: "not a face-swap generator checkpoint" reads better than the registry name.
FAMILY_LABELS = {"faceswap": "face-swap", "animation": "face-animation"}


class GeneratorCheckpointError(ValueError):
    """A generator checkpoint that cannot be used; the message is one line: 'PATH: reason'."""


def save_generator(directory: str | os.PathLike, modules: Mapping[str, torch.nn.Module], config: dict,
                   crop_size: int | None = None) -> Path:
    """Write directory/generator.safetensors (keys "<module>/<param>") then config.json, each atomically.

    `config` must name its "family"; it is stored as given plus the format tag and the weights' sha256.
    crop_size (default: config["crop"]["size"]) is also written into the weights' own header: convolutional
    weights fit any resolution, so without it a config.json claiming another size would load silently.
    """
    config = dict(config)
    if not config.get("family"):
        raise ValueError("save_generator: config must name the generator 'family'")
    clash = [k for k in RESERVED_KEYS if k in config]
    if clash:
        raise ValueError(f"save_generator: config may not set reserved key(s) {', '.join(clash)}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # clone(): safetensors refuses tensors sharing storage, and the copies detach us from the device.
    tensors = {f"{name}/{key}": value.detach().cpu().contiguous().clone()
               for name, module in modules.items() for key, value in module.state_dict().items()}
    if crop_size is None and isinstance(config.get("crop"), dict):
        crop_size = config["crop"].get("size")
    header = {"format": "pt", "family": str(config["family"])}
    if crop_size is not None:
        header[CROP_SIZE_KEY] = str(int(crop_size))
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    atomic_write_json(directory / CONFIG_FILE, {"format": FORMAT, **config,
                                                "weights_sha256": sha256_file(directory / WEIGHTS_FILE)})
    return directory


def read_generator(path: str | os.PathLike, family: str) -> tuple[dict[str, dict[str, torch.Tensor]], dict, str, Path]:
    """(state dict per module name, config.json, weights sha256, directory) of a `family` checkpoint."""
    directory = checkpoint_dir(Path(path))
    config = read_config(directory / CONFIG_FILE, family)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise GeneratorCheckpointError(f"{weights}: missing (a generator checkpoint is {WEIGHTS_FILE} + {CONFIG_FILE})")
    flat, sha = read_weights(weights, config.get("weights_sha256"), CONFIG_FILE, GeneratorCheckpointError)
    states: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        module, _, param = key.partition("/")
        states.setdefault(module, {})[param] = tensor
    return states, config, sha, directory


def load_modules(modules: Mapping[str, torch.nn.Module], states: Mapping[str, Mapping[str, torch.Tensor]],
                 directory: Path, device: str | torch.device, what: str,
                 crop_size: int | None = None) -> dict[str, torch.nn.Module]:
    """Load each module's saved state strictly and move it to `device` in eval mode.

    `what` names the model in errors ("the 64px faceswap model"); `crop_size` is the resolution config.json
    builds it for. Weights that do not fit config.json (edited, or from another resolution) fail in one
    line naming the weights file.
    """
    weights = directory / WEIGHTS_FILE
    if crop_size is not None:
        what = f"{what} at {int(crop_size)}px"
        trained = trained_crop_size(weights)
        if trained is not None and trained != int(crop_size):
            raise GeneratorCheckpointError(f"{weights}: weights trained on {trained}px crops do not fit {what} "
                                           f"in {CONFIG_FILE} (the pair is mixed up)")
    for name, module in modules.items():
        state = states.get(name)
        if state is None:
            raise GeneratorCheckpointError(f"{weights}: no {name!r} weights (modules: "
                                           f"{', '.join(sorted(states)) or 'none'})")
        problem = state_mismatch(module, state)
        if problem:
            raise GeneratorCheckpointError(f"{weights}: {name} weights do not fit {what} in {CONFIG_FILE}: {problem}")
        module.load_state_dict(state, strict=True)
    return place(modules, device, GeneratorCheckpointError, directory)


def trained_crop_size(weights: Path) -> int | None:
    """The crop size recorded in the weights' header, or None (checkpoints written before it was)."""
    try:
        with safe_open(str(weights), framework="pt") as handle:
            value = (handle.metadata() or {}).get(CROP_SIZE_KEY)
        return int(value) if value is not None else None
    except (SafetensorError, OSError, ValueError):
        return None


def checkpoint_dir(path: Path) -> Path:
    """The checkpoint directory for a path naming it or one of its two files."""
    if path.is_dir():
        return path
    if not path.exists():
        raise GeneratorCheckpointError(f"{path}: no such file or directory")
    if path.name in (WEIGHTS_FILE, CONFIG_FILE):
        return path.parent
    raise GeneratorCheckpointError(f"{path}: not a generator checkpoint directory ({WEIGHTS_FILE} + {CONFIG_FILE})")


def read_config(path: Path, family: str) -> dict[str, Any]:
    """config.json of a `family` generator checkpoint; another family's, a detector's or a training
    state's is refused in one line that says what it is instead."""
    label = FAMILY_LABELS.get(family, family)
    if not path.is_file():
        hint = ""
        if (path.parent / "state.json").is_file():
            hint = " (this looks like a training state; pass the run directory above it)"
        elif (path.parent / "last").is_dir():
            hint = " (training unfinished? the generator is exported here when training ends)"
        raise GeneratorCheckpointError(f"{path}: missing (a generator checkpoint is {WEIGHTS_FILE} + "
                                       f"{CONFIG_FILE}){hint}")
    config = read_json_object(path, GeneratorCheckpointError)
    found = config.get("family")
    if found is not None and found != family:  # another family's checkpoint, whatever its format version
        raise GeneratorCheckpointError(f"{path.parent}: a {found!r} generator checkpoint, not a {label} one")
    if config.get("format") != FORMAT:
        kind = "a detector checkpoint" if "detector" in config else f"format {config.get('format')!r}"
        raise GeneratorCheckpointError(f"{path.parent}: {kind}, not a {label} generator checkpoint "
                                       f"(expected format {FORMAT!r})")
    if found is None:
        raise GeneratorCheckpointError(f"{path}: names no generator 'family', not a {label} checkpoint")
    return config
