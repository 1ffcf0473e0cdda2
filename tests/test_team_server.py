"""`forensics server`: a real PostgreSQL cluster and a real `mlflow server` on localhost, started and stopped by
the test; two writer processes at once lose nothing, and detect's registry lookup goes through the server."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from mlflow import MlflowClient

from detectors import create_detector, save_detector
from detectors.promote import MODEL_NAME, register
from forensics.cli.main import main
from forensics.tracking import offline as off
from forensics.tracking import resolve_model, start_run
from test_tracking import free_port

RUNS, STEPS, PARAMS = 3, 20, 5
WRITER = textwrap.dedent("""
    import sys
    from detectors import create_detector, save_detector
    from detectors.promote import register
    from forensics.tracking import start_run

    name, folder = sys.argv[1], sys.argv[2]
    for r in range({runs}):
        with start_run("detectors", run_name=f"{{name}}-{{r}}",
                       params={{f"p{{k}}": f"{{name}}-{{k}}" for k in range({params})}}) as run:
            for step in range({steps}):
                run.log_metrics({{"train/loss": 1.0 / (step + 1), "val/auc": step / {steps}, "lr": 0.001}}, step=step)
            run.log_dict({{"writer": name, "run": r}}, "notes/meta.json")
            if r == 0:
                model = save_detector(f"{{folder}}/{{name}}", create_detector("mobilenetv3-small", input_size=64),
                                      {{"threshold": 0.5, "crop": {{"size": 64, "margin": 0.25}}}})
                register(run, model, alias="champion" if name == "w0" else "challenger")
""").format(runs=RUNS, steps=STEPS, params=PARAMS)


@pytest.fixture()
def server_dir():
    """Under /tmp and open to others: PostgreSQL will not run as root, so the cluster runs as `postgres`."""
    folder = Path(tempfile.mkdtemp(prefix="forensics-tracking-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    if (folder / "server.json").exists():         # a failed test must not leave servers running
        main(["server", "stop", "--dir", str(folder)])
    shutil.rmtree(folder, ignore_errors=True)


def test_two_writers_lose_nothing_and_detect_finds_the_champion_through_the_server(server_dir, tmp_path,
                                                                                    monkeypatch, capsys):
    port, pg_port = free_port(), free_port()
    assert main(["server", "start", "--dir", str(server_dir), "--port", str(port), "--pg-port", str(pg_port)]) == 0
    url = f"http://127.0.0.1:{port}"
    assert f"export MLFLOW_TRACKING_URI={url}" in capsys.readouterr().out
    assert main(["server", "status", "--dir", str(server_dir), "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["running"] and state["backend_store_uri"].startswith("postgresql")
    assert main(["server", "start", "--dir", str(server_dir), "--port", str(free_port()),
                 "--pg-port", str(free_port())]) == 1
    assert "already running" in capsys.readouterr().err

    env = {**os.environ, "MLFLOW_TRACKING_URI": url, "FORENSICS_MLFLOW_OFFLINE_DIR": str(tmp_path / "offline")}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, f"w{k}", str(tmp_path / "models")], env=env,
                                cwd=tmp_path, stderr=subprocess.PIPE) for k in range(2)]
    for writer in writers:
        assert writer.wait(timeout=300) == 0, writer.stderr.read().decode()[-2000:]
    assert not (tmp_path / "offline").exists()                 # nothing fell back: the server took every write

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    runs = client.search_runs([client.get_experiment_by_name("detectors").experiment_id])
    assert sorted(r.info.run_name for r in runs) == sorted(f"w{k}-{r}" for k in range(2) for r in range(RUNS))
    for run in runs:
        assert len(run.data.params) == PARAMS and run.info.status == "FINISHED"
        for key in ("train/loss", "val/auc", "lr"):
            assert len(client.get_metric_history(run.info.run_id, key)) == STEPS
        assert "notes/meta.json" in {a.path for a in client.list_artifacts(run.info.run_id, "notes")}
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert len(versions) == 2

    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("FORENSICS_MODEL_CACHE", str(tmp_path / "model-cache"))
    champion = resolve_model(MODEL_NAME, "champion")      # downloaded through the server's artifact proxy
    assert (champion / "model.safetensors").read_bytes() == (tmp_path / "models" / "w0" / "model.safetensors").read_bytes()

    assert main(["server", "stop", "--dir", str(server_dir)]) == 0
    assert main(["server", "status", "--dir", str(server_dir)]) == 3
    capsys.readouterr()
    for used in (port, pg_port):          # both servers really went away (a listener would still refuse the bind;
        with socket.socket() as s:        # SO_REUSEADDR only lets the closed connections' TIME_WAIT pass)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", used))
    assert (server_dir / "pgdata" / "PG_VERSION").is_file()     # the data stays for the next start


def test_runs_kept_offline_while_the_server_was_down_sync_back_once(server_dir, tmp_path, monkeypatch, capsys):
    """A run that loses the server mid-run, a run started while it is down, and a model registered offline: after
    the restart, `forensics tracking sync` puts every metric point, artifact and version on the server, in the run
    the first one started as; a second sync copies nothing."""
    port, pg_port = free_port(), free_port()
    start = ["server", "start", "--dir", str(server_dir), "--port", str(port), "--pg-port", str(pg_port)]
    assert main(start) == 0
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("FORENSICS_MLFLOW_OFFLINE_DIR", str(tmp_path / "offline"))
    monkeypatch.setattr(off, "_dead", {})
    model = save_detector(tmp_path / "model", create_detector("mobilenetv3-small", input_size=64),
                          {"threshold": 0.5, "crop": {"size": 64, "margin": 0.25}})

    with start_run("detectors", run_name="interrupted", params={"epochs": 10}) as run:
        for step in range(5):
            run.log_metrics({"train/loss": 10.0 - step}, step=step)
        online_id = run.run_id
        assert main(["server", "stop", "--dir", str(server_dir)]) == 0
        for step in range(5, 10):
            run.log_metrics({"train/loss": 10.0 - step}, step=step)
        run.log_dict({"epoch": 9}, "state/last.json")
    with start_run("detectors", run_name="while-down", params={"lr": 0.01}) as later:
        for step in range(3):
            later.log_metrics({"val/auc": 0.5 + step / 10}, step=step)
        register(later, model, alias="challenger")
    assert run.offline and later.offline
    capsys.readouterr()

    assert main(["tracking", "sync"]) == 1                   # the server is still down: one line, nothing marked
    assert capsys.readouterr().err.strip().startswith(f"forensics tracking: cannot reach {url}")
    assert main(start) == 0
    capsys.readouterr()
    assert main(["tracking", "sync", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first["copied"]) == 2 and first["already"] == 0
    assert first["aliases_left"] == [f"{MODEL_NAME}@challenger -> version 1"]

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    filled = client.get_run(online_id)
    assert filled.info.status == "FINISHED" and filled.data.params == {"epochs": "10"}
    assert sorted((m.step, m.value) for m in client.get_metric_history(online_id, "train/loss")) == \
        [(s, 10.0 - s) for s in range(10)]
    assert "state/last.json" in {a.path for a in client.list_artifacts(online_id, "state")}
    copied = client.search_runs([client.get_experiment_by_name("detectors").experiment_id],
                                filter_string="attributes.run_name = 'while-down'")
    assert len(copied) == 1 and len(client.get_metric_history(copied[0].info.run_id, "val/auc")) == 3
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert [v.run_id for v in versions] == [copied[0].info.run_id]
    downloaded = client.download_artifacts(copied[0].info.run_id, "model", str(tmp_path / "back"))
    assert (Path(downloaded) / "model.safetensors").read_bytes() == (model / "model.safetensors").read_bytes()

    assert main(["tracking", "sync"]) == 0                           # again: nothing is copied twice
    assert capsys.readouterr().out.strip().splitlines() == [f"0 run(s) synced to {url}; 2 already there"]
    assert len(client.get_metric_history(online_id, "train/loss")) == 10
    assert len(client.search_model_versions(f"name = '{MODEL_NAME}'")) == 1
    assert main(["server", "stop", "--dir", str(server_dir)]) == 0
