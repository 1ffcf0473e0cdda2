"""The MLflow UI on the project's tracking store: the `mlflow server` command line and where to browse.

`mlflow server` rather than `mlflow ui`: same program, but its options are the documented ones. Artifacts keep
the locations the runs recorded (local paths for the default store), which the server reads directly.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from mlflow import MlflowClient

from forensics.tracking.offline import offline_uri, sqlite_file, tracking_uri


def store_uri(offline: bool = False) -> str:
    """The store training logs to, or (offline) the local one runs fell back to while a server was down."""
    return offline_uri() if offline else tracking_uri()


def build_command(uri: str, host: str = "127.0.0.1", port: int = 5000, workers: int = 1) -> list[str]:
    """The `mlflow server` command line for a database store (sqlite, postgresql, mysql, ...)."""
    if uri.startswith(("http://", "https://")):
        raise ValueError(f"{uri} is already a tracking server: open it in a browser")
    if uri.startswith("file:") or "://" not in uri:
        raise ValueError(f"{uri}: MLflow 3.13+ no longer serves file stores; use a sqlite:/// URI")
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
            "--host", host, "--port", str(port), "--workers", str(workers)]


# MLflow 3.17's UI opens in its GenAI layout (traces, judges, an assistant) in a browser that has not chosen
# otherwise: its layout switch defaults to GenAI and is remembered per browser, and it wins over the experiments'
# mlflow.experimentKind tag. These runs train and evaluate models, which its "Model training" layout shows (runs,
# charts, the model registry): links carry workflowType=machine_learning, which the UI keeps while one navigates
# inside an experiment (the experiments list's own links drop it).
MODEL_TRAINING = "workflowType=machine_learning"
MODEL_TRAINING_VIEW = f"/#/experiments?{MODEL_TRAINING}"


def browse_url(host: str, port: int) -> str:
    return f"{_base(host, port)}{MODEL_TRAINING_VIEW}"


def experiment_links(uri: str, host: str, port: int) -> list[tuple[str, str]]:
    """(name, link) of each experiment of a local store, opening in the Model training layout. Reads only a
    sqlite file that exists (creates nothing); [] otherwise."""
    store = sqlite_file(uri)
    if store is None or not store.is_file():
        return []
    try:
        experiments = MlflowClient(tracking_uri=uri).search_experiments()
    except Exception:  # noqa: BLE001 - links are a convenience; the server reports a broken store itself
        return []
    return [(e.name, f"{_base(host, port)}/#/experiments/{e.experiment_id}/runs?{MODEL_TRAINING}")
            for e in sorted(experiments, key=lambda e: e.name) if e.name != "Default"]


def _base(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def port_free(host: str, port: int) -> bool:
    """Whether `port` on `host` can be listened on (checked before starting, so a clash is one line). As the
    servers themselves bind (SO_REUSEADDR), connections of a stopped server still in TIME_WAIT do not count:
    only a live listener does, so a server can be restarted on its port at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(command: list[str], grace_s: float = 10.0) -> int:
    """Run the server until it exits, or until this process is told to stop (Ctrl-C, SIGTERM, SIGHUP): then
    the server's whole process group (uvicorn and its workers) is stopped too, never left running behind.
    Returns the server's exit status, or 0 when it was stopped on request."""
    server = subprocess.Popen(command, start_new_session=True)
    stopping = []

    def stop(signum, _frame) -> None:
        stopping.append(signum)
        _stop_group(server, grace_s)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    status = None
    try:
        status = server.wait()
    except KeyboardInterrupt:
        stopping.append(signal.SIGINT)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server.poll() is None:
            _stop_group(server, grace_s)
    return 0 if stopping else status


def _stop_group(server: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the server's process group; SIGKILL what is left after `grace_s` seconds."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(server.pid, signal.SIGKILL)       # workers that outlived their parent
    except ProcessLookupError:
        pass
