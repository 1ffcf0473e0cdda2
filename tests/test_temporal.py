"""Clip detectors end to end: clip sampling, clips from the cache, the model's sensitivity to time, training
from real videos alone with a held-out kind, the bundle with its fusion, and `forensics detect` running a
frame and a clip detector together, on a small world rendered here with the real renderer, codec and MTCNN."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import mlflow
from mlflow import MlflowClient

from detectors import create_detector, save_detector
from detectors.aliases import CHALLENGER, MODEL_NAME
from detectors.bundle import FRAME, TEMPORAL, Bundle, load_bundle, save_bundle
from detectors.checkpoint import DetectorLoadError, load_detector
from detectors.clips import ClipSet, track_runs, windows
from detectors.fusion import fit_fusion
from detectors.registry import detector_kind
from detectors.temporal import ClipDetector
from forensics.cli.main import main as cli
from forensics.data.cache import FaceCache
from forensics.media import sample_frames
from forensics.media.sampling import clip_windows
from forensics.model_lookup import find_registered
from forensics.pipelines import DetectConfig, DetectPipeline
from forensics.report import write_report
from forensics.synthetic import WorldConfig, generate_world
from forensics.tracking import resolve_model

CLIP_LEN = 6
# Small enough to train in seconds: 64-px crops, 16 consecutive frames per video, flicker only (the kind a
# clip detector learns fastest), warp_jitter held out and reported. 10 epochs (about 20 s): test video AUC on
# flicker 0.875-1.0 over seeds 0-3; 4 epochs gave 0.69-0.94, too close to the bar of 0.7.
CONFIG = {"detector": "temporal-small", "input_size": 64, "crop_size": 64, "margin": 0.25, "frames_per_video": 16,
          "clip_len": CLIP_LEN, "temporal_kinds": ["flicker"], "held_out_kinds": ["warp_jitter"], "epochs": 10,
          "batch_size": 16, "lr": 0.003, "patience": None, "sbi": True, "augment": False, "eval_per_video": 4}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("temporal_world") / "synth"
    generate_world(root, WorldConfig(identities=10, videos_per_identity=2, frames=16, size=128, seed=11),
                   progress=False)
    return root


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """A clip detector trained through the CLI (its MLflow run in a store made here), and its cache."""
    out = tmp_path_factory.mktemp("temporal_run")
    preset = out / "preset.yaml"
    preset.write_text(yaml.safe_dump(CONFIG))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
        code = cli(["train", "detector", "--root", str(world), "--out", str(out / "run"), "--config", str(preset),
                    "--no-register", "--quiet", "--device", "cpu"])
    assert code == 0
    return out / "run" / "model", FaceCache.open(world / "face_cache_clips")


def _frame_model(directory, scale: float = 1.0):
    model = create_detector("mobilenetv3-small", input_size=64)
    return save_detector(directory, model, {"threshold": 0.5, "crop": {"size": 64, "margin": 0.25},
                                            "calibration": {"a": scale, "b": 0.0}})


# ---------------------------------------------------------------- sampling and clips

def test_clip_windows_are_runs_of_consecutive_frames_spread_over_the_video():
    picked = clip_windows(250, 32, 8)
    runs = np.split(np.array(picked), np.where(np.diff(picked) != 1)[0] + 1)
    assert [len(r) for r in runs] == [8, 8, 8, 8]
    assert picked[0] == 0 and picked[-1] == 249
    assert clip_windows(20, 32, 8) == list(range(20))           # a short video gives every frame
    assert clip_windows(100, 10, 8)[:8] == list(range(8))


def test_sample_frames_with_clip_len_decodes_consecutive_windows(world):
    video = sorted((world / "videos").glob("*.mp4"))[0]
    sample = sample_frames(video, n=8, clip_len=4)
    assert [f.index for f in sample.frames] == [0, 1, 2, 3, 12, 13, 14, 15]
    assert sample.complete


def test_track_runs_split_at_gaps_and_windows_cover_every_frame():
    faces = [{"frame": f, "track": 0} for f in (0, 1, 2, 3, 4, 10, 11, 12)] + [{"frame": 5, "track": 1}]
    runs = track_runs(faces)
    assert sorted(map(len, runs)) == [1, 3, 5]
    assert windows(list(range(5)), 3, 3) == [(0, 1, 2), (2, 3, 4)]   # the last window ends with the run
    assert windows([0, 1], 3, 1) == []


# ---------------------------------------------------------------- the model

def test_clip_detector_sees_time_and_not_what_every_frame_shares():
    torch.manual_seed(0)
    model = create_detector("temporal-small", input_size=64).eval()
    assert detector_kind("temporal-small") == "clip" and detector_kind("mobilenetv3-small") == "frame"
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, (1, 8, 64, 64, 3)).astype(np.uint8)
    clips = model.preprocess(base)
    with torch.no_grad():
        per_frame = model.frame_logits(clips)
        score = model(clips)
        shuffled = model(clips[:, torch.tensor([3, 0, 6, 1, 7, 2, 5, 4])])
        # The same picture added to every frame (a static seam, a face) changes nothing the model sees.
        static = model(clips + torch.randn(1, 1, 3, 64, 64))
    assert per_frame.shape == (1, 8) and score.shape == (1,)
    assert not torch.allclose(score, shuffled, atol=1e-4)
    assert torch.allclose(score, static, atol=1e-4)


# ---------------------------------------------------------------- training from real videos alone

def test_train_clip_detector_reports_held_out_kind_and_saves_a_loadable_clip_model(trained):
    model_dir, cache = trained
    loaded = load_detector(model_dir)
    assert isinstance(loaded.model, ClipDetector) and loaded.model.config.clip_len == CLIP_LEN
    trained_meta = loaded.meta["trained"]
    assert trained_meta["kinds"] == ["flicker"] and trained_meta["held_out_kinds"] == ["warp_jitter"]
    by_kind = loaded.meta["test_by_kind"]
    assert {"flicker", "warp_jitter"} <= set(by_kind)
    assert by_kind["flicker"]["auc"] > 0.7                  # learned the kind it trained on
    assert 0.0 <= by_kind["warp_jitter"]["auc"] <= 1.0 and by_kind["warp_jitter"]["n_fake"] > 0
    clips = ClipSet(cache, "train", CLIP_LEN)
    assert clips.refs and all(len(r.rows) == CLIP_LEN for r in clips.refs)


# ---------------------------------------------------------------- bundle and fusion

def test_bundle_round_trip_and_fusion_takes_the_most_confident_member(trained, tmp_path):
    model_dir, _ = trained
    frame_dir = _frame_model(tmp_path / "frame", scale=0.5)
    fusion = {"a": 2.0, "b": -1.0, "threshold": 0.6}
    save_bundle(tmp_path / "bundle", {FRAME: frame_dir, TEMPORAL: model_dir}, fusion)
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.fused and set(bundle.members) == {FRAME, TEMPORAL} and bundle.threshold == 0.6
    z_temporal = bundle.member_logit(TEMPORAL, 1.0)
    assert bundle.fuse({FRAME: 1.0, TEMPORAL: 1.0}) == pytest.approx(max(0.5, z_temporal))
    assert bundle.fuse({FRAME: 4.0, TEMPORAL: None}) == pytest.approx(2.0)     # a track with no clip
    save_bundle(tmp_path / "mean", {FRAME: frame_dir, TEMPORAL: model_dir}, {**fusion, "rule": "mean"})
    averaged = load_bundle(tmp_path / "mean")
    assert averaged.fuse({FRAME: 1.0, TEMPORAL: 1.0}) == pytest.approx((0.5 + z_temporal) / 2)
    assert averaged.fuse({FRAME: 4.0, TEMPORAL: None}) == pytest.approx(2.0)
    assert float(bundle.probability([0.5])[0]) == pytest.approx(0.5)            # its own Platt scale
    # A plain checkpoint is a bundle of one, scored by its own calibration.
    single = load_bundle(frame_dir)
    assert not single.fused and single.fuse({FRAME: 3.0}) == 3.0


def test_bundle_refuses_mislabelled_members_and_bad_fusion(trained, tmp_path):
    model_dir, _ = trained
    frame_dir = _frame_model(tmp_path / "frame")
    save_bundle(tmp_path / "swapped", {FRAME: model_dir, TEMPORAL: frame_dir}, {"a": 1, "b": 0, "threshold": .5})
    with pytest.raises(DetectorLoadError, match="listed as"):
        load_bundle(tmp_path / "swapped")
    (tmp_path / "nofusion").mkdir()
    save_bundle(tmp_path / "nofusion", {FRAME: frame_dir, TEMPORAL: model_dir}, {})
    with pytest.raises(DetectorLoadError, match="needs 'fusion'"):
        load_bundle(tmp_path / "nofusion")
    members = {FRAME: load_detector(frame_dir), TEMPORAL: load_detector(model_dir)}
    with pytest.raises(ValueError, match="refused"):      # fakes scored below reals would invert the verdict
        fit_fusion(members, {FRAME: np.array([2.0, 1.0, -1.0, -2.0]), TEMPORAL: np.array([2.0, 1.0, -1.0, -2.0])},
                   np.array([0, 0, 1, 1]))


def test_bundle_command_fits_fusion_on_validation_videos_and_detect_reports_both_scores(world, trained, tmp_path,
                                                                                        capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    model_dir, _ = trained
    frame_dir = _frame_model(tmp_path / "frame", scale=0.01)     # the clip detector carries the verdict here
    out = tmp_path / "bundle"
    code = cli(["bundle", "--frame", str(frame_dir), "--temporal", str(model_dir), "--root", str(world),
                "--out", str(out), "--device", "cpu", "--json", "--quiet"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["validation"]["videos"]["real"] > 0 and result["validation"]["videos"]["temporal"] > 0
    assert result["fusion"]["a"] > 0 and result["validation"]["kinds"] == ["flicker"]
    by_rule = result["fusion"]["validation_auc_by_rule"]
    assert set(by_rule) == {"max", "mean"} and by_rule[result["fusion"]["rule"]] == max(by_rule.values())
    assert result["registered_version"] == "1"

    video = sorted((world / "videos").glob("*.mp4"))[0]
    pipeline = DetectPipeline.from_path(out, DetectConfig(frames=16, clip_len=CLIP_LEN, device="cpu", thumbnails=2))
    analysis = pipeline.analyse(video)
    record = analysis.record.to_json()
    assert record["status"] == "ok"
    assert [m["role"] for m in record["detectors"]] == [FRAME, TEMPORAL]
    assert all(m["score"] is not None for m in record["detectors"])
    assert set(record["faces"][0]["detectors"]) == {FRAME, TEMPORAL}
    covered = [f for f in record["frame_scores"] if f["temporal"] is not None]
    assert len(covered) >= CLIP_LEN
    page = write_report(analysis.record.to_json(), analysis.thumbnails, tmp_path / "report")
    html = page.read_text()
    assert "clip detector" in html and "Temporal detector" in html

    # Registered as a version of the detector model: found by alias, scored as a bundle, carded, and a pyfunc.
    registered = find_registered(MODEL_NAME, CHALLENGER)
    assert registered == resolve_model(MODEL_NAME, CHALLENGER) and (registered / "bundle.json").is_file()
    assert cli(["detect", str(video), "--model", "challenger", "--frames", "16", "--clip-len", str(CLIP_LEN),
                "--quiet"]) == 0
    scanned = json.loads(capsys.readouterr().out)
    assert scanned["model"]["sha256"] == record["model"]["sha256"] and scanned["model"]["runtime"] == "torch"
    assert [m["score"] for m in scanned["detectors"]] == [m["score"] for m in record["detectors"]]
    assert cli(["models", "show", "challenger"]) == 0
    card = capsys.readouterr().out
    assert "Member: frame" in card and "Member: temporal" in card and "fused validation video AUC" in card
    assert "| Trained | members fused (" in card          # the bundle's own facts, not its frame member's
    version = MlflowClient().get_model_version(MODEL_NAME, "1")
    assert version.tags["kind"] == "bundle" and version.tags["sha256"] == record["model"]["sha256"]
    rows = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHALLENGER}").predict(pd.DataFrame({"path": [str(video)]}))
    assert rows.loc[0, "status"] == "ok" and json.loads(rows.loc[0, "record"])["detectors"]


def test_detect_refuses_a_clip_detector_alone_in_one_line(trained, tmp_path):
    model_dir, _ = trained
    with pytest.raises(DetectorLoadError, match="cannot judge stills"):
        DetectPipeline(Bundle.single(load_detector(model_dir)))
