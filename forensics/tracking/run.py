"""One MLflow run that cannot crash the code it is logging for.

Runs talk to MLflow through MlflowClient with explicit run ids, never through mlflow's global
active-run stack, so nested runs (a co-evolution parent and its rounds) and runs in different threads
do not step on each other. Every call goes through one guarded path (Run._do): the first time the store
cannot be reached, the run prints one line to stderr, re-creates itself in a local sqlite store, replays
what it had logged (see forensics.tracking.offline) and from then on logs only there.
"""
from __future__ import annotations

import functools
import json
import posixpath
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from forensics.gitinfo import git_state
from forensics.io import sha256_file
from forensics.model_lookup import BUNDLE_FILE, MODEL_FILES, complete
from forensics.tracking import artifacts as art
from forensics.tracking import offline as off
from forensics.tracking.registry import check_alias, create_model_version




@dataclass
class _Store:
    """The store a run currently lives in, and its id there."""
    uri: str
    client: Any            # mlflow.MlflowClient
    run_id: str
    artifact_uri: str


STEP_IMAGE_KEY = re.compile(r"^[A-Za-z0-9_\-./ ]+$")


@functools.lru_cache(maxsize=1)
def source_tags() -> dict[str, str]:
    """Where a run came from, as MLflow's own tags show it in the UI: the command line, and the git commit of
    this checkout when it is one (plus git.dirty when it has uncommitted changes)."""
    entry = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    program = "forensics" if entry in ("forensics", "main.py", "__main__.py") else entry
    subcommand = next((a for a in sys.argv[1:] if not a.startswith("-")), "")
    # The UI shows the source name like a file name: keep paths out of it; the full command is its own tag.
    tags = {"mlflow.source.name": f"{program} {subcommand}".strip(), "mlflow.source.type": "LOCAL",
            "command": " ".join([program, *sys.argv[1:]])[:500]}
    checkout = git_state(Path(__file__).resolve().parents[2])
    if checkout["commit"]:
        tags["mlflow.source.git.commit"] = checkout["commit"]
        if checkout["dirty"]:
            tags["git.dirty"] = "true"
    return tags


def start_run(experiment: str, run_name: str | None = None, params: dict | None = None,
              tags: dict | None = None, parent: "Run | None" = None) -> "Run":
    """Start a run in `experiment` (created if missing); a child of `parent` when given.

    Usable as a context manager: the run ends FINISHED, or FAILED/KILLED when the block raises.
    """
    if not experiment or not isinstance(experiment, str):
        raise ValueError(f"start_run: experiment must be a non-empty name, got {experiment!r}")
    return Run(experiment, run_name=run_name, params=params, tags=tags, parent=parent)


class Run:
    """Logs params, metrics, figures, images, dicts, artifacts and models to one MLflow run."""

    def __init__(self, experiment: str, run_name: str | None = None, params: dict | None = None,
                 tags: dict | None = None, parent: "Run | None" = None, uri: str | None = None):
        self.experiment = experiment
        self.parent = parent
        self.origin_uri = uri or (parent.origin_uri if parent is not None else off.tracking_uri())
        self._lock = threading.RLock()
        self._scratch = Path(tempfile.mkdtemp(prefix="forensics-run-"))
        weakref.finalize(self, shutil.rmtree, str(self._scratch), True)   # even if end() is never called
        self._journal: off.Journal | None = off.Journal(start_time=_now_ms(), run_name=run_name)
        self._params: dict[str, str] = {}
        self._store: _Store | None = None
        self._offline = False
        self._disabled = False
        self._ended = False
        self._n_dirs = 0
        self._n_models = 0
        self._name: str | None = None              # run name once the journal is gone
        self._offline_reason: str | None = None
        self._record_tags({**source_tags(), **(tags or {})})
        self._record_params(params or {})
        self._open()

    # ------------------------------------------------------------ identity

    @property
    def run_id(self) -> str | None:
        """Id in the store the run lives in now (the local one after a fallback); None if not logged."""
        return self._store.run_id if self._store else None

    @property
    def offline(self) -> bool:
        """True once the run logs to the local fallback store instead of the tracking URI."""
        return self._offline

    @property
    def tracking_uri(self) -> str | None:
        return self._store.uri if self._store else None

    @property
    def name(self) -> str | None:
        return self._journal.run_name if self._journal else self._name

    def __repr__(self) -> str:
        where = "offline" if self._offline else ("disabled" if self._disabled else "online")
        return f"Run({self.experiment!r}, {self.name!r}, run_id={self.run_id!r}, {where})"

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        self.end(status)
        return False

    # ------------------------------------------------------------ logging

    def log_params(self, params: dict) -> None:
        with self._lock:
            new = self._record_params(params)
            if new:

                batch = [Param(k, v) for k, v in new.items()]
                self._do(lambda s: off.log_batch(s.client, s.run_id, params=batch), journaled=True)

    def set_tags(self, tags: dict) -> None:
        with self._lock:
            new = self._record_tags(tags)
            if new:

                batch = [RunTag(k, v) for k, v in new.items()]
                self._do(lambda s: off.log_batch(s.client, s.run_id, tags=batch), journaled=True)

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        """Metric points at `step` (0 when None, as MLflow does); keys cleaned to what MLflow accepts."""
        timestamp, step = _now_ms(), int(step or 0)
        points = [Metric(off.clean_key(k), _as_float(k, v), timestamp, step) for k, v in metrics.items()]
        if not points:
            return
        with self._lock:
            if self._journal is not None:
                self._journal.metrics.extend(points)
            self._do(lambda s: off.log_batch(s.client, s.run_id, metrics=points), journaled=True)

    def log_figure(self, fig, artifact_file: str) -> None:
        """A matplotlib figure as PNG at 100 dpi (unless the name's suffix says otherwise); caller closes it."""
        self._log_file(art.write_figure(fig, self._scratch_file(artifact_file)), artifact_file)

    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        """A uint8 RGB array (HxWx3; RGBA and grey too) as PNG."""
        self._log_file(art.write_image(image, self._scratch_file(artifact_file)), artifact_file)

    def log_image_step(self, image: np.ndarray, key: str, step: int) -> None:
        """An image the MLflow UI shows under `key` with a step slider (one image per step, e.g. per round),
        written in MLflow's own layout for time-stepped images (images/<key>+step+<n>+timestamp+<ms>+<id>.png
        and a small .webp beside it), as plain artifacts, so the offline fallback replays them like any other."""
        if not STEP_IMAGE_KEY.match(key or ""):
            raise ValueError(f"log_image_step: key {key!r} may only hold letters, digits, _ - . / and spaces")
        stem = f"images/{key.replace('/', '~')}+step+{int(step)}+timestamp+{_now_ms()}+{uuid.uuid4()}"
        self._log_file(art.write_image(image, self._scratch_file(f"{stem}.png")), f"{stem}.png")
        self._log_file(art.write_image(art.thumbnail(image), self._scratch_file(f"{stem}+compressed.webp")),
                       f"{stem}+compressed.webp")
        self.set_tags({"mlflow.loggedImages": "true"})

    def log_dict(self, obj: Any, artifact_file: str) -> None:
        """JSON (YAML when the name ends in .yaml/.yml); numpy values are converted."""
        self._log_file(art.write_dict(obj, self._scratch_file(artifact_file)), artifact_file)

    def log_artifact(self, local_file: str | Path, artifact_path: str | None = None) -> None:
        src = Path(local_file)
        if not src.is_file():
            raise ValueError(f"log_artifact: {src}: no such file")
        target = posixpath.join(artifact_path, src.name) if artifact_path else src.name
        local = off.copy_for_journal(src, self._scratch_file(target))
        self._log_file(local, target)

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> None:
        """Upload a folder's files under `artifact_path`; snapshotted first so a fallback can replay it."""
        src = Path(local_dir)
        if not src.is_dir():
            raise ValueError(f"log_artifacts: {src}: not a folder")
        if artifact_path is not None:
            art.check_artifact_name(artifact_path)
        with self._lock:
            local = src
            if self._journal is not None:
                self._n_dirs += 1
                local = off.copy_for_journal(src, self._scratch / "dirs" / f"{self._n_dirs:04d}")
                self._journal.artifacts.append(off.Artifact(local, artifact_path, is_dir=True))
            self._do(lambda s: s.client.log_artifacts(s.run_id, str(local), artifact_path), journaled=True)

    def register_model(self, local_dir: str | Path, name: str, alias: str | None = None, sha256: str | None = None,
                       tags: dict | None = None) -> str | None:
        """Log a detector checkpoint folder (or a bundle of detectors) under "model/" and register it; returns
        the version (None when the run is not being logged at all). `sha256` names what a bundle's records call
        its hash (a checkpoint's is its weights'); `tags` go on the version beside the headline metrics.

        The registry entry points at the plain checkpoint (safetensors + config.json), not at an MLflow
        flavour: mlflow.pytorch would pickle the model, and the product loads models without pickle.
        """
        if alias is not None:
            check_alias(alias)
        folder = Path(local_dir)
        if not complete(folder):
            missing = [f for f in MODEL_FILES if not (folder / f).is_file()]
            raise ValueError(f"register_model: {folder}: missing {', '.join(missing)} "
                             f"(expected a folder written by detectors.save_detector, or a bundle's {BUNDLE_FILE})")
        if sha256 is None and not (folder / "model.safetensors").is_file():
            raise ValueError(f"register_model: {folder}: a bundle is registered with its sha256")
        digest = sha256 or sha256_file(folder / "model.safetensors")
        self._n_models += 1        # each version keeps its own files: model/, then model-2/, ...
        artifact_path = "model" if self._n_models == 1 else f"model-{self._n_models}"
        self.log_artifacts(folder, artifact_path)
        tags = {"sha256": digest, "experiment": self.experiment, **headline_metrics(folder / "config.json"),
                **(tags or {})}
        return self._do(lambda s: create_model_version(
            s.client, name, f"{s.artifact_uri.rstrip('/')}/{artifact_path}", s.run_id, alias=alias, tags=tags),
            journaled=False)

    def end(self, status: str = "FINISHED") -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            if self._journal is not None:
                self._journal.end = (status, _now_ms())
            try:
                self._do(lambda s: s.client.set_terminated(s.run_id, status), journaled=False)
            finally:
                shutil.rmtree(self._scratch, ignore_errors=True)
                if self._journal is not None:   # the store has them; a later fallback (a live child
                    self._journal.artifacts = []    # moving its parent) replays the rest

    # ------------------------------------------------------------ the guarded path

    def _do(self, op: Callable[[_Store], Any], journaled: bool):
        """Run `op` against the current store; on an unreachable store switch to the local one.

        A journaled op is not repeated after the switch: the replay already carried what it logged.
        """
        with self._lock:
            if self._disabled or self._store is None:
                return None
            known_dead = None if self._offline else off.dead_reason(self.origin_uri)
            if known_dead is not None:      # another run here just found it gone: follow without asking
                self._go_offline(known_dead, warn=self.parent is None)
                return None if journaled else self._do(op, journaled)
            try:
                return op(self._store)
            except Exception as exc:
                reason = off.unreachable_reason(exc)
                if reason is None:
                    raise
                if self._offline:
                    self._disable(f"local store {self._store.uri} failed too ({reason})")
                    return None
                self._go_offline(reason)
                if journaled or self._disabled:
                    return None
                return self._do(op, journaled)

    def _open(self) -> None:
        if self.parent is not None and (self.parent._offline or self.parent._disabled):
            if self.parent._disabled:
                self._disable(None)
            else:
                self._go_offline(self.parent._offline_reason, warn=False)
            return
        reason = off.dead_reason(self.origin_uri)
        if reason is not None:           # found gone moments ago: do not pay the timeout again
            self._go_offline(reason, warn=self.parent is None)
            return
        off.prepare_uri(self.origin_uri)
        try:
            self._store = self._materialise(self.origin_uri, {}, local=False)
        except Exception as exc:
            reason = off.unreachable_reason(exc)
            if reason is None:
                raise
            self._go_offline(reason)

    def _materialise(self, uri: str, extra_tags: dict, local: bool) -> _Store:
        """Create the experiment and run in `uri` and replay the journal into it.

        The local fallback store keeps its registry and artifacts to itself; the tracking URI uses
        MLflow's own registry URI and default artifact location.
        """
        journal = self._journal
        client = MlflowClient(tracking_uri=uri, registry_uri=uri if local else None)
        experiment_id = off.get_or_create_experiment(
            client, self.experiment, off.offline_artifact_location(self.experiment) if local else None)
        tags = {**journal.tags, **extra_tags}
        if self.parent is not None and self.parent.run_id:
            tags["mlflow.parentRunId"] = self.parent.run_id
        run = client.create_run(experiment_id, start_time=journal.start_time, tags=tags,
                                run_name=journal.run_name)
        journal.run_name = run.info.run_name
        journal.replay(client, run.info.run_id)
        return _Store(uri, client, run.info.run_id, run.info.artifact_uri)

    def _go_offline(self, reason: str | None, warn: bool = True) -> None:
        """Move this run (and its parent, so nesting holds) to the local store, replaying the journal."""
        with self._lock:
            if self._offline or self._disabled:
                return
            note = ""
            if self.parent is not None and not (self.parent._offline or self.parent._disabled):
                self.parent._go_offline(reason, warn=False)
                note = f" (with its parent run '{self.parent.name}')"
            target = off.offline_uri()
            if reason is not None:
                off.mark_dead(self.origin_uri, reason)
            if target == self.origin_uri:
                self._disable(f"{self.origin_uri} unreachable ({reason}) and it is the local fallback store")
                return
            extra = {off.TAG_ORIGIN_URI: self.origin_uri, off.TAG_REASON: reason or "unreachable"}
            if self._store is not None:
                extra[off.TAG_ORIGIN_RUN] = self._store.run_id
            off.prepare_uri(target)
            try:
                store = self._materialise(target, extra, local=True)
            except Exception as exc:  # never crash the caller: stop logging instead
                self._disable(f"{self.origin_uri} unreachable ({reason}) and local store {target} failed "
                              f"({off.unreachable_reason(exc) or ' '.join(str(exc).split())[:160]})")
                return
            self._store, self._offline, self._offline_reason = store, True, reason
            self._name, self._journal = self._journal.run_name, None   # nothing left to fall back from
            shutil.rmtree(self._scratch / "dirs", ignore_errors=True)
            if warn:
                off.warn(f"mlflow: {self.origin_uri} unreachable ({reason}); logging run '{self._name}'{note} "
                         f"to local store {target} instead")

    def _disable(self, why: str | None) -> None:
        if self._journal is not None:
            self._name = self._journal.run_name
        self._disabled, self._journal = True, None
        if why:
            off.warn(f"mlflow: {why}; run '{self._name}' is not logged from here on")

    # ------------------------------------------------------------ helpers

    def _record_params(self, params: dict) -> dict[str, str]:
        """Params not logged before; one that changes value is an error (MLflow params are write-once)."""
        new = {}
        for key, value in params.items():
            k, v = off.clean_key(key), off.param_value(value)
            old = self._params.get(k)
            if old is not None and old != v:
                raise ValueError(f"log_params: param {k!r} was already logged as {old!r}; MLflow params "
                                 f"cannot change (got {v!r}); log it as a metric or tag instead")
            if old is None:
                new[k] = v
        self._params.update(new)
        if self._journal is not None:
            self._journal.params.update(new)
        return new

    def _record_tags(self, tags: dict) -> dict[str, str]:
        new = {off.clean_key(k) if not str(k).startswith("mlflow.") else str(k): off.tag_value(v)
               for k, v in tags.items()}
        if self._journal is not None:
            self._journal.tags.update(new)
        return new

    def _scratch_file(self, artifact_file: str) -> Path:
        art.check_artifact_name(artifact_file)
        local = self._scratch / "files" / artifact_file
        local.parent.mkdir(parents=True, exist_ok=True)
        return local

    def _log_file(self, local: Path, artifact_file: str) -> None:
        folder = posixpath.dirname(artifact_file) or None
        with self._lock:
            if self._journal is not None:
                self._journal.artifacts.append(off.Artifact(local, folder, is_dir=False))
            self._do(lambda s: s.client.log_artifact(s.run_id, str(local), folder), journaled=True)


HEADLINE = ("video_auc", "frame_auc", "video_eer", "video_ap")


def headline_metrics(config_json: Path) -> dict[str, str]:
    """The checkpoint's own validation/test AUC, EER and AP (its config.json `metrics`), as model-version tags:
    the registry page then shows how good each version is without opening its run."""
    try:
        metrics = json.loads(config_json.read_text(encoding="utf-8")).get("metrics") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {f"metric.{key.replace('/', '.')}": f"{float(value):.4f}" for key, value in sorted(metrics.items())
            if key.split("/")[-1] in HEADLINE and isinstance(value, (int, float)) and np.isfinite(value)}


def _as_float(key, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"log_metrics: metric {key!r} is not a number: {value!r}") from None


def _now_ms() -> int:
    return int(time.time() * 1000)
