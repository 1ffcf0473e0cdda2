"""The MLflow UI on the project's tracking store: the `mlflow server` command line and where to browse.

`mlflow server` rather than `mlflow ui`: same program, but its options are the documented ones. Artifacts keep
the locations the runs recorded (local paths for the default store), which the server reads directly.
"""
from __future__ import annotations

import socket
import sys

from forensics.tracking.offline import offline_uri, tracking_uri


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


def browse_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def port_free(host: str, port: int) -> bool:
    """Whether `port` on `host` can be listened on (checked before starting, so a clash is one line)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
