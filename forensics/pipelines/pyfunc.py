"""The loader MLflow calls for a detector folder's MLmodel (detectors.mlmodel): media paths in, records out.

    model = mlflow.pyfunc.load_model("models:/forensics-detector@champion")
    model.predict(pandas.DataFrame({"path": ["clip.mp4", "photo.jpg"]}))

Each row is scored exactly as `forensics detect` scores it (the same DetectPipeline, default settings): the
columns are the record's headline fields, and `record` holds the whole record as JSON. Bad input gives a row
with status "error" and its one-line reason, never an exception. Served with `mlflow models serve`, paths are
read on the serving machine: serve it on localhost, for the files there.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from forensics.pipelines.detect import DetectPipeline

COLUMNS = ("path", "status", "label", "score", "threshold", "error", "warning", "frames_analyzed", "trained_on",
           "record")


class DetectorPyfunc:
    """What mlflow.pyfunc.PyFuncModel wraps: one loaded detector (or bundle) for every predict call."""

    def __init__(self, model_dir: str | Path):
        self.pipeline = DetectPipeline.from_path(model_dir)

    def predict(self, model_input, params=None) -> pd.DataFrame:
        rows = []
        for path in media_paths(model_input):
            record = self.pipeline.analyse(path).record.to_json()
            rows.append({**{k: record.get(k) for k in COLUMNS[:-2]}, "trained_on": record["model"]["trained_on"],
                         "record": json.dumps(record)})
        return pd.DataFrame(rows, columns=list(COLUMNS))


def media_paths(model_input) -> list[str]:
    """Paths from what MLflow passes: a DataFrame (its `path` column, else its first), a list, an array or one path."""
    if isinstance(model_input, pd.DataFrame):
        column = "path" if "path" in model_input.columns else model_input.columns[0]
        return [str(p) for p in model_input[column].tolist()]
    if isinstance(model_input, (str, Path)):
        return [str(model_input)]
    return [str(p) for p in np.asarray(model_input, dtype=object).ravel().tolist()]


def _load_pyfunc(data_path: str, model_config=None) -> DetectorPyfunc:
    return DetectorPyfunc(data_path)
