"""The generator families, by name: what `forensics train generator NAME` and the harness can make.

Each family package exposes one ``GENERATOR`` spec (its config dataclass with YAML presets, a task
factory for the shared training loop, and a loader for its checkpoints); the registry imports families
lazily so `forensics --help` does not pay for torch models it will not use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

FAMILIES = {"faceswap": "generators.faceswap", "animation": "generators.animation"}


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    config: type                          # dataclass; config.from_preset(name_or_yaml, **overrides)
    make_task: Callable[..., Any]         # (config, faces=None) -> TrainTask for forensics.training
    load: Callable[..., Any]              # (checkpoint_dir, device=...) -> loaded generator
    train: Callable[..., Any] | None = None   # (config, out_dir, run=None) -> (FitResult, model_dir)
    description: str = ""


_SPECS: dict[str, GeneratorSpec] = {}


def register_generator(spec: GeneratorSpec) -> GeneratorSpec:
    if spec.name in _SPECS and _SPECS[spec.name] is not spec:
        raise ValueError(f"generator {spec.name!r} is already registered")
    _SPECS[spec.name] = spec
    return spec


def list_generators() -> list[str]:
    return sorted(FAMILIES)


def get_generator(name: str) -> GeneratorSpec:
    """The spec of family `name`; a one-line ValueError naming the known ones otherwise."""
    if name not in FAMILIES:
        raise ValueError(f"unknown generator {name!r} (known: {', '.join(list_generators())})")
    if name not in _SPECS:
        module = importlib.import_module(FAMILIES[name])
        spec = getattr(module, "GENERATOR", None)
        if spec is None:
            raise ValueError(f"generator family {name!r} ({FAMILIES[name]}) exposes no GENERATOR spec")
        register_generator(spec if isinstance(spec, GeneratorSpec) else GeneratorSpec(**spec))
    return _SPECS[name]


def create_generator(name: str, preset: str = "cpu-small", **overrides):
    """(spec, config) for family `name` from a preset name or YAML path, with keyword overrides."""
    spec = get_generator(name)
    return spec, spec.config.from_preset(preset, **{k: v for k, v in overrides.items() if v is not None})
