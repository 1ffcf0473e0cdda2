"""Push the runs kept in the local fallback store back to the tracking server once it answers again.

While a server is down, runs go on in ./mlruns-offline (forensics.tracking.offline). `sync_offline` copies each
of them to the server: into the run it started as there when the server died mid-run (its `origin_run_id` tag),
else into a new run of the experiment with the same name. Everything is copied: params, tags, every metric
point with its step and timestamp, artifacts, status and times; children keep their parent; model versions
registered offline are registered again from the copied run (aliases are not: promotion stays a decision).

Running it twice duplicates nothing. Each copied run is marked in the offline store (`synced_to`), the server's
copy names its source (`synced_from`, looked up first, so a sync interrupted between copying and marking is
finished rather than repeated), and only the metric points, params and versions the server lacks are sent.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from forensics.tracking import offline as off

TAG_SYNCED_TO = "forensics.offline.synced_to"        # on the offline run: "<server uri>#<run id>"
TAG_SYNCED_FROM = "forensics.offline.synced_from"    # on the server's run: the offline run id
PARENT = "mlflow.parentRunId"
BATCH = 1000                                         # MLflow's log_batch limit on metrics per request


class SyncError(RuntimeError):
    """The server cannot be reached or the offline store cannot be read; one line."""


@dataclass
class Synced:
    offline_id: str
    server_id: str
    experiment: str
    name: str
    metrics: int                 # metric points sent (0 when the server had them all)
    into_origin: bool            # filled the run the server already had, rather than a new one


@dataclass
class SyncResult:
    copied: list[Synced] = field(default_factory=list)
    already: int = 0             # runs marked as synced by an earlier sync
    versions: list[str] = field(default_factory=list)       # "name/version" registered on the server
    aliases_left: list[str] = field(default_factory=list)   # "name@alias -> version" set offline only


def sync_offline(target_uri: str, source_uri: str | None = None) -> SyncResult:
    """Copy every run of the offline store at `source_uri` (default: this folder's ./mlruns-offline) that is not
    yet on `target_uri`."""
    source_uri = source_uri or off.offline_uri()
    db = off.sqlite_file(source_uri)
    if db is not None and not db.is_file():
        raise SyncError(f"no offline store at {db}: nothing was logged offline here")
    if target_uri == source_uri:
        raise SyncError("the server and the offline store are the same; set MLFLOW_TRACKING_URI or --to")
    src, dst = MlflowClient(source_uri, source_uri), MlflowClient(target_uri, target_uri)
    try:
        dst.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server is the same answer
        reason = off.unreachable_reason(exc) or " ".join(str(exc).split())[:200]
        raise SyncError(f"cannot reach {target_uri} ({reason}); start the server and run again") from None

    result, mapping = SyncResult(), {}
    for run in _parents_first(src):
        marked = run.data.tags.get(TAG_SYNCED_TO, "")
        if marked.startswith(f"{target_uri}#"):
            mapping[run.info.run_id] = marked.rsplit("#", 1)[1]
            result.already += 1
            continue
        result.copied.append(_copy_run(src, dst, run, target_uri, mapping))
        mapping[run.info.run_id] = result.copied[-1].server_id
    _copy_versions(src, dst, mapping, result)
    return result


def _parents_first(src: MlflowClient) -> list:
    experiments = src.search_experiments(view_type=ViewType.ALL)
    runs = [r for e in experiments for r in _all_runs(src, e.experiment_id)]
    runs.sort(key=lambda r: r.info.start_time or 0)
    ordered, placed = [], set()
    while runs:                                   # a child after its parent, however deep
        ready = [r for r in runs if r.data.tags.get(PARENT) not in {r2.info.run_id for r2 in runs}]
        ordered += ready
        placed |= {r.info.run_id for r in ready}
        runs = [r for r in runs if r.info.run_id not in placed]
    return ordered


def _all_runs(client: MlflowClient, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _copy_run(src: MlflowClient, dst: MlflowClient, run, target_uri: str, mapping: dict) -> Synced:
    offline_id = run.info.run_id
    experiment = src.get_experiment(run.info.experiment_id).name
    experiment_id = off.get_or_create_experiment(dst, experiment)
    server_id, into_origin = _target_run(dst, run, experiment_id, target_uri)

    have = dst.get_run(server_id).data
    params = [Param(k, v) for k, v in run.data.params.items() if k not in have.params]
    tags = [RunTag(k, v) for k, v in run.data.tags.items()
            if k not in (PARENT, TAG_SYNCED_TO) and have.tags.get(k) != v]
    if run.data.tags.get(PARENT) in mapping:
        tags.append(RunTag(PARENT, mapping[run.data.tags[PARENT]]))
    tags.append(RunTag(TAG_SYNCED_FROM, offline_id))
    for i in range(0, max(len(params), len(tags)), 100):
        dst.log_batch(server_id, params=params[i:i + 100], tags=tags[i:i + 100])

    sent = 0
    for key in run.data.metrics:
        there = {(m.step, m.timestamp, m.value) for m in dst.get_metric_history(server_id, key)}
        missing = [Metric(key, m.value, m.timestamp, m.step) for m in src.get_metric_history(offline_id, key)
                   if (m.step, m.timestamp, m.value) not in there]
        for i in range(0, len(missing), BATCH):
            dst.log_batch(server_id, metrics=missing[i:i + BATCH])
        sent += len(missing)

    if src.list_artifacts(offline_id):
        with tempfile.TemporaryDirectory(prefix="forensics-sync-") as tmp:
            local = src.download_artifacts(offline_id, "", tmp)
            dst.log_artifacts(server_id, local)
    if run.info.status != "RUNNING":
        dst.set_terminated(server_id, status=run.info.status, end_time=run.info.end_time)
    src.set_tag(offline_id, TAG_SYNCED_TO, f"{target_uri}#{server_id}")
    return Synced(offline_id, server_id, experiment, run.info.run_name or "", sent, into_origin)


def _target_run(dst: MlflowClient, run, experiment_id: str, target_uri: str) -> tuple[str, bool]:
    """The server's run to fill: one an interrupted sync made, the run this one started as on that server, or
    a new one."""
    offline_id = run.info.run_id
    found = dst.search_runs([experiment_id], filter_string=f"tags.`{TAG_SYNCED_FROM}` = '{offline_id}'",
                            run_view_type=ViewType.ALL, max_results=1)
    if found:
        return found[0].info.run_id, False
    origin = run.data.tags.get(off.TAG_ORIGIN_RUN)
    if origin and run.data.tags.get(off.TAG_ORIGIN_URI, target_uri) == target_uri:
        try:
            if dst.get_run(origin).info.lifecycle_stage == "active":
                return origin, True
        except MlflowException:
            pass                                   # the server lost it too: a new run holds the copy
    created = dst.create_run(experiment_id, start_time=run.info.start_time, run_name=run.info.run_name)
    return created.info.run_id, False


def _copy_versions(src: MlflowClient, dst: MlflowClient, mapping: dict, result: SyncResult) -> None:
    """Model versions whose run was copied, registered again on the server from the copy (once)."""
    for model in src.search_registered_models():
        for version in src.search_model_versions(f"name = '{model.name}'"):
            server_run = mapping.get(version.run_id or "")
            if server_run is None:
                continue
            relative = _artifact_path(src, version)
            if relative is None:
                continue
            existing = dst.search_model_versions(f"name = '{model.name}' and run_id = '{server_run}'")
            if any(v.tags.get(TAG_SYNCED_FROM) == f"{version.run_id}/{version.version}" for v in existing):
                continue
            try:
                dst.create_registered_model(model.name)
            except MlflowException as exc:
                if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                    raise
            base = dst.get_run(server_run).info.artifact_uri.rstrip("/")
            made = dst.create_model_version(model.name, f"{base}/{relative}", run_id=server_run,
                                            tags={**version.tags, TAG_SYNCED_FROM: f"{version.run_id}/{version.version}"})
            result.versions.append(f"{model.name}/{made.version}")
            for alias in src.get_model_version(model.name, version.version).aliases:   # search leaves them out
                result.aliases_left.append(f"{model.name}@{alias} -> version {made.version}")


def _artifact_path(src: MlflowClient, version) -> str | None:
    """The version's folder inside its run's artifacts (None when it was registered from elsewhere)."""
    base = src.get_run(version.run_id).info.artifact_uri.rstrip("/")
    source = (version.source or "").rstrip("/")
    if source.startswith(base + "/"):
        return source[len(base) + 1:]
    return None


def default_target() -> str | None:
    """The server to sync to: MLFLOW_TRACKING_URI when it names one (not a local file)."""
    uri = off.tracking_uri()
    return uri if off.is_http(uri) or uri.startswith(("postgresql", "mysql", "mssql")) else None


def describe(result: SyncResult, target: str) -> list[str]:
    lines = [f"{s.experiment}/{s.name or s.offline_id}: {'filled in' if s.into_origin else 'copied to'} "
             f"run {s.server_id} ({s.metrics} metric points)" for s in result.copied]
    lines += [f"model version {v} registered from the copied run" for v in result.versions]
    lines += [f"alias {a} was set offline and is not copied: forensics models promote sets it on the server"
              for a in result.aliases_left]
    lines.append(f"{len(result.copied)} run(s) synced to {target}; {result.already} already there")
    return lines

