"""`forensics detect` on onnxruntime: the same records as on torch, picked on a CPU when the model's and MTCNN's
exports are cached, a cold start that imports neither torch nor MLflow, and a registry lookup that reads the
local sqlite store directly and agrees with MLflow."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detectors import create_detector, save_detector
from detectors.aliases import CHALLENGER, CHAMPION, MODEL_NAME
from detectors.bundle import member_weights
from detectors.export import cache_exports
from detectors.promote import promote, register
from detectors.runtime import AUTO, ONNX, TORCH, choose, onnx_file
from forensics.cli.main import main
from forensics.media import write_video
from forensics.model_lookup import UNKNOWN, find_registered
from forensics.pipelines import DetectConfig, DetectPipeline
from forensics.report import write_report
from forensics.synthetic import VideoConfig, render_video, sample_identity
from forensics.tracking import resolve_model, start_run

HEAVY = ("torch", "mlflow", "timm", "facenet_pytorch", "sklearn", "matplotlib")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    model = create_detector("mobilenetv3-small", input_size=64)
    return save_detector(tmp_path_factory.mktemp("detector"), model, {
        "threshold": 0.5, "crop": {"size": 64, "margin": 0.25}, "calibration": {"a": 1.7, "b": -0.3}})


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frames, _ = render_video(sample_identity(np.random.default_rng(4), 2), seed=7,
                             config=VideoConfig(size=192, frames=16, fps=25, max_yaw=15, max_pitch=8))
    return write_video(tmp_path_factory.mktemp("clip") / "face.mp4", frames, fps=25)


@pytest.fixture(scope="module")
def exported(model_dir) -> Path:
    cache_exports(model_dir)
    return model_dir


def test_onnx_and_torch_runtimes_give_the_same_record(exported, clip, tmp_path):
    records = {}
    for runtime in (TORCH, ONNX):
        config = DetectConfig(device="cpu", frames=8, clip_len=4, thumbnails=0, runtime=runtime)
        records[runtime] = DetectPipeline.from_path(exported, config).analyse(clip).record.to_json()
    page = write_report(records[ONNX], [], tmp_path / "report").read_text()
    assert "<th>Runtime</th><td>onnxruntime (the model&#39;s checked ONNX export)</td>" in page
    torch_record, onnx_record = records[TORCH], records[ONNX]
    assert torch_record["status"] == onnx_record["status"] == "ok"
    assert (torch_record["model"]["runtime"], onnx_record["model"]["runtime"]) == (TORCH, ONNX)
    assert torch_record["model"]["sha256"] == onnx_record["model"]["sha256"]
    assert len(torch_record["faces"]) == len(onnx_record["faces"]) >= 1
    assert [f["frame"] for f in torch_record["frame_scores"]] == [f["frame"] for f in onnx_record["frame_scores"]]
    frame_scores = [(a["score"], b["score"]) for a, b in zip(torch_record["frame_scores"], onnx_record["frame_scores"])]
    np.testing.assert_allclose(*zip(*frame_scores), atol=1e-3)
    assert abs(torch_record["score"] - onnx_record["score"]) < 1e-3
    assert torch_record["label"] == onnx_record["label"]


def test_auto_runs_onnx_on_a_cpu_only_when_the_exports_are_cached(exported, tmp_path, monkeypatch):
    weights = member_weights(exported)
    assert choose(AUTO, "cpu", weights) == ONNX and onnx_file(weights[0]).is_file()
    assert choose(AUTO, "cuda", weights) == TORCH           # a GPU asked for: torch runs it
    assert choose(TORCH, "cpu", weights) == TORCH           # asked for by name
    monkeypatch.setenv("FORENSICS_MODEL_CACHE", str(tmp_path / "empty"))
    assert choose(AUTO, "cpu", weights) == TORCH
    record = DetectPipeline.from_path(exported, DetectConfig(device="cpu", frames=2, thumbnails=0)).bundle.runtime
    assert record == TORCH


def test_a_damaged_cached_export_falls_back_to_torch(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FORENSICS_MODEL_CACHE", str(tmp_path / "cache"))
    cache_exports(model_dir)
    onnx_file(member_weights(model_dir)[0]).write_bytes(b"not an onnx graph")
    pipeline = DetectPipeline.from_path(model_dir, DetectConfig(device="cpu", frames=2, thumbnails=0))
    assert pipeline.bundle.runtime == TORCH
    with pytest.raises(ValueError, match="not a loadable ONNX model"):
        DetectPipeline.from_path(model_dir, DetectConfig(device="cpu", runtime=ONNX))


def test_export_cache_writes_what_detect_finds(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FORENSICS_MODEL_CACHE", str(tmp_path / "cache"))
    assert main(["export", "--model", str(model_dir), "--cache"]) == 0
    assert "mtcnn" in capsys.readouterr().out
    assert onnx_file(member_weights(model_dir)[0]).is_file()
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--model", str(model_dir), "--cache", "--onnx", str(tmp_path / "x.onnx")])
    assert exit_.value.code == 2


def test_a_cold_detect_of_the_champion_imports_neither_torch_nor_mlflow(model_dir, clip, tmp_path, monkeypatch):
    store = tmp_path / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    with start_run("detectors", run_name="champion") as run:
        register(run, model_dir, alias=CHAMPION)      # a new champion: its exports are cached
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "forensics.cli.main", "detect", str(clip),
                           "--quiet"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout)
    assert record["status"] == "ok" and record["model"]["runtime"] == ONNX
    imported = {m.group(1).split(".")[0] for m in re.finditer(r"^import time:.*\| (\S+)$", done.stderr, re.M)}
    assert imported & set(HEAVY) == set()
    assert {"onnxruntime", "av"} <= imported


def test_the_sqlite_lookup_agrees_with_mlflow_and_sees_promotions(model_dir, tmp_path, monkeypatch):
    other = save_detector(tmp_path / "other", create_detector("mobilenetv3-small", input_size=64),
                          {"threshold": 0.5, "crop": {"size": 64, "margin": 0.25}})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert find_registered(MODEL_NAME, CHAMPION) is None          # no store yet: nothing, and nothing created
    assert not (tmp_path / "mlflow.db").exists()
    with start_run("detectors", run_name="first") as run:
        register(run, model_dir, alias=CHAMPION)
    with start_run("detectors", run_name="second") as run:
        second = register(run, other, alias=CHALLENGER)
    for alias in (CHAMPION, CHALLENGER):
        assert find_registered(MODEL_NAME, alias) == resolve_model(MODEL_NAME, alias)
    assert (find_registered(MODEL_NAME, CHAMPION) / "model.safetensors").read_bytes() == \
        (model_dir / "model.safetensors").read_bytes()
    promote(second, CHAMPION)
    assert find_registered(MODEL_NAME, CHAMPION) == resolve_model(MODEL_NAME, CHAMPION)
    assert (find_registered(MODEL_NAME, CHAMPION) / "model.safetensors").read_bytes() == \
        (other / "model.safetensors").read_bytes()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert find_registered(MODEL_NAME, CHAMPION) is UNKNOWN        # a server: MLflow answers
