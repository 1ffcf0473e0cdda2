"""The model registry's names for detectors, in a module light enough for `forensics detect` to import before
it knows whether it needs torch or MLflow at all (detectors.promote does the registering and promoting).

A detector version is registered as `forensics-detector` (MODEL_NAME). The alias CHAMPION is what
`forensics detect` uses when no --model is given; a new model gets CHALLENGER unless something promotes it.
"""
from __future__ import annotations

MODEL_NAME = "forensics-detector"
CHAMPION = "champion"
CHALLENGER = "challenger"
NO_CHAMPION = (f"no detector model given and none is registered as {MODEL_NAME}@{CHAMPION}; train one with "
               "`make demo` (or `forensics train detector`), or pass --model PATH")


def alias_of(given: str) -> str | None:
    """The registry alias `given` names ("champion", "challenger", or "models:/forensics-detector@ALIAS" for
    either), None when it names anything else (a folder)."""
    alias = str(given).removeprefix(f"models:/{MODEL_NAME}@")
    return alias if alias in (CHAMPION, CHALLENGER) else None
