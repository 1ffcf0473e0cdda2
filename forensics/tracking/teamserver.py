"""A team tracking server: MLflow's recommended deployment, `mlflow server` on PostgreSQL with an artifacts
destination, run from one folder that holds everything (the database cluster, the artifacts, the logs).

    forensics server start --dir /srv/forensics-tracking      # prints the URL to export as MLFLOW_TRACKING_URI
    forensics server status --dir /srv/forensics-tracking
    forensics server stop --dir /srv/forensics-tracking

The database is Debian's PostgreSQL (the `postgresql` package's binaries), a cluster initialised in DIR/pgdata
on first start and listening on 127.0.0.1 only; artifacts go to DIR/artifacts and are served through the
tracking server (clients need no shared disk). PostgreSQL refuses to run as root, so as root the cluster runs as
the `postgres` user, who must be able to reach DIR. Local connections are trusted: put the server behind your own
network rules (or a proxy with authentication) before other machines use it.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from forensics.io import atomic_write_json

STATE_FILE = "server.json"
DB_USER = DB_NAME = "mlflow"


class ServerError(RuntimeError):
    """Why the team server cannot start or stop (one line)."""


@dataclass
class ServerSpec:
    folder: Path
    host: str = "127.0.0.1"
    port: int = 5000
    pg_port: int = 5433

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '') else self.host}:{self.port}"

    @property
    def backend_uri(self) -> str:
        return f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{self.pg_port}/{DB_NAME}"


def pg_bindir() -> Path:
    """The newest PostgreSQL server binaries (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: float(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise ServerError("PostgreSQL's server programs (initdb, pg_ctl) are not installed: apt-get install postgresql")


def start(spec: ServerSpec, timeout_s: float = 120.0) -> dict:
    """Initialise the cluster if needed, start PostgreSQL and `mlflow server`; returns the state written to
    DIR/server.json (url, pids, ports)."""
    folder = spec.folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    running = status(folder)
    if running["running"]:
        raise ServerError(f"{folder}: already running at {running['url']}")
    bindir = pg_bindir()
    pgdata, sockets = folder / "pgdata", folder / "sockets"
    _check_reachable(folder)
    for owned in (pgdata, sockets):
        owned.mkdir(exist_ok=True)
        _give_to_postgres(owned)
    if not (pgdata / "PG_VERSION").is_file():
        _run([str(bindir / "initdb"), "-D", str(pgdata), "-U", DB_USER, "--auth=trust", "-E", "UTF8"],
             "initdb", as_postgres=True)
    options = f"-p {spec.pg_port} -k {sockets} -c listen_addresses=127.0.0.1"
    _run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "postgres.log"), "-o", options, "-w",
          "-t", "60", "start"], "pg_ctl start", as_postgres=True)
    created = subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(spec.pg_port),
                              "-U", DB_USER, DB_NAME], capture_output=True, text=True)
    if created.returncode and "already exists" not in created.stderr:
        _stop_postgres(bindir, pgdata)
        raise ServerError(f"createdb: {' '.join(created.stderr.split())}")
    log = open(folder / "mlflow-server.log", "ab")
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", spec.backend_uri,
                               "--artifacts-destination", str(folder / "artifacts"), "--host", spec.host,
                               "--port", str(spec.port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=folder)
    log.close()
    deadline = time.monotonic() + timeout_s
    while not _healthy(spec.url):
        if server.poll() is not None or time.monotonic() > deadline:
            _stop_group(server.pid)
            _stop_postgres(bindir, pgdata)
            tail = (folder / "mlflow-server.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise ServerError(f"mlflow server did not come up on {spec.url} ({' '.join(tail) or 'no output'}; "
                              f"log: {folder / 'mlflow-server.log'})")
        time.sleep(0.5)
    state = {"url": spec.url, "pid": server.pid, "port": spec.port, "pg_port": spec.pg_port,
             "backend_store_uri": spec.backend_uri, "artifacts": str(folder / "artifacts"), "pgdata": str(pgdata),
             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write_json(folder / STATE_FILE, state)
    return state


def status(folder: Path) -> dict:
    """{"running": bool, **the state file} — running means the tracking server answers its health check."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        return {"running": False}
    state = json.loads(path.read_text())
    return {**state, "running": _healthy(state["url"])}


def stop(folder: Path) -> dict:
    """Stop `mlflow server` (its whole process group) and PostgreSQL; the folder keeps the data for next time."""
    folder = Path(folder).resolve()
    path = folder / STATE_FILE
    if not path.is_file():
        raise ServerError(f"{folder}: no server was started here ({STATE_FILE} missing)")
    state = json.loads(path.read_text())
    _stop_group(int(state["pid"]))
    _stop_postgres(pg_bindir(), Path(state["pgdata"]))
    path.unlink()
    return state


# ---------------------------------------------------------------------- helpers

def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str], what: str, as_postgres: bool = False) -> None:
    done = subprocess.run(_as_postgres(command) if as_postgres else command, capture_output=True, text=True)
    if done.returncode:
        raise ServerError(f"{what} failed: {' '.join((done.stderr or done.stdout).split())[-400:]}")


def _check_reachable(folder: Path) -> None:
    if os.geteuid() != 0:
        return
    if subprocess.run(_as_postgres(["test", "-x", str(folder)]), capture_output=True).returncode:
        raise ServerError(f"{folder}: the postgres user cannot reach this folder (PostgreSQL will not run as root); "
                          f"pick a folder outside /root, or let every parent be entered (chmod o+x)")


def _give_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        path.chmod(0o700)


def _stop_postgres(bindir: Path, pgdata: Path) -> None:
    if (pgdata / "postmaster.pid").is_file():
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]),
                       capture_output=True)


def _stop_group(pid: int, grace_s: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False
