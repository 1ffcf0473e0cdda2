"""An MLmodel file beside every detector checkpoint, so the folder is also an MLflow pyfunc model.

`mlflow.pyfunc.load_model("models:/forensics-detector@champion")` and `mlflow models serve -m ... --env-manager
local` then score media files with the product's own pipeline. The flavour names a loader module
(forensics.pipelines.pyfunc) instead of a pickled Python object: nothing is pickled, the weights stay the
checkpoint's safetensors, and the folder keeps working as a plain forensics checkpoint. No environment is
captured: the model is served from the environment forensics is installed in (--env-manager local).
"""
from __future__ import annotations

import json
import platform
import uuid
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

from forensics.io import atomic_write_text

MLMODEL_FILE = "MLmodel"
LOADER_MODULE = "forensics.pipelines.pyfunc"
INPUT_SCHEMA = [{"type": "string", "name": "path", "required": True}]


def write_mlmodel(directory: str | Path) -> Path:
    """Write DIRECTORY/MLmodel (atomically): the python_function flavour with our loader, and a signature that
    takes one column of media paths."""
    try:
        mlflow_version = metadata.version("mlflow")
    except metadata.PackageNotFoundError:
        mlflow_version = None
    spec = {"flavors": {"python_function": {"loader_module": LOADER_MODULE, "data": ".",
                                            "python_version": platform.python_version()}},
            "mlflow_version": mlflow_version, "model_uuid": uuid.uuid4().hex,
            "utc_time_created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "signature": {"inputs": json.dumps(INPUT_SCHEMA), "outputs": None, "params": None}}
    return atomic_write_text(Path(directory) / MLMODEL_FILE, yaml.safe_dump(spec, sort_keys=False))
