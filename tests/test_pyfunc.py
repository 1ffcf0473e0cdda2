"""Detectors as MLflow pyfunc models: the checkpoint folder loads with mlflow.pyfunc (from a folder and from the
registry) and `mlflow models serve` answers a real HTTP request on localhost; nothing is pickled."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from detectors import create_detector, load_detector, save_detector
from detectors.promote import CHAMPION, MODEL_NAME, register
from forensics.media import write_video
from forensics.pipelines import DetectPipeline
from forensics.synthetic import VideoConfig, render_video, sample_identity
from forensics.tracking import start_run
from test_tracking import free_port


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pyfunc_media")
    frames, _ = render_video(sample_identity(np.random.default_rng(4), 4), seed=2,
                             config=VideoConfig(size=160, frames=8, fps=25, max_yaw=10, max_pitch=8))
    files = {"video": write_video(folder / "face.mp4", frames, fps=25), "text": folder / "notes.mp4"}
    files["text"].write_text("not a video\n")
    Image.fromarray(frames[0]).save(folder / "face.png")
    files["image"] = folder / "face.png"
    return files


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_detector(tmp_path_factory.mktemp("pyfunc_model") / "model",
                         create_detector("mobilenetv3-small", input_size=64),
                         {"threshold": 0.5, "crop": {"size": 64, "margin": 0.25}})


def test_a_checkpoint_folder_is_a_pyfunc_model_scoring_like_detect(model_dir, media):
    assert sorted(p.name for p in model_dir.iterdir()) == ["MLmodel", "config.json", "model.safetensors"]
    assert not any(p.suffix in (".pkl", ".pickle", ".pt", ".bin") for p in model_dir.iterdir())
    model = mlflow.pyfunc.load_model(str(model_dir))
    out = model.predict(pd.DataFrame({"path": [str(media["video"]), str(media["text"]), str(media["image"])]}))
    assert list(out["status"]) == ["ok", "error", "ok"]
    assert "not a video or image" in out["error"][1] and "\n" not in out["error"][1]
    direct = DetectPipeline(load_detector(model_dir)).analyse(media["video"]).record.to_json()
    assert out["score"][0] == pytest.approx(direct["score"]) and out["label"][0] == direct["label"]
    assert json.loads(out["record"][0])["faces"] == direct["faces"]


def test_the_registered_champion_loads_and_serves_over_http(model_dir, media, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    with start_run("detectors", run_name="pyfunc") as run:
        register(run, model_dir, alias=CHAMPION)
    loaded = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    expected = loaded.predict(pd.DataFrame({"path": [str(media["video"])]}))["score"][0]

    port = free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen([str(mlflow_cli), "models", "serve", "-m", f"models:/{MODEL_NAME}@{CHAMPION}",
                               "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                              # as in an activated venv: MLflow starts the venv's uvicorn by name
                              env={**os.environ, "MLFLOW_TRACKING_URI": uri,
                                   "PATH": f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(1)
        body = json.dumps({"dataframe_split": {"columns": ["path"],
                                               "data": [[str(media["video"])], [str(media["text"])]]}}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as reply:
            predictions = json.loads(reply.read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert [p["status"] for p in predictions] == ["ok", "error"]
    assert predictions[0]["score"] == pytest.approx(expected)
    assert json.loads(predictions[0]["record"])["path"] == str(media["video"])
