"""The cross-dataset protocol suite end to end on tiny trees of every layout it reads (FF++ with its four methods,
DFD inside it, Celeb-DF v2, DFDC, DFDC Preview), made of real H.264 face videos, at toy size."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from benchmarks.inputs import apply_inputs
from benchmarks.runner import load_suite, run_suite
from benchmarks.suites import SuiteError
from benchmarks.suites.protocol import FFPP_METHODS
from forensics.synthetic import WorldConfig, generate_world

PAIRS = {"train": ["000_001", "002_003"], "val": ["720_721"], "test": ["900_901"]}


def _tree(root: Path, relatives: list[str], videos: list[Path]) -> Path:
    for k, relative in enumerate(relatives):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(videos[k % len(videos)], root / relative)
    return root


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    world = tmp_path_factory.mktemp("protocol_world")
    generate_world(world, WorldConfig(identities=6, videos_per_identity=2, frames=6, size=128, seed=11),
                   progress=False)
    videos = sorted((world / "videos").glob("*.mp4"))
    root = tmp_path_factory.mktemp("datasets")
    ids = [i for pairs in PAIRS.values() for pair in pairs for i in pair.split("_")]
    _tree(root / "FaceForensics++",
          [f"original_sequences/youtube/c23/videos/{i}.mp4" for i in ids]
          + [f"manipulated_sequences/{m}/c23/videos/{pair}.mp4" for m in FFPP_METHODS
             for pairs in PAIRS.values() for pair in pairs]
          + [f"original_sequences/actors/c23/videos/{a}.mp4" for a in ("01__talking", "02__walking", "03__sitting")]
          + [f"manipulated_sequences/DeepFakeDetection/c23/videos/{f}.mp4"
             for f in ("01_02__talking__ABCDEFGH", "02_03__walking__IJKLMNOP")], videos)
    cdf = _tree(root / "Celeb-DF-v2", ["Celeb-real/id0_0000.mp4", "Celeb-real/id1_0000.mp4",
                                      "Celeb-synthesis/id0_id1_0000.mp4", "Celeb-synthesis/id1_id0_0000.mp4",
                                      "YouTube-real/00000.mp4"], videos[3:])
    (cdf / "List_of_testing_videos.txt").write_text(
        "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n1 YouTube-real/00000.mp4\n"
        "0 Celeb-synthesis/id1_id0_0000.mp4\n")
    dfdc = _tree(root / "DFDC", ["a.mp4", "af.mp4", "b.mp4", "bf.mp4"], videos[5:])
    (dfdc / "metadata.json").write_text(json.dumps({
        "a.mp4": {"label": "REAL", "split": "test", "original": None},
        "af.mp4": {"label": "FAKE", "split": "test", "original": "a.mp4"},
        "b.mp4": {"label": "REAL", "split": "test", "original": None},
        "bf.mp4": {"label": "FAKE", "split": "test", "original": "b.mp4"}}))
    clips = {"original_videos/1/1_A_001.mp4": ("real", None), "method_A/1/2/1_2_A_001.mp4": ("fake", "1"),
             "original_videos/3/3_A_001.mp4": ("real", None), "method_B/3/4/3_4_B_001.mp4": ("fake", "3")}
    dfdcp = _tree(root / "DFDCP", list(clips), videos[7:])
    (dfdcp / "dataset.json").write_text(json.dumps({
        name: {"label": label, "set": "test", **({"target_id": target} if target else {})}
        for name, (label, target) in clips.items()}))
    return root


def test_train_on_ffpp_then_every_test_set_with_the_published_figures_beside(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    suite_file = tmp_path / "protocol-toy.yaml"
    suite_file.write_text(yaml.safe_dump({"name": "protocol-toy", "kind": "protocol", "preset": "cpu-small",
                                          "epochs": 1, "frames": 2, "detector_config": {"batch_size": 4}}))
    suite = apply_inputs(load_suite(suite_file), data_root=str(data_root))
    document = run_suite(suite, out_dir=tmp_path / "results", work_dir=tmp_path / "work", progress=False)
    assert document["status"] == "ok" and document["inputs"]["data root"]["from"] == "--data-root"
    rows = {row["name"]: row for row in document["results"]["rows"]}
    assert list(rows) == ["FF++ c23", "CDF", "DFD", "DFDC", "DFDCP"]
    expected = {"FF++ c23": (4, 2), "CDF": (2, 2), "DFD": (2, 3), "DFDC": (2, 2), "DFDCP": (2, 2)}
    for name, (fakes, reals) in expected.items():
        row = rows[name]
        assert row["status"] == "ok", row
        assert (row["video_n_fake"], row["video_n_real"]) == (fakes, reals), name
        for level in ("frame", "video_mean", "video"):
            low, high = row[f"{level}_auc_ci"]
            assert 0.0 <= low <= row[f"{level}_auc"] <= high <= 1.0
    text = Path(document["files"]["markdown"]).read_text()
    assert "| DFDCP | 2 / 2 |" in text and "SBI video 0.8551" in text and "Xception frame 0.9637" in text
    assert "DeepfakeBench (Yan et al." in text and "not rerun here" in text

    # A dataset that is not there is a row that says so; the finished rows are reused, not recomputed.
    shutil.move(data_root / "DFDCP", tmp_path / "elsewhere")
    try:
        again = run_suite(suite, out_dir=tmp_path / "results", work_dir=tmp_path / "work", progress=False)
    finally:
        shutil.move(tmp_path / "elsewhere", data_root / "DFDCP")
    assert again["results"]["rows"][-1]["status"] == "absent"
    assert again["results"]["rows"][0] == document["results"]["rows"][0]
    assert "train" not in again["seconds"]["stages"]


def test_without_datasets_the_suite_says_how_to_give_them(tmp_path):
    with pytest.raises(SuiteError) as excinfo:
        apply_inputs(load_suite("protocol"))
    message = str(excinfo.value)
    assert "\n" not in message and "--data-root DIR" in message and "FaceForensics++" in message
    with pytest.raises(SuiteError, match="reads no datasets"):
        apply_inputs(load_suite("speed"), data_root=str(tmp_path))
