"""Where trained detectors go: the model registry's names, registration and promotion, in one place.

A detector version is registered as `forensics-detector` (MODEL_NAME). The alias CHAMPION is what
`forensics detect` uses when no --model is given; a new model gets CHALLENGER unless something promotes it.
Nothing else in the project spells these names.
"""
from __future__ import annotations

import sys
from pathlib import Path

from detectors.aliases import CHALLENGER, CHAMPION, MODEL_NAME, NO_CHAMPION, alias_of  # noqa: F401  (re-exported)
from detectors.bundle import is_bundle, load_bundle
from detectors.export import ExportError, cache_exports
from forensics.io import one_line
from forensics.tracking import resolve_model, set_model_alias


def register(run, model_dir: str | Path, alias: str | None = CHALLENGER) -> str | None:
    """Log a saved detector folder (or a bundle of a frame and a clip detector) with `run` and register it as a
    new version (alias `alias`); a new champion's ONNX exports go into the model cache so that scans start fast
    (prepare_fast_scans). A bundle's version is tagged with its kind, members and fused validation AUC."""
    sha256, tags = None, None
    if is_bundle(model_dir):
        bundle = load_bundle(model_dir)
        fusion = bundle.fusion or {}
        auc = (fusion.get("validation_auc_by_rule") or {}).get(fusion.get("rule"))
        sha256 = bundle.sha256
        tags = {"kind": "bundle", "members": ", ".join(f"{role}: {m.name}" for role, m in bundle.members.items()),
                **({"metric.validation.fused_video_auc": f"{float(auc):.4f}"} if auc is not None else {})}
    version = run.register_model(model_dir, name=MODEL_NAME, alias=alias, sha256=sha256, tags=tags)
    if alias == CHAMPION:
        prepare_fast_scans(model_dir)
    return version


def promote(version: str | int, alias: str = CHAMPION) -> None:
    """Point MODEL_NAME@alias at `version` (for the champion, with its exports cached: prepare_fast_scans)."""
    set_model_alias(MODEL_NAME, version, alias)
    if alias == CHAMPION:
        found = resolve(CHAMPION)
        if found is not None:
            prepare_fast_scans(found)


def prepare_fast_scans(model_dir: str | Path) -> None:
    """Cache the champion's checked ONNX export and MTCNN's (detectors.export.cache_exports), so that
    `forensics detect` runs it on onnxruntime without importing torch. Best effort: a model that does not
    export (a bundle, a clip detector) is scanned on torch, as before."""
    if is_bundle(model_dir):
        print(f"note: {MODEL_NAME}@{CHAMPION} is a bundle with a clip detector: scans run on torch (onnxruntime "
              "runs frame detectors only)", file=sys.stderr)
        return
    try:
        made = cache_exports(model_dir)
    except (ExportError, ValueError, OSError, RuntimeError) as exc:
        print(f"note: {MODEL_NAME}@{CHAMPION} will be scanned on torch (no ONNX export: {one_line(exc)})",
              file=sys.stderr)
        return
    if made:
        print(f"cached ONNX exports ({', '.join(made)}): `forensics detect` runs the champion on onnxruntime",
              file=sys.stderr)


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
