"""YAML presets for the dataclass configs (detectors, generators): one reader so every family resolves a
preset name or path, rejects unknown keys and applies command-line overrides the same way."""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import yaml


def read_preset(cls, preset_dir: Path, name_or_path: str, what: str, overrides: dict) -> dict:
    """The keyword arguments for `cls`: the preset's YAML (a name in preset_dir, or a .yaml path) updated
    with the non-None `overrides`; a one-line ValueError for a missing preset or unknown keys."""
    path = Path(name_or_path)
    if not path.suffix:
        path = Path(preset_dir) / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in Path(preset_dir).glob("*.yaml")))
        raise ValueError(f"{path}: no such {what} preset (known: {known})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a {what} preset must be a mapping of config keys")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names) + sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"{path}: unknown {what} config keys {', '.join(unknown)}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return data
