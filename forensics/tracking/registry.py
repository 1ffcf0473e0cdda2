"""The model registry: detector checkpoints by name and alias (`forensics-detector@champion`).

Why plain registered versions rather than an MLflow model flavour: a registered version here is
MlflowClient.create_model_version(name, source=<run artifact URI>/model, run_id), whose source is the
checkpoint folder exactly as detectors.save_detector wrote it (model.safetensors + config.json).
- mlflow.pytorch.log_model pickles the module; the product must load models without pickle.
- mlflow.pyfunc "models from code" avoids pickle but captures a Python environment (pip freeze) and
  a LoggedModel per version: seconds of work and a second format to keep in step. Instead the checkpoint
  folder carries a small MLmodel naming a loader module (detectors.mlmodel): the same folder is a pyfunc
  model, so `mlflow.pyfunc.load_model("models:/forensics-detector@champion")` and `mlflow models serve`
  work on it, with nothing pickled and no second copy.
- create_model_version works the same against the sqlite store (source is a local path) and a server
  (source is mlflow-artifacts:/...), and mlflow.artifacts.download_artifacts fetches either.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from forensics.io import atomic_write_json
from forensics.model_lookup import (CONFIG_DIR_ENV, MODEL_FILES, complete, local_source,  # noqa: F401  (re-exported)
                                    remembered_registry_file, remembered_store_note)
from forensics.runtime import MODEL_CACHE_ENV, model_cache_dir  # noqa: F401  (re-exported)
from forensics.tracking import offline as off


CHAMPION_ALIAS = "champion"
_NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")
_ALIAS = re.compile(r"^[\w\-]+$")
_warned: set[str] = set()


def create_model_version(client, name: str, source: str, run_id: str | None, alias: str | None = None,
                         tags: dict | None = None) -> str:
    """Register `source` as a new version of `name` (created if missing); point `alias` at it."""
    if alias is not None:
        check_alias(alias)
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") not in _NOT_FOUND:
            raise
        try:
            client.create_registered_model(name, description="Deepfake detector checkpoints "
                                                             "(safetensors + config.json, no pickle)")
        except MlflowException as again:  # another process registered it first
            if getattr(again, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
    version = client.create_model_version(name, source, run_id=run_id,
                                          tags={k: str(v) for k, v in (tags or {}).items()})
    if alias == CHAMPION_ALIAS:
        _remember_registry(client)
    if alias:
        client.set_registered_model_alias(name, alias, str(version.version))
    return str(version.version)


def resolve_model(name: str, alias: str) -> Path | None:
    """Local folder with model.safetensors + config.json for name@alias; None when nothing is registered.

    A local store's version is used in place; a remote one is downloaded once into the model cache
    (FORENSICS_MODEL_CACHE, default ~/.cache/forensics/models), keyed by version and run.
    """
    check_alias(alias)

    def lookup(client, uri):
        version = _version_by_alias(client, name, alias)
        return (version, uri) if version is not None else None

    found = _with_fallback(lookup, missing_local_store_means_none=True)
    if found is None:
        found = _lookup_in_remembered_registry(lookup)
    if found is None:
        return None
    version, uri = found
    return _local_model_dir(name, version, uri)


# ---------------------------------------------------------------- the registry this machine last used

def _remember_registry(client) -> None:
    """Note where a champion was just set, so `forensics detect` run from any folder finds it (MLflow's default
    store is ./mlflow.db of the working folder, which a media folder does not have). Best effort: a read-only
    home must not fail a registration."""
    uri = client.tracking_uri
    store = off.sqlite_file(uri)
    if store is not None:
        uri = f"sqlite:///{store.resolve()}"
    if uri == off.offline_uri():
        return                               # the fallback store is a stopgap, not a registry to come back to
    try:
        atomic_write_json(remembered_registry_file(), {"registry_uri": uri,
                                                       "set": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    except OSError:
        pass


def _lookup_in_remembered_registry(lookup):
    """Where no tracking store is named (MLFLOW_TRACKING_URI unset) and the working folder has none, the store
    where a champion was last set on this machine; says so on stderr, once."""
    if os.environ.get("MLFLOW_TRACKING_URI", "").strip():
        return None
    here = off.sqlite_file(off.tracking_uri())
    if here is None or here.is_file():
        return None
    try:
        uri = json.loads(remembered_registry_file().read_text(encoding="utf-8"))["registry_uri"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    store = off.sqlite_file(uri)
    if not isinstance(uri, str) or (store is not None and not store.is_file()):
        return None
    try:
        off.prepare_uri(uri)
        found = lookup(MlflowClient(tracking_uri=uri, registry_uri=uri), uri)
    except Exception:  # noqa: BLE001 - a remembered store that went away is the same as none
        return None
    if found is not None and uri not in _warned:
        _warned.add(uri)
        off.warn(remembered_store_note(uri))
    return found


def list_model_versions(name: str) -> list[dict]:
    """Every registered version of `name`, newest first: version, aliases, run_id, source, created (ISO UTC),
    tags. Empty when nothing is registered (and nothing is created: a read-only lookup)."""

    def versions(client, uri):
        try:
            found = client.search_model_versions(f"name = '{name}'")
            model = client.get_registered_model(name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") in _NOT_FOUND:
                return []
            raise
        aliases: dict[str, list[str]] = {}      # search results leave aliases out; the registered model has them
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        return [{"version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])),
                 "run_id": v.run_id, "source": v.source, "created": _iso(v.creation_timestamp),
                 "tags": dict(v.tags or {}), "run": _run_facts(client, v.run_id)} for v in found]

    found = _with_fallback(versions, missing_local_store_means_none=True) or []
    return sorted(found, key=lambda v: int(v["version"]), reverse=True)


def model_version_dir(name: str, version: str | int) -> Path | None:
    """Local folder (model.safetensors + config.json) of one registered version; None when it is not registered."""

    def lookup(client, uri):
        try:
            return client.get_model_version(name, str(version)), uri
        except MlflowException as exc:
            if getattr(exc, "error_code", "") in _NOT_FOUND:
                return None
            raise

    found = _with_fallback(lookup, missing_local_store_means_none=True)
    return None if found is None else _local_model_dir(name, *found)


def set_model_version_tags(name: str, version: str | int, tags: dict) -> None:
    """Tag a registered version (e.g. why it was promoted by hand)."""

    def tag(client, uri):
        for key, value in tags.items():
            client.set_model_version_tag(name, str(version), key, str(value))
        return True

    _with_fallback(tag, missing_local_store_means_none=True)


RUN_FACTS = ("panel/union", "promotion", "mlflow.source.git.commit", "git.dirty")


def _run_facts(client, run_id: str | None) -> dict:
    """What the version's run says that its checkpoint does not: the co-evolution panel's AUC on all fakes, the
    gate's decision, the git commit. Empty when the run is gone."""
    if not run_id:
        return {}
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return {}
    return {k: v for k, v in {**run.data.metrics, **run.data.tags}.items() if k in RUN_FACTS}


def _iso(millis) -> str | None:
    if not millis:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def set_model_alias(name: str, version: str | int, alias: str) -> None:
    """Point name@alias at `version` (e.g. promote a challenger to champion)."""
    check_alias(alias)

    def assign(client, uri):
        try:
            client.set_registered_model_alias(name, alias, str(version))
        except MlflowException as exc:
            if getattr(exc, "error_code", "") in _NOT_FOUND:
                raise ValueError(f"set_model_alias: {name} version {version} is not registered in {uri}") from None
            raise
        if alias == CHAMPION_ALIAS:
            _remember_registry(client)
        return True

    if _with_fallback(assign, missing_local_store_means_none=True) is None:
        raise ValueError(f"set_model_alias: {name} version {version}: no registry reachable "
                         f"({off.tracking_uri()} is down and {off.offline_uri()} does not exist)")


def _with_fallback(op, missing_local_store_means_none: bool):
    """op(client, uri) against the tracking URI's registry, or the local fallback store's if unreachable. A
    lookup (`missing_local_store_means_none`) in a sqlite store that does not exist finds nothing and creates
    nothing: `forensics detect` in a media folder must not leave an mlflow.db (or its folders) behind."""
    uri = off.tracking_uri()
    store = off.sqlite_file(uri)
    if missing_local_store_means_none and store is not None and not store.is_file():
        return None
    reason = off.dead_reason(uri)
    if reason is None:
        off.prepare_uri(uri)
        try:
            return op(MlflowClient(tracking_uri=uri), uri)
        except Exception as exc:
            reason = off.unreachable_reason(exc)
            if reason is None:
                raise
            off.mark_dead(uri, reason)
    target = off.offline_uri()
    if target == uri:
        raise RuntimeError(f"mlflow: model registry {uri} unreachable ({reason})")
    if uri not in _warned:
        _warned.add(uri)
        off.warn(f"mlflow: {uri} unreachable ({reason}); using the model registry of local store {target} instead")
    if missing_local_store_means_none and not (off.offline_dir() / "mlflow.db").exists():
        return None
    off.prepare_uri(target)
    return op(MlflowClient(tracking_uri=target, registry_uri=target), target)


def _version_by_alias(client, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in _NOT_FOUND:
            return None
        raise


def _local_model_dir(name: str, version, uri: str) -> Path:
    source = version.source
    local = local_source(source)
    if local is not None and complete(local):
        return local
    key = version.run_id or hashlib.sha256(source.encode()).hexdigest()
    dest = model_cache_dir() / off.clean_key(name).replace("/", "_") / f"v{version.version}-{key[:12]}"
    if complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        got = Path(download_artifacts(artifact_uri=source, dst_path=str(tmp), tracking_uri=uri))
        if not complete(got):
            raise ValueError(f"registry: {name} version {version.version}: {source} lacks "
                             f"{' or '.join(MODEL_FILES)}")
        if dest.exists():
            shutil.rmtree(dest)          # an incomplete earlier download
        try:
            os.replace(got, dest)
        except OSError:
            if not complete(dest):      # another process finished the same download first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise ValueError(f"model alias {alias!r}: use letters, digits, _ and - only (e.g. champion)")
