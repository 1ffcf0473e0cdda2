"""MLflow tracking for forensics: runs that survive a tracking server going away, and the model registry.

    from forensics.tracking import start_run
    with start_run("detectors", run_name="mnv3-sbi", params={"lr": 3e-4}) as run:
        run.log_metrics({"train/loss": 0.41}, step=10)
        run.register_model("runs/mnv3/model")        # forensics-detector, alias challenger

Tracking URI: MLFLOW_TRACKING_URI if set, else MLflow's default (sqlite:///mlflow.db in the working
directory). Experiments: coevolve, detectors, generators, benchmarks, evaluate (created on first use). When the
store cannot be reached the run warns once on stderr and continues in the local store
./mlruns-offline/mlflow.db (FORENSICS_MLFLOW_OFFLINE_DIR), with everything logged before replayed there;
`forensics ui --offline` shows it.
"""
from forensics.tracking.offline import offline_uri, tracking_uri
from forensics.tracking.registry import (list_model_versions, model_cache_dir, model_version_dir, resolve_model,
                                        set_model_alias, set_model_version_tags)
from forensics.tracking.run import Run, start_run

EXPERIMENTS = ("coevolve", "detectors", "generators", "benchmarks", "evaluate")

__all__ = ["EXPERIMENTS", "Run", "list_model_versions", "model_cache_dir", "model_version_dir", "offline_uri",
           "resolve_model", "set_model_alias", "set_model_version_tags", "start_run", "tracking_uri"]
