"""The detector recipe end to end on a small rendered world: cache -> train -> calibrate -> test -> save ->
register, through the real CLI, the real loop and a real MLflow sqlite store."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from safetensors.numpy import load_file

import detectors.train
from detectors import load_detector
from detectors.calibrate import CalibrationError
from detectors.footage import training_footage
from forensics.cli.main import main
from forensics.provenance import REAL_FACES, SYNTHETIC_ONLY
from forensics.synthetic import WorldConfig, generate_world
from forensics.tracking import resolve_model


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
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
    preset = out.parent / f"{out.name}-preset.yaml"
    preset.write_text(yaml.safe_dump(config or LEARNS))
    return main(["train", "detector", "--root", str(small_world), "--out", str(out), "--config", str(preset),
                 "--epochs", str(epochs), "--batch-size", "16", "--quiet", *extra])


def test_train_detector_saves_calibrated_model_and_logs_to_mlflow(small_world, tmp_path, store, capsys):
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

    # It never saw a real face, and says so wherever it scores: the checkpoint, every record, the report.
    assert meta["footage"]["trained_on"] == SYNTHETIC_ONLY and meta["footage"]["real_videos"] > 0
    video = sorted((small_world / "videos").glob("*.mp4"))[0]
    assert main(["detect", str(video), "--jsonl", str(tmp_path / "r.jsonl"), "--report", str(tmp_path / "rep"),
                 "--quiet"]) in (0, 1)
    (record,) = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert record["model"]["trained_on"] == SYNTHETIC_ONLY
    page = next(p for p in (tmp_path / "rep").glob("*.html") if p.name != "index.html").read_text()
    assert "Not validated on real footage" in page


def test_training_footage_tells_the_synthetic_world_from_real_footage(small_world, tmp_path):
    class Entries:                       # the one FaceCache method training_footage reads
        def __init__(self, sources):
            self.sources = sources

        def entries(self, split=None):
            return [type("E", (), {"source": str(s), "label": "real"})() for s in self.sources]

    world_videos = sorted((small_world / "videos").glob("*.mp4"))[:2]
    assert training_footage(Entries(world_videos))["trained_on"] == SYNTHETIC_ONLY
    elsewhere = tmp_path / "footage" / "clip.mp4"
    assert training_footage(Entries([*world_videos, elsewhere])) == {"real_videos": 3, "synthetic_videos": 2,
                                                                     "trained_on": REAL_FACES}
    assert training_footage(Entries([]))["trained_on"] is None


def test_train_detector_resumes_finished_run_without_retraining(small_world, tmp_path, store):
    out = tmp_path / "run"
    assert _train(small_world, out, "--no-register") == 0
    state = json.loads((out / "checkpoints" / "last" / "state.json").read_text())["run"]
    assert state["next_epoch"] == EPOCHS
    weights = load_file(out / "model" / "model.safetensors")
    assert _train(small_world, out, "--no-register") == 0
    assert json.loads((out / "checkpoints" / "last" / "state.json").read_text())["run"] == state
    again = load_file(out / "model" / "model.safetensors")
    assert again.keys() == weights.keys()
    assert all(np.array_equal(again[k], weights[k]) for k in weights)


def test_train_detector_usage_errors_exit_2(small_world, tmp_path, store, capsys):
    assert main(["train", "detector", "--root", str(small_world), "--arch", "nope"]) == 2
    assert "unknown architecture 'nope'" in capsys.readouterr().err
    assert main(["train", "detector", "--root", str(tmp_path / "absent"), "--dataset", "ffpp"]) == 2
    assert main(["train", "detector", "--preset", "no-such-preset"]) == 2


def test_a_refused_calibration_stops_training_in_one_line_and_saves_no_model(small_world, tmp_path, store,
                                                                               capsys, monkeypatch):
    """Whatever makes calibrate() refuse (a flat or inverted Platt fit, see test_detectors), the command says so in
    one line, exits 1 and leaves no model behind for `forensics detect` to pick up."""
    def refuse(*args, **kwargs):
        raise CalibrationError("calibration refused: Platt slope a = -0.2 <= 0 (the detector scores these fakes "
                               "below the reals)")

    monkeypatch.setattr(detectors.train, "calibrate", refuse)
    out = tmp_path / "refused"
    assert _train(small_world, out, "--no-register", epochs=1) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "calibration refused" in err[0]
    assert not (out / "model").exists() and (out / "checkpoints" / "best").is_dir()


def test_a_dataset_too_small_to_validate_on_is_one_line_and_no_failed_run(small_world, tmp_path, store, capsys):
    """Four videos in a folder dataset leave the validation split one class: the command says so in one line,
    before any MLflow run is opened (none is left FAILED behind)."""
    videos = sorted((small_world / "videos").glob("*.mp4"))[:4]
    for label, group in (("real", videos[:2]), ("fake", videos[2:])):
        (tmp_path / "four" / label).mkdir(parents=True)
        for video in group:
            shutil.copy(video, tmp_path / "four" / label / video.name)
    code = main(["train", "detector", "--root", str(tmp_path / "four"), "--epochs", "1", "--out",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "the validation split has no" in err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "out").exists()


def test_the_borrowed_validation_split_does_not_depend_on_where_the_dataset_lives():
    """A dataset without a validation split lends ~15% of its train videos; the same files under another folder
    (another machine, a CI checkout) lend the same ones, so a run is reproducible anywhere."""
    names = [f"{label}/clip_{i:03d}.mp4" for label in ("real", "fake") for i in range(40)]
    here = detectors.train.held_out_videos([f"/home/me/data/{n}" for n in names], seed=0)
    there = detectors.train.held_out_videos([f"/check/work/x/data/{n}" for n in names], seed=0)
    assert 0 < len(here) < len(names) // 2
    assert {p.removeprefix("/home/me/data/") for p in here} == {p.removeprefix("/check/work/x/data/") for p in there}
    assert detectors.train.held_out_videos([f"/a/{n}" for n in names], seed=1) != {f"/a/{p[14:]}" for p in here}
