"""`forensics evaluate` end to end on tiny trees made of real H.264 face videos: a FaceForensics++ layout (two
methods, per-method rows) and a plain real/ fake/ folder; results files, the MLflow run, one-line refusals."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from safetensors.numpy import load_file, save_file

from detectors import create_detector, save_detector
from forensics.cli.main import main
from forensics.provenance import SYNTHETIC_ONLY
from forensics.synthetic import WorldConfig, generate_world

FFPP_REALS = ["900", "901", "902", "903", "904", "905"]        # ids >= 860: FF++'s default test split
FFPP_PAIRS = ["900_901", "902_903", "904_905"]


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate_world") / "synth"
    generate_world(root, WorldConfig(identities=6, videos_per_identity=2, frames=6, size=128, seed=7), progress=False)
    return root


@pytest.fixture()
def store(tmp_path, monkeypatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """An untrained detector that says it was trained on synthetic faces only (what the card must carry)."""
    model = create_detector("mobilenetv3-small", input_size=64)
    return save_detector(tmp_path_factory.mktemp("evaluate_model"), model,
                         {"threshold": 0.5, "crop": {"size": 64, "margin": 0.25},
                          "footage": {"trained_on": SYNTHETIC_ONLY}})


@pytest.fixture(scope="module")
def ffpp(small_world, tmp_path_factory) -> Path:
    videos = sorted((small_world / "videos").glob("*.mp4"))
    root = tmp_path_factory.mktemp("ffpp")
    files = {f"original_sequences/youtube/c23/videos/{i}.mp4": v for i, v in zip(FFPP_REALS, videos[:6])}
    for method, chosen in (("Deepfakes", videos[6:9]), ("FaceSwap", videos[9:12])):
        files.update({f"manipulated_sequences/{method}/c23/videos/{p}.mp4": v for p, v in zip(FFPP_PAIRS, chosen)})
    for relative, video in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(video, root / relative)
    return root


def test_ffpp_tree_reports_every_level_per_method_with_intervals(ffpp, model_dir, tmp_path, store, capsys):
    out = tmp_path / "eval"
    code = main(["evaluate", "--model", str(model_dir), "--dataset", "ffpp", "--root", str(ffpp), "--frames", "4",
                 "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "video AUC" in printed and "trained on synthetic faces only" in printed
    doc = json.loads((out / "results.json").read_text())
    assert doc["dataset"]["name"] == "ffpp" and doc["dataset"]["split"] == "test"
    assert doc["model"]["trained_on"] == SYNTHETIC_ONLY and doc["model"]["threshold"] == 0.5
    levels = doc["levels"]
    assert (levels["video"]["n_fake"], levels["video"]["n_real"]) == (6, 6)
    assert (levels["video_mean"]["n_fake"], levels["video_mean"]["n_real"]) == (6, 6)
    assert levels["frame"]["n"] == 4 * 12                       # 4 sampled faces per video
    for summary in levels.values():
        low, high = summary["auc_ci"]
        assert 0.0 <= low <= summary["auc"] <= high <= 1.0
        assert {"eer", "ap", "tpr@fpr=1%", "tpr@fpr=0.1%"} <= set(summary)
    assert sorted(doc["by_method"]) == ["Deepfakes", "FaceSwap"]
    for method in doc["by_method"].values():
        assert (method["video"]["n_fake"], method["video"]["n_real"]) == (3, 6)
    text = (out / "results.md").read_text()
    assert "DeepfakeBench" in text and "never saw a real face" in text and "## FaceSwap" in text
    assert (out / "roc.png").stat().st_size > 1000 and (out / "pr.png").stat().st_size > 1000
    assert (ffpp / "face_cache_eval" / "index.jsonl").is_file()            # kept apart from a training cache

    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("evaluate").experiment_id])
    assert run.data.params["dataset"] == "ffpp" and run.data.tags["trained_on"] == SYNTHETIC_ONLY
    assert run.data.metrics["video/auc"] == pytest.approx(levels["video"]["auc"])
    assert run.data.metrics["video_mean/auc"] == pytest.approx(levels["video_mean"]["auc"])
    assert "method/Deepfakes/video_auc" in run.data.metrics
    assert {"results.json", "roc.png", "pr.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}


def test_the_mean_of_frame_probabilities_is_deepfakebenchs_video_score(ffpp, model_dir, tmp_path, store):
    """Shifting the model's calibration changes no ranking: every AUC stays; a model that scores every face the
    same gives AUC 0.5 at every level (no video is told apart)."""
    flat = tmp_path / "flat"
    shutil.copytree(model_dir, flat)
    weights = flat / "model.safetensors"
    tensors = load_file(str(weights))
    save_file({k: (np.zeros_like(v) if v.dtype.kind == "f" else v) for k, v in tensors.items()}, str(weights))
    config = json.loads((flat / "config.json").read_text())
    config.pop("weights_sha256", None)
    (flat / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", "--model", str(flat), "--root", str(ffpp), "--frames", "2", "--out",
                 str(tmp_path / "out"), "--quiet", "--cache", str(tmp_path / "cache")]) == 0
    levels = json.loads((tmp_path / "out" / "results.json").read_text())["levels"]
    assert all(summary["auc"] == pytest.approx(0.5) for summary in levels.values())


def test_a_split_without_both_classes_is_one_line(small_world, model_dir, tmp_path, store, capsys):
    videos = sorted((small_world / "videos").glob("*.mp4"))
    (tmp_path / "only" / "real").mkdir(parents=True)
    for video in videos[:3]:
        shutil.copy(video, tmp_path / "only" / "real" / video.name)
    code = main(["evaluate", "--model", str(model_dir), "--root", str(tmp_path / "only"), "--split", "all",
                 "--frames", "2", "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "no fake videos" in err and "Traceback" not in err
    code = main(["evaluate", "--model", str(model_dir), "--root", str(tmp_path / "only"), "--split", "sideways",
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "--split must be one of" in err
