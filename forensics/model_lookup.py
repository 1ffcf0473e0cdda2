"""Find name@alias in a local sqlite model registry without importing MLflow.

Why: `forensics detect` with no --model scans with the registered champion, and importing MLflow to ask for it
costs 1-2 s, as long as the rest of a cold start on a CPU. MLflow's sqlite store is a plain database; reading
its alias and version tables read-only answers the same question in milliseconds, always fresh (a promotion
is seen by the next scan), and creates nothing. Anything this cannot answer for certain (a server URI, a
version whose files are not on this disk, a schema it does not know) returns UNKNOWN, and the caller asks
MLflow (forensics.tracking.resolve_model), which stays the authority. tests/test_onnx_runtime.py checks
that both agree.

Which store, as forensics.tracking decides it: MLFLOW_TRACKING_URI if set; else ./mlflow.db (MLflow's
default) if it exists; else the store where a champion was last set on this machine (registry.json in the
config folder).
"""
from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

CONFIG_DIR_ENV = "FORENSICS_CONFIG_DIR"          # default ~/.config/forensics (XDG_CONFIG_HOME)
MODEL_FILES = ("model.safetensors", "config.json")   # a detector checkpoint (detectors.checkpoint)
BUNDLE_FILE = "bundle.json"                          # a bundle of detectors judged together (detectors.bundle)
UNKNOWN = object()                               # "ask MLflow"


def remembered_registry_file() -> Path:
    base = os.environ.get(CONFIG_DIR_ENV) or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "forensics"
    return Path(base) / "registry.json"


def sqlite_store(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (relative to the working folder for sqlite:///name.db), None for
    other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def local_source(source: str) -> Path | None:
    """A registered version's source as a folder on this disk (a path or file:// URI), None otherwise."""
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" and os.path.isabs(source):
        return Path(source)
    return None


def complete(folder: Path) -> bool:
    """`folder` holds a registered model: a detector checkpoint or a bundle."""
    return all((folder / f).is_file() for f in MODEL_FILES) or (folder / BUNDLE_FILE).is_file()


def find_registered(name: str, alias: str):
    """The local folder of name@alias; None when the store says nothing is registered under it (or there is no
    store); UNKNOWN when only MLflow can tell."""
    env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if env:
        store = sqlite_store(env)
        if store is None:
            return UNKNOWN
        if not store.is_file():
            return None
        return _lookup(store, name, alias)
    here = Path("mlflow.db")
    if here.is_file():
        return _lookup(here, name, alias)
    try:
        uri = json.loads(remembered_registry_file().read_text(encoding="utf-8"))["registry_uri"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    store = sqlite_store(uri) if isinstance(uri, str) else None
    if store is None:
        return UNKNOWN if isinstance(uri, str) else None
    if not store.is_file():
        return None
    found = _lookup(store, name, alias)
    if isinstance(found, Path):
        print(remembered_store_note(uri), file=sys.stderr, flush=True)
    return found


def remembered_store_note(uri: str) -> str:
    """What a scan says when it uses the store remembered from the last promotion rather than this folder's."""
    return (f"mlflow: no tracking store in this folder; using {uri}, where the champion was last set on this "
            "machine (set MLFLOW_TRACKING_URI to choose another)")


def _lookup(store: Path, name: str, alias: str):
    try:
        db = sqlite3.connect(f"file:{store.resolve()}?mode=ro", uri=True, timeout=5)
        try:
            versions = db.execute("SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
                                  (name, alias)).fetchall()
            if not versions:
                return None
            if len(versions) > 1:                 # several workspaces: MLflow knows which one is meant
                return UNKNOWN
            rows = db.execute("SELECT source, status FROM model_versions WHERE name = ? AND version = ?",
                              (name, versions[0][0])).fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return UNKNOWN
    if len(rows) != 1 or rows[0][1] not in (None, "READY"):
        return UNKNOWN
    folder = local_source(rows[0][0] or "")
    return folder if folder is not None and complete(folder) else UNKNOWN
