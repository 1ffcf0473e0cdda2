"""The detector recipe end to end on a small rendered world: cache -> train -> calibrate -> test -> save ->
register, through the real CLI, the real loop and a real MLflow sqlite store."""
from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    from forensics.synthetic import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("det_world") / "synth"
    generate_world(root, WorldConfig(identities=10, videos_per_identity=2, frames=8, size=128, seed=5),
                   progress=False)
    return root


@pytest.fixture()
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri


# 64-px crops learn the self-blend in about a hundred steps on this world (Platt slope 0.7-1.2 over seeds 0-2);
# the cpu-small preset's 128 px would need far more than a test can give, and a detector that learned nothing
# has its calibration refused.
LEARNS = {"detector": "mobilenetv3-small", "input_size": 64, "crop_size": 64, "frames_per_video": 8, "lr": 0.003,
          "patience": None, "sbi": True, "augment": True, "eval_per_video": 8}
EPOCHS = 12


def _train(small_world, out, *extra, epochs: int = EPOCHS, config: dict | None = None):
    import yaml

    from forensics.cli.main import main

    preset = out.parent / f"{out.name}-preset.yaml"
    preset.write_text(yaml.safe_dump(config or LEARNS))
    return main(["train", "detector", "--root", str(small_world), "--out", str(out), "--config", str(preset),
                 "--epochs", str(epochs), "--batch-size", "16", "--quiet", *extra])


def test_train_detector_saves_calibrated_model_and_logs_to_mlflow(small_world, tmp_path, store, capsys):
    from mlflow import MlflowClient

    from detectors import load_detector
    from forensics.tracking import resolve_model

    out = tmp_path / "run"
    assert _train(small_world, out) == 0
    printed = capsys.readouterr().out
    assert "validation" in printed and "video AUC" in printed

    loaded = load_detector(out / "model")
    meta = loaded.meta
    assert 0.0 < meta["threshold"] < 1.0
    assert set(meta["calibration"]) == {"a", "b"}
    assert meta["crop"] == {"size": 64, "margin": 0.25}
    assert meta["trained"]["epochs_run"] == EPOCHS
    assert meta["calibration"]["a"] > 0 and "calibration_refused" not in meta
    assert len(meta["data_hash"]) == 16
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.pkl"))

    # Calibrated probabilities follow the fitted Platt map and stay within (0, 1).
    a, b = meta["calibration"]["a"], meta["calibration"]["b"]
    logits = np.array([-3.0, 0.0, 3.0])
    probs = loaded.probability(logits)
    assert np.allclose(probs, 1 / (1 + np.exp(-(a * logits + b))), atol=1e-6)
    assert np.all((probs > 0) & (probs < 1))

    client = MlflowClient()
    experiment = client.get_experiment_by_name("detectors")
    (run,) = client.search_runs([experiment.experiment_id])
    assert "val/auc" in run.data.metrics and "loss" in " ".join(run.data.metrics)
    assert "test/video_auc" in run.data.metrics      # the world has a test split (2 unseen identities)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert {"validation/roc.png", "validation/pr.png", "validation/confusion_videos.png",
            "validation/hardest_real.png", "validation/hardest_fake.png"} <= artifacts
    # The first trained model is registered and becomes the champion `forensics detect` uses by default.
    assert resolve_model("forensics-detector", "challenger") is not None
    champion = resolve_model("forensics-detector", "champion")
    assert champion is not None and (champion / "model.safetensors").is_file()


def test_train_detector_resumes_finished_run_without_retraining(small_world, tmp_path, store):
    out = tmp_path / "run"
    assert _train(small_world, out, "--no-register") == 0
    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())["run"]
    assert state["next_epoch"] == EPOCHS
    from safetensors.numpy import load_file

    weights = load_file(out / "model" / "model.safetensors")
    assert _train(small_world, out, "--no-register") == 0
    assert json.loads((out / "checkpoints" / "last" / "state.json").read_text())["run"] == state
    again = load_file(out / "model" / "model.safetensors")
    assert again.keys() == weights.keys()
    assert all(np.array_equal(again[k], weights[k]) for k in weights)


def test_train_detector_usage_errors_exit_2(small_world, tmp_path, store, capsys):
    from forensics.cli.main import main

    assert main(["train", "detector", "--root", str(small_world), "--detector", "nope"]) == 2
    assert "unknown detector" in capsys.readouterr().err
    assert main(["train", "detector", "--root", str(tmp_path / "absent"), "--dataset", "ffpp"]) == 2
    assert main(["train", "detector", "--preset", "no-such-preset"]) == 2


def test_a_refused_calibration_stops_training_in_one_line_and_saves_no_model(small_world, tmp_path, store,
                                                                               capsys, monkeypatch):
    """Whatever makes calibrate() refuse (a flat or inverted Platt fit, see test_detectors), the command says so in
    one line, exits 1 and leaves no model behind for `forensics detect` to pick up."""
    import detectors.train
    from detectors.calibrate import CalibrationError

    def refuse(*args, **kwargs):
        raise CalibrationError("calibration refused: Platt slope a = -0.2 <= 0 (the detector scores these fakes "
                               "below the reals)")

    monkeypatch.setattr(detectors.train, "calibrate", refuse)
    out = tmp_path / "refused"
    assert _train(small_world, out, "--no-register", epochs=1) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "calibration refused" in err[0]
    assert not (out / "model").exists() and (out / "checkpoints" / "best").is_dir()
