"""Where runs are logged, and what to do when that place goes away.

Training must never die because a tracking server did. Everything a Run sends is first written to a
journal (params, tags, metric points with their steps and timestamps, local copies of artifacts); when
the store stops answering, the Run re-creates itself in a local sqlite store and replays the journal,
so the local copy holds the whole run, not just its tail. This module holds the pieces that decide
"is this store gone?" and that put a journal back into a store; forensics.tracking.run uses them.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import requests
from mlflow.entities import Param, RunTag
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import OperationalError

from forensics.model_lookup import sqlite_store as sqlite_file  # noqa: F401  (one parser of sqlite URIs)

OFFLINE_DIR_ENV = "FORENSICS_MLFLOW_OFFLINE_DIR"
DEFAULT_OFFLINE_DIR = "mlruns-offline"
TAG_ORIGIN_URI = "forensics.offline.origin_uri"
TAG_ORIGIN_RUN = "forensics.offline.origin_run_id"
TAG_REASON = "forensics.offline.reason"
# A store found dead is not asked again for this long: new runs and registry look-ups in the same
# process go straight to the local store instead of paying the connection timeout again and again.
DEAD_FOR_S = 300.0

# MLflow's REST client retries 7 times with exponential backoff (minutes against a dead server); these
# make a dead server cost a few seconds. Set only where the user has not chosen.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
# MLflow log_batch limits per request.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
MAX_PARAM_CHARS, MAX_TAG_CHARS = 6000, 8000

_dead: dict[str, tuple[float, str]] = {}


# ---------------------------------------------------------------- where to log

def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else MLflow's own default (sqlite:///mlflow.db in the working dir)."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        return env
    return mlflow.get_tracking_uri()


def offline_dir() -> Path:
    return Path(os.environ.get(OFFLINE_DIR_ENV) or DEFAULT_OFFLINE_DIR).resolve()


def offline_uri() -> str:
    return f"sqlite:///{offline_dir() / 'mlflow.db'}"


def offline_artifact_location(experiment: str) -> str:
    """Artifacts of the local fallback store live beside its database, not in the working directory."""
    return str(offline_dir() / "artifacts" / experiment)


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def prepare_uri(uri: str) -> None:
    """Short HTTP retries for http(s) stores and a quiet MLflow; call before talking to `uri`."""
    if is_http(uri):
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
    quiet_mlflow()


def quiet_mlflow() -> None:
    """Keep MLflow's warnings, drop its INFO chatter (table creation, run URLs with emoji, progress bars)."""
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    pool_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _MlflowRetryFilter) for f in pool_logger.filters):
        pool_logger.addFilter(_MlflowRetryFilter())
    if "MLFLOW_LOGGING_LEVEL" not in os.environ:
        for name in ("mlflow", "alembic"):
            logger = logging.getLogger(name)
            if logger.level < logging.WARNING:
                logger.setLevel(logging.WARNING)


class _MlflowRetryFilter(logging.Filter):
    """Drop urllib3's per-attempt "Retrying ..." warnings for MLflow requests: the run reports the
    outcome once; other urllib3 users keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Retrying"):
            return True
        return not any("/mlflow" in str(arg) for arg in (record.args or ()))


# ---------------------------------------------------------------- is it gone?

def unreachable_reason(exc: BaseException) -> str | None:
    """A short reason when `exc` means the store cannot be reached, else None (a caller bug: re-raise).

    MLflow wraps transport failures in MlflowException and keeps the requests/urllib3/sqlalchemy error
    only as __context__, so the whole chain is searched. An HTTP answer that is not MLflow JSON (a proxy's
    502 page, a plain web server) also counts: whatever answered is not a tracking store.
    """

    seen = set()
    chain = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(e) for e in chain)
    for e in chain:
        if isinstance(e, (requests.exceptions.RequestException, OSError, OperationalError)):
            return _short_reason(e, text)
    message = str(exc)
    if message.startswith("API request to") and ("failed with" in message):
        return _short_reason(exc, text)
    return None


def _short_reason(exc: BaseException, text: str) -> str:
    for pattern, template in ((r"\[Errno -?\d+\] ([^'\")\]]+)", "{0}"),
                              (r"too many (\d{3}) error responses", "HTTP {0} responses"),
                              (r"failed with error code (\d{3})", "HTTP {0}, not an MLflow answer"),
                              (r"(timed out|timeout)", "timed out")):
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match:
            return template.format(*(g.strip() for g in match.groups()))
    first = " ".join(str(exc).split()) or type(exc).__name__
    return first if len(first) <= 120 else first[:117] + "..."


def mark_dead(uri: str, reason: str) -> None:
    _dead[uri] = (time.monotonic(), reason)


def dead_reason(uri: str) -> str | None:
    """Why `uri` was found unreachable in this process less than DEAD_FOR_S ago, else None."""
    entry = _dead.get(uri)
    if entry is None:
        return None
    if time.monotonic() - entry[0] > DEAD_FOR_S:
        _dead.pop(uri, None)
        return None
    return entry[1]


def warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- names and values MLflow accepts

_KEY_REPLACEMENTS = (("@", "_at_"), ("%", "pct"), ("=", "_"), ("+", "plus"))
_BAD_KEY_CHARS = re.compile(r"[^/\w.\- ]")


def clean_key(key: Any) -> str:
    """MLflow keys allow only alphanumerics, _ - . space /: "tpr@fpr=1%" becomes "tpr_at_fpr_1pct"."""
    text = str(key)
    for old, new in _KEY_REPLACEMENTS:
        text = text.replace(old, new)
    text = _BAD_KEY_CHARS.sub("_", text).strip("/")
    return re.sub(r"/+", "/", text) or "_"


def param_value(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."


def tag_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 3] + "..."


# ---------------------------------------------------------------- experiments

# Every experiment here trains and evaluates models: said in MLflow's own tag. MLflow 3 UIs without the GenAI /
# Model training switch pick the layout from it; 3.17's switch overrides it (see forensics.tracking.ui).
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def get_or_create_experiment(client, name: str, artifact_location: str | None = None) -> str:
    """Experiment id by name, creating it (tagged as a model-training experiment for the UI); survives
    another process creating it at the same moment."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        if (experiment.tags or {}).get(EXPERIMENT_KIND_TAG) is None:
            client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location,
                                        tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND})
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id


# ---------------------------------------------------------------- the journal

@dataclass
class Artifact:
    """A local copy (file or folder) and the artifact folder it goes to (None = the run's root)."""
    local: Path
    artifact_path: str | None
    is_dir: bool


@dataclass
class Journal:
    """Everything logged to a run so far, enough to rebuild it in another store."""
    start_time: int
    run_name: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list = field(default_factory=list)     # mlflow.entities.Metric, in logging order
    artifacts: list[Artifact] = field(default_factory=list)
    end: tuple[str, int] | None = None                # (status, end time ms) once the run has ended

    def replay(self, client, run_id: str, with_tags: bool = False) -> None:
        """Send params, metric history (same steps and timestamps), artifacts and the end to `run_id`."""
        params = [Param(k, v) for k, v in self.params.items()]
        tags = [RunTag(k, v) for k, v in self.tags.items()] if with_tags else []
        log_batch(client, run_id, metrics=self.metrics, params=params, tags=tags)
        for art in self.artifacts:
            if art.is_dir:
                client.log_artifacts(run_id, str(art.local), art.artifact_path)
            else:
                client.log_artifact(run_id, str(art.local), art.artifact_path)
        if self.end is not None:
            client.set_terminated(run_id, self.end[0], end_time=self.end[1])


def log_batch(client, run_id: str, metrics=(), params=(), tags=()) -> None:
    """log_batch in chunks MLflow accepts (1000 metrics, 100 params, 100 tags per request)."""
    metrics, params, tags = list(metrics), list(params), list(tags)
    while metrics or params or tags:
        client.log_batch(run_id, metrics=metrics[:MAX_METRICS], params=params[:MAX_PARAMS],
                         tags=tags[:MAX_TAGS])
        metrics, params, tags = metrics[MAX_METRICS:], params[MAX_PARAMS:], tags[MAX_TAGS:]


def copy_for_journal(src: Path, dst: Path) -> Path:
    """Snapshot a file or folder cheaply: hard links where possible (our writers replace files atomically,
    so a link keeps the old content), a copy across filesystems."""
    def link_or_copy(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
        return b

    if dst.exists():
        shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, copy_function=link_or_copy)
    else:
        link_or_copy(src, dst)
    return dst
