"""forensics.tracking against real MLflow stores: a sqlite file, a dead address, and a real `mlflow server`
killed in the middle of a run. Every store lives in a tmp dir; nothing lands in the repository."""
from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from mlflow import MlflowClient
from PIL import Image
from safetensors.torch import save_file

from detectors import create_detector, load_detector, save_detector
from forensics.cli import ui as ui_command
from forensics.tracking import offline as off
from forensics.tracking import registry, resolve_model, set_model_alias, start_run
from forensics.tracking import ui as tracking_ui


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory) -> Path:
    """An initialised MLflow sqlite database, made once: creating one runs ~2 s of migrations."""
    folder = tmp_path_factory.mktemp("template")
    db = folder / "mlflow.db"
    off.quiet_mlflow()
    MlflowClient(tracking_uri=f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def store(tmp_path, monkeypatch, empty_db):
    """A fresh tracking store, fallback dir and model cache in tmp_path (also the working directory,
    where MLflow's sqlite default puts artifacts)."""
    shutil.copy(empty_db, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv(off.OFFLINE_DIR_ENV, str(tmp_path / "offline"))
    monkeypatch.setenv(registry.MODEL_CACHE_ENV, str(tmp_path / "model_cache"))
    monkeypatch.setattr(off, "_dead", {})
    monkeypatch.setattr(registry, "_warned", set())
    return tmp_path


def client_for(uri: str):
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def artifact_files(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for info in client.list_artifacts(run_id, path):
        out |= artifact_files(client, run_id, info.path) if info.is_dir else {info.path}
    return out


def make_checkpoint(folder: Path, seed: int) -> Path:
    """A tiny detector checkpoint: safetensors weights + config.json, as detectors.save_detector writes."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.full((4, 4), float(seed))}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"format": "forensics-detector/1", "seed": seed}))
    return folder


def warnings_in(text: str) -> list[str]:
    return [line for line in text.splitlines() if "unreachable" in line]


# ---------------------------------------------------------------- a healthy local store

def test_everything_logged_reads_back(store):
    image = np.zeros((12, 20, 3), np.uint8)
    image[:, :10, 0] = 255
    ckpt = store / "ckpt"
    ckpt.mkdir()
    (ckpt / "notes.txt").write_text("hello")
    (ckpt / "sub").mkdir()
    (ckpt / "sub" / "x.json").write_text("{}")

    with start_run("detectors", run_name="everything", params={"lr": 0.001, "layers": [1, 2]},
                   tags={"kind": "test"}) as run:
        for step in range(3):
            run.log_metrics({"train/loss": 1.0 / (step + 1), "val/tpr@fpr=1%": 0.1 * step}, step=step)
        run.log_params({"batch": 8, "lr": 0.001})               # same value again is fine
        with pytest.raises(ValueError, match="lr"):
            run.log_params({"lr": 0.5})                          # params are write-once
        fig = Figure(figsize=(2, 2))
        FigureCanvasAgg(fig)
        fig.add_subplot().plot([0, 1], [0, 1])
        run.log_figure(fig, "val/roc.png")
        run.log_image(image, "val/grid.png")
        run.log_dict({"threshold": np.float32(0.25), "names": ["a"]}, "meta.json")
        run.log_artifacts(ckpt, "checkpoint")
        run.set_tags({"stage": "done"})
        with pytest.raises(ValueError, match="uint8"):
            run.log_image(image.astype(np.float32), "bad.png")
        with start_run("detectors", run_name="round-1", parent=run) as child:
            child.log_metrics({"auc/sbi": 0.9})
        run_id, child_id = run.run_id, child.run_id

    client = client_for(f"sqlite:///{store / 'mlflow.db'}")
    got = client.get_run(run_id)
    assert not run.offline and got.info.status == "FINISHED" and got.info.run_name == "everything"
    assert got.data.params == {"lr": "0.001", "layers": "[1, 2]", "batch": "8"}
    assert got.data.tags["kind"] == "test" and got.data.tags["stage"] == "done"
    # The UI opens the experiment as model training (not GenAI) and shows where the run came from.
    assert client.get_experiment_by_name("detectors").tags["mlflow.experimentKind"] == "custom_model_development"
    assert got.data.tags["mlflow.source.name"] and len(got.data.tags["mlflow.source.git.commit"]) == 40
    assert history(client, run_id, "train/loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert history(client, run_id, "val/tpr_at_fpr_1pct")[-1] == (2, pytest.approx(0.2))
    assert artifact_files(client, run_id) == {"val/roc.png", "val/grid.png", "meta.json", "checkpoint/notes.txt",
                                              "checkpoint/sub/x.json"}
    folder = Path(client.download_artifacts(run_id, "val", str(store / "dl")))
    assert np.array_equal(np.asarray(Image.open(folder / "grid.png")), image)
    assert Image.open(folder / "roc.png").size[0] > 50
    meta = json.loads(Path(client.download_artifacts(run_id, "meta.json", str(store / "dl"))).read_text())
    assert meta == {"threshold": 0.25, "names": ["a"]}
    kid = client.get_run(child_id)
    assert kid.data.tags["mlflow.parentRunId"] == run_id and kid.data.metrics == {"auc/sbi": 0.9}
    assert not (store / "offline").exists()


def test_step_images_use_mlflows_layout_for_the_slider(store):
    """One image per round under one key, as the MLflow UI's step slider reads them."""
    image = np.zeros((40, 900, 3), np.uint8)
    with start_run("coevolve", run_name="steps") as run:
        for step in (1, 2, 3):
            run.log_image_step(image + step, "panel matrix", step)
        with pytest.raises(ValueError, match="key"):
            run.log_image_step(image, "bad:key", 1)
    client = client_for(f"sqlite:///{store / 'mlflow.db'}")
    files = artifact_files(client, run.run_id)
    steps = sorted(int(f.split("+step+")[1].split("+")[0]) for f in files if f.endswith(".png"))
    assert steps == [1, 2, 3] and all(f.startswith("images/panel matrix+step+") for f in files)
    previews = [f for f in files if f.endswith("+compressed.webp")]
    assert len(previews) == 3
    # the preview fits the UI's image card (256 px, as MLflow's own log_image writes it; a larger one is clipped)
    preview = Image.open(client.download_artifacts(run.run_id, previews[0], str(store / "dl")))
    assert max(preview.size) == 256 and preview.size[1] == round(40 * 256 / 900)
    assert client.get_run(run.run_id).data.tags["mlflow.loggedImages"] == "true"


def test_failed_block_marks_run_failed(store):
    with pytest.raises(RuntimeError):
        with start_run("generators", run_name="boom") as run:
            raise RuntimeError("training blew up")
    assert client_for(f"sqlite:///{store / 'mlflow.db'}").get_run(run.run_id).info.status == "FAILED"


NAME = "forensics-detector"      # the tracking core registers whatever name it is given; detectors.promote owns ours


def test_register_and_resolve_model(store):
    with start_run("detectors", run_name="train") as run:
        v1 = run.register_model(save_detector(store / "m1", create_detector(), {
            "threshold": 0.3, "metrics": {"val/video_auc": 0.91234, "test/video_auc": 0.875, "val/frame_n": 128,
                                          "test/video_eer": float("nan")}}), NAME, alias="challenger")
        v2 = run.register_model(make_checkpoint(store / "m2", seed=2), NAME, alias="challenger")
        with pytest.raises(ValueError, match="model.safetensors"):
            run.register_model(store / "m1" / "missing", NAME)
    assert (v1, v2) == ("1", "2")
    # The registry shows each version's own headline figures (finite ones) without opening its run.
    version_tags = client_for(f"sqlite:///{store / 'mlflow.db'}").get_model_version(NAME, v1).tags
    assert {k: v for k, v in version_tags.items() if k.startswith("metric.")} == {
        "metric.val.video_auc": "0.9123", "metric.test.video_auc": "0.8750"}
    assert resolve_model("forensics-detector", "champion") is None           # nothing promoted yet
    assert resolve_model("no-such-model", "champion") is None
    challenger = resolve_model("forensics-detector", "challenger")           # moved to version 2
    assert json.loads((challenger / "config.json").read_text())["seed"] == 2
    set_model_alias("forensics-detector", v1, "champion")
    champion = resolve_model(NAME, "champion")
    assert (champion / "model.safetensors").read_bytes() == (store / "m1" / "model.safetensors").read_bytes()
    loaded = load_detector(champion)
    assert loaded.threshold == 0.3 and loaded.name == "mobilenetv3-small"
    with pytest.raises(ValueError, match="alias"):
        resolve_model("forensics-detector", "not an alias!")
    with pytest.raises(ValueError, match="version 9"):
        set_model_alias("forensics-detector", 9, "champion")


# ---------------------------------------------------------------- stores that are not there

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_server_down_at_start_logs_locally(store, monkeypatch, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    started = time.perf_counter()
    with start_run("coevolve", run_name="offline-parent", params={"rounds": 2}) as run:
        for step in range(4):
            run.log_metrics({"auc/sbi": 0.5 + 0.1 * step}, step=step)
        with start_run("coevolve", run_name="round-0", parent=run) as child:
            child.log_metrics({"evasion": 0.3})
        version = run.register_model(make_checkpoint(store / "m", seed=7), NAME, alias="challenger")
    elapsed = time.perf_counter() - started
    assert run.offline and child.offline and version == "1"
    assert elapsed < 30, f"a dead server cost {elapsed:.1f} s"
    found = resolve_model("forensics-detector", "challenger")   # the registry falls back too
    assert found is not None and json.loads((found / "config.json").read_text())["seed"] == 7
    lines = warnings_in(capsys.readouterr().err)
    assert len(lines) == 2, lines      # one for the run, one for the registry look-up
    assert dead in lines[0] and "offline-parent" in lines[0] and off.offline_uri() in lines[0]

    local = client_for(off.offline_uri())
    got = local.get_run(run.run_id)
    assert got.data.params == {"rounds": "2"} and got.info.status == "FINISHED"
    assert got.data.tags[off.TAG_ORIGIN_URI] == dead
    assert [v for _, v in history(local, run.run_id, "auc/sbi")] == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert local.get_run(child.run_id).data.tags["mlflow.parentRunId"] == run.run_id
    assert Path(got.info.artifact_uri).is_relative_to(store / "offline")


def test_a_web_server_that_is_not_mlflow_counts_as_unreachable(store, empty_db, monkeypatch, capsys):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (store / "offline").mkdir()
    shutil.copy(empty_db, store / "offline" / "mlflow.db")
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_address[1]}")
        with start_run("benchmarks", run_name="wrong-address") as run:
            run.log_metrics({"fps": 30.0})
    finally:
        server.shutdown()
        server.server_close()
    lines = warnings_in(capsys.readouterr().err)
    assert run.offline and len(lines) == 1 and "not an MLflow answer" in lines[0], lines
    assert client_for(off.offline_uri()).get_run(run.run_id).data.metrics == {"fps": 30.0}


@pytest.fixture
def mlflow_server(store, empty_db):
    """A real `mlflow server` on a free port with its own sqlite store; killed at the end."""
    folder = store / "server"
    folder.mkdir()
    shutil.copy(empty_db, folder / "mlflow.db")
    proc, url = start_server(folder, free_port())
    try:
        yield proc, url
    finally:
        kill(proc)


def start_server(folder: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on `port` over the sqlite store and artifacts in `folder`, once it answers /health."""
    with open(folder / "server.log", "a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
             "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2).read()
            return proc, url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                kill(proc)
                pytest.fail(f"mlflow server did not start: {(folder / 'server.log').read_text()[-2000:]}")
            time.sleep(0.25)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)   # uvicorn workers are in the server's own session
        proc.wait(timeout=30)


def test_server_going_away_mid_run_loses_nothing(store, mlflow_server, empty_db, monkeypatch, capsys):
    proc, url = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    (store / "offline").mkdir()
    shutil.copy(empty_db, store / "offline" / "mlflow.db")    # creating it is tested above; save the 2 s
    ckpt = make_checkpoint(store / "m", seed=3)
    with start_run("detectors", run_name="doomed", params={"epochs": 10}, tags={"kind": "t"}) as run:
        for step in range(5):
            run.log_metrics({"train/loss": 10.0 - step}, step=step)
        run.log_dict({"epoch": 4}, "state/epoch.json")
        version = run.register_model(ckpt, NAME, alias="challenger")
        child = start_run("detectors", run_name="child", parent=run)
        child.log_metrics({"x": 1.0}, step=0)
        online_id, child_online_id = run.run_id, child.run_id
        remote = resolve_model("forensics-detector", "challenger")      # downloaded from the server
        assert version == "1" and remote.is_relative_to(store / "model_cache")
        assert (remote / "model.safetensors").read_bytes() == (ckpt / "model.safetensors").read_bytes()
        assert not run.offline and warnings_in(capsys.readouterr().err) == []

        kill(proc)
        for step in range(5, 10):
            run.log_metrics({"train/loss": 10.0 - step}, step=step)
        child.log_metrics({"x": 2.0}, step=1)
        child.end()
        run.log_dict({"epoch": 9}, "state/last.json")
    lines = warnings_in(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert url in lines[0] and "doomed" in lines[0] and "Connection refused" in lines[0]
    assert run.offline and child.offline and run.run_id != online_id

    local = client_for(off.offline_uri())
    got = local.get_run(run.run_id)
    assert history(local, run.run_id, "train/loss") == [(s, 10.0 - s) for s in range(10)]
    assert got.data.params == {"epochs": "10"} and got.data.tags["kind"] == "t"
    assert got.data.tags[off.TAG_ORIGIN_RUN] == online_id and got.info.status == "FINISHED"
    assert {"state/epoch.json", "state/last.json", "model/model.safetensors", "model/config.json"} <= \
        artifact_files(local, run.run_id)
    kid = local.get_run(child.run_id)
    assert kid.data.tags["mlflow.parentRunId"] == run.run_id and kid.data.tags[off.TAG_ORIGIN_RUN] == child_online_id
    assert history(local, child.run_id, "x") == [(0, 1.0), (1, 2.0)]


# ---------------------------------------------------------------- forensics ui

def ui_parser():
    parser = argparse.ArgumentParser(prog="forensics")
    ui_command.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_ui_links_open_each_experiment_in_the_model_training_layout(store, tmp_path):
    """MLflow 3.17 opens a new browser in its GenAI layout: `forensics ui` prints one link per experiment that
    carries workflowType=machine_learning; a store file that does not exist gives none and is not created."""
    with start_run("detectors", run_name="r") as run:
        run.log_metrics({"x": 1.0}, step=0)
    uri = os.environ["MLFLOW_TRACKING_URI"]
    experiment = client_for(uri).get_experiment_by_name("detectors").experiment_id
    assert tracking_ui.experiment_links(uri, "0.0.0.0", 5001) == [
        ("detectors", f"http://127.0.0.1:5001/#/experiments/{experiment}/runs?workflowType=machine_learning")]
    assert tracking_ui.experiment_links(f"sqlite:///{tmp_path / 'none.db'}", "127.0.0.1", 5001) == []
    assert not (tmp_path / "none.db").exists()


def test_ui_help_and_command_line(store, capsys):
    with pytest.raises(SystemExit) as exit_:
        ui_parser().parse_args(["ui", "--help"])
    assert exit_.value.code == 0 and "--port" in capsys.readouterr().out

    uri = f"sqlite:///{store / 'mlflow.db'}"
    command = tracking_ui.build_command(uri, host="0.0.0.0", port=5123)
    assert command[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert command[command.index("--backend-store-uri") + 1] == uri
    assert command[command.index("--port") + 1] == "5123" and command[command.index("--host") + 1] == "0.0.0.0"
    with pytest.raises(ValueError, match="already a tracking server"):
        tracking_ui.build_command("http://127.0.0.1:5000")

    args = ui_parser().parse_args(["ui", "--port", "5055", "--print-command"])
    assert args.func(args) == 0 and uri in capsys.readouterr().out
    args = ui_parser().parse_args(["ui", "--offline", "--print-command"])
    assert args.func(args) == 0 and off.offline_uri() in capsys.readouterr().out
    args = ui_parser().parse_args(["ui", "--port", "0"])
    assert args.func(args) == 2 and "--port" in capsys.readouterr().err


def test_ui_stops_its_server_when_terminated(store, tmp_path):
    """SIGTERM to `forensics ui` (a service manager, `kill`) stops the `mlflow server` it started, workers and
    all, instead of leaving it holding the port."""
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "forensics.cli.main", "ui", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while tracking_ui.port_free("127.0.0.1", port) and time.monotonic() < deadline and ui.poll() is None:
            time.sleep(0.2)
        assert not tracking_ui.port_free("127.0.0.1", port), "the server never started listening"
        server_group = _children(ui.pid)
        assert server_group
        ui.send_signal(signal.SIGTERM)
        assert ui.wait(timeout=60) == 0
    finally:
        if ui.poll() is None:
            ui.kill()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in server_group) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in server_group)
    assert tracking_ui.port_free("127.0.0.1", port)


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
