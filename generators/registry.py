"""The generator families, by name: what `forensics train generator NAME`, the harness and the benchmarks
can use. Each family package registers one GeneratorFamily (generators/family.py) when imported; built-in
families are imported on first lookup, so `forensics --help` does not pay for torch models it will not use.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forensics.registry import Registry
from generators.checkpoint import CONFIG_FILE, GeneratorCheckpointError, checkpoint_dir
from generators.family import GeneratorFamily

FAMILIES: Registry[GeneratorFamily] = Registry("generator family", builtins={
    "faceswap": "generators.faceswap", "animation": "generators.animation"})


def register_family(family: GeneratorFamily) -> GeneratorFamily:
    return FAMILIES.add(family.name, family)


def list_generators() -> list[str]:
    return FAMILIES.names()


def get_generator(name: str) -> GeneratorFamily:
    """The family `name`; a one-line ValueError naming the known ones otherwise."""
    return FAMILIES.get(name)


def create_generator(name: str, preset: str = "cpu-small", **overrides) -> tuple[GeneratorFamily, Any]:
    """(family, training config) for family `name` from a preset name or YAML path, with keyword overrides
    (None values are ignored; a key the family's config lacks is a one-line error)."""
    family = get_generator(name)
    return family, family.config.from_preset(preset, **{k: v for k, v in overrides.items() if v is not None})


def checkpoint_family(path: str | Path) -> str:
    """The family a generator checkpoint was written by (its config.json `family`)."""
    directory = checkpoint_dir(Path(path))
    try:
        found = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8")).get("family")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise GeneratorCheckpointError(f"{directory / CONFIG_FILE}: unreadable ({' '.join(str(exc).split())})") from None
    if not isinstance(found, str) or not found:
        raise GeneratorCheckpointError(f"{directory}: config.json names no generator family")
    return found


def load_generator(path: str | Path, device="cpu", family: str | None = None) -> tuple[GeneratorFamily, Any]:
    """(family, loaded generator) for a checkpoint of any registered family; `family` checks what it is."""
    spec = get_generator(family or checkpoint_family(path))
    return spec, spec.load(path, device=device)
