"""MLflow for co-evolution: a parent run that a resumed experiment re-enters, and prefixed views of a round's run.

Everything goes through forensics.tracking.Run, so its journal and its fallback to the local store when
the tracking server goes away apply to every metric a round logs. The one addition is re-entering a run:
a resumed experiment should keep growing the parent run it started (and the round run it was in) instead
of scattering its rounds over several parents. ResumableRun attaches to that run id when the store still
has it, and otherwise starts a new run like any other (the caller says so).
"""
from __future__ import annotations

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forensics.tracking.run import Run, _Store

NOT_FOUND = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


class ResumableRun(Run):
    """A Run that continues run `resume_id` of `experiment` when the tracking store still holds it."""

    def __init__(self, experiment: str, resume_id: str | None = None, **kwargs):
        self._resume_id = resume_id
        self.resumed = False
        super().__init__(experiment, **kwargs)

    def _materialise(self, uri: str, extra_tags: dict, local: bool) -> _Store:
        found = None if local or not self._resume_id else self._find(uri)
        if found is None:
            return super()._materialise(uri, extra_tags, local)
        client, run = found
        client.update_run(run.info.run_id, status="RUNNING")
        self._journal.run_name = run.info.run_name
        self._journal.replay(client, run.info.run_id)     # params and tags as given now (same config)
        self.resumed = True
        return _Store(uri, client, run.info.run_id, run.info.artifact_uri)

    def _find(self, uri: str):
        client = MlflowClient(tracking_uri=uri)
        try:
            run = client.get_run(self._resume_id)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") in NOT_FOUND:
                return None
            raise
        experiment = client.get_experiment(run.info.experiment_id)
        parent_ok = self.parent is None or run.data.tags.get("mlflow.parentRunId") == self.parent.run_id
        if run.info.lifecycle_stage != "active" or experiment.name != self.experiment or not parent_ok:
            return None
        return client, run


def open_run(experiment: str, run_name: str, resume_id: str | None = None, params: dict | None = None,
             tags: dict | None = None, parent=None) -> ResumableRun:
    return ResumableRun(experiment, resume_id=resume_id, run_name=run_name, params=params, tags=tags, parent=parent)


class Prefixed:
    """A view of a run whose metric keys and artifact names start with `prefix/`: a round's run holds the
    detector's and every generator's training curves side by side."""

    def __init__(self, run, prefix: str):
        self.run, self.prefix = run, prefix.strip("/")

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self.run.log_metrics({f"{self.prefix}/{k}": v for k, v in metrics.items()}, step=step)

    def log_image(self, image, artifact_file: str) -> None:
        self.run.log_image(image, f"{self.prefix}/{artifact_file}")

    def log_figure(self, fig, artifact_file: str) -> None:
        self.run.log_figure(fig, f"{self.prefix}/{artifact_file}")

    def log_dict(self, obj, artifact_file: str) -> None:
        self.run.log_dict(obj, f"{self.prefix}/{artifact_file}")

    def prefixed(self, prefix: str) -> "Prefixed":
        return Prefixed(self.run, f"{self.prefix}/{prefix}")
