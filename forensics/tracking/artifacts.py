"""Turning figures, images and dicts into the files a run uploads.

Each is written into the run's scratch folder first: the local copy is what MLflow uploads, and what a
run replays into the local store if the tracking server goes away later.
"""
from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from forensics.io import _json_default, atomic_write_json, atomic_write_text

FIGURE_DPI = 100
_IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def check_artifact_name(name: str) -> None:
    """Artifact names are paths inside the run; anything that escapes it is a caller mistake."""
    norm = posixpath.normpath(str(name))
    if not name or norm.startswith(("/", "..")) or norm == "." or "\\" in str(name):
        raise ValueError(f"artifact name {name!r}: must be a relative path inside the run, like 'val/roc.png'")


def write_figure(fig, path: Path) -> Path:
    """PNG at 100 dpi (or the format the suffix names); the figure stays open: its owner closes it."""
    fig.savefig(path, dpi=FIGURE_DPI, format=path.suffix[1:].lower() or "png", bbox_inches="tight")
    return path


def write_image(image: np.ndarray, path: Path) -> Path:
    """uint8 RGB (HxWx3), RGBA or grey (HxW) array -> PNG, or JPEG/WEBP/BMP when the suffix says so."""
    array = np.asarray(image)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"log_image {path.name}: expected a uint8 HxWx3 array, got {array.dtype} "
                         f"{tuple(array.shape)}")
    Image.fromarray(np.ascontiguousarray(array)).save(path, format=_IMAGE_FORMATS.get(path.suffix.lower(), "PNG"))
    return path


def thumbnail(image: np.ndarray, longest: int = 256) -> np.ndarray:
    """A copy at most `longest` px on its longer side: the preview the MLflow UI loads for step images. 256 is
    what MLflow's own log_image writes; the UI's image card is sized for it and clips a larger preview."""
    array = np.ascontiguousarray(np.asarray(image))
    picture = Image.fromarray(array)
    picture.thumbnail((longest, longest))
    return np.asarray(picture)


def write_dict(obj: Any, path: Path) -> Path:
    """JSON, or YAML when the name ends in .yaml/.yml; numpy scalars/arrays and Paths are converted."""
    if path.suffix.lower() in (".yaml", ".yml"):
        plain = json.loads(json.dumps(obj, default=_json_default))
        atomic_write_text(path, yaml.safe_dump(plain, sort_keys=False))
    else:
        atomic_write_json(path, obj)
    return path
