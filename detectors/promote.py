"""Where trained detectors go: the model registry's names, registration and promotion, in one place.

A detector version is registered as `forensics-detector` (MODEL_NAME). The alias CHAMPION is what
`forensics detect` uses when no --model is given; a new model gets CHALLENGER unless something promotes it.
Nothing else in the project spells these names.
"""
from __future__ import annotations

import sys
from pathlib import Path

from forensics.tracking import resolve_model, set_model_alias

MODEL_NAME = "forensics-detector"
CHAMPION = "champion"
CHALLENGER = "challenger"
NO_CHAMPION = (f"no detector model given and none is registered as {MODEL_NAME}@{CHAMPION}; train one with "
               "`make demo` (or `forensics train detector`), or pass --model PATH")


def register(run, model_dir: str | Path, alias: str | None = CHALLENGER) -> str | None:
    """Log a saved detector folder with `run` and register it as a new version (alias `alias`)."""
    return run.register_model(model_dir, name=MODEL_NAME, alias=alias)


def promote(version: str | int, alias: str = CHAMPION) -> None:
    """Point MODEL_NAME@alias at `version`."""
    set_model_alias(MODEL_NAME, version, alias)


def resolve(alias: str = CHAMPION) -> Path | None:
    """The local folder of MODEL_NAME@alias, or None when nothing is registered under that alias."""
    return resolve_model(MODEL_NAME, alias)


def promote_if_first(version: str | int | None) -> bool:
    """`forensics detect` needs a champion: the first model ever registered becomes it. True if it did."""
    if version is None or resolve(CHAMPION) is not None:
        return False
    promote(version, CHAMPION)
    print(f"no champion yet: {MODEL_NAME} version {version} is now `{CHAMPION}`", file=sys.stderr)
    return True


def alias_of(given: str) -> str | None:
    """The registry alias `given` names ("champion", "challenger", or "models:/forensics-detector@ALIAS" for
    either), None when it names anything else (a folder)."""
    alias = str(given).removeprefix(f"models:/{MODEL_NAME}@")
    return alias if alias in (CHAMPION, CHALLENGER) else None


def resolve_detector(given: str) -> str:
    """A detector folder for `given`: an alias of MODEL_NAME (see alias_of) looked up in the registry,
    anything else taken as a folder."""
    alias = alias_of(given)
    if alias is None:
        return str(given)
    found = resolve(alias)
    if found is None:
        raise ValueError(f"no detector registered as {MODEL_NAME}@{alias}; pass a detector folder "
                         f"(e.g. runs/detector/model, from `forensics train detector`)")
    return str(found)
