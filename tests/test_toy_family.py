"""A third generator family, "tint" (tests/toy_family/), registered from its own folder: one co-evolution
round and one cross-generator cell run with it, and nothing outside that folder and this test names it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.runner import load_suite, run_suite
from detectors import create_detector, save_detector
from forensics.harness import CoevolveConfig, run_coevolution
from forensics.harness.panel import Panel
from forensics.synthetic import WorldConfig, generate_world
from generators.registry import FAMILIES, get_generator, load_generator

SIZE = 32


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    import toy_family                                   # registers "tint" with generators.registry

    root = tmp_path_factory.mktemp("toy")
    generate_world(root / "world", WorldConfig(identities=6, videos_per_identity=2, frames=6, size=128, seed=4,
                                               val_fraction=0.2, test_fraction=0.3), progress=False)
    checkpoint = toy_family.save_tint(root / "tint", toy_family.TintNet(), SIZE, 0.25)
    save_detector(root / "detector", create_detector("mobilenetv3-small", input_size=2 * SIZE),
                  {"threshold": 0.5, "calibration": {"a": 1.0, "b": 0.0}, "crop": {"size": SIZE, "margin": 0.25}})
    yield {"root": root, "world": root / "world", "checkpoint": checkpoint, "detector": root / "detector"}
    FAMILIES.remove(toy_family.NAME)


def test_the_toy_family_is_found_by_name_and_by_its_checkpoint(toy):
    assert "tint" in FAMILIES.names()
    family, loaded = load_generator(toy["checkpoint"])
    assert family is get_generator("tint") and (loaded.size, loaded.margin) == (SIZE, 0.25)


def test_one_coevolution_round_with_the_toy_family(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    config = CoevolveConfig.from_preset("mini", world=str(toy["world"]), detector=str(toy["detector"]),
                                        generators=[{"family": "tint", "checkpoint": str(toy["checkpoint"])}])
    (record,) = run_coevolution(config, tmp_path / "out", register=False, progress=False)

    move = record["moves"]["tint"]
    assert move["status"] in ("accepted", "refused") and set(move["quality"] or {}) >= (
        {"id_retrieval", "landmark_error", "reconstruction"} if move["status"] == "accepted" else set())
    panel = Panel.load(tmp_path / "out" / "panel.json")
    assert panel.fake_columns[0] == "tint@G0" and len(panel.fakes("tint@G0")) == len(panel.reals)
    made = [json.loads(line) for line in (tmp_path / "out" / "fakes" / "videos" / "recipes.jsonl").read_text()
            .splitlines()]
    assert made and all(m["recipe"]["generator"] == "tint" for m in made if m["status"] == "ok")
    assert record["promoted"] == record["decision"].startswith("champion:")
    if move["status"] == "accepted":                    # the evasion move was exported by the family itself
        assert json.loads((Path(move["checkpoint"]) / "config.json").read_text())["family"] == "tint"


def test_one_cross_generator_cell_with_the_toy_family(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    suite = tmp_path / "toy.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "toy", "kind": "cross_generator", "description": "tint only", "world": str(toy["world"]),
        "generators": {"tint": str(toy["checkpoint"])}, "reals": {"train": 3, "val": 1, "test": 2},
        "fakes": {"tint": {"per_split": 2}}, "train_on": ["tint"], "test_on": ["tint"], "epochs": 1,
        "bootstrap": False, "detector_config": {"batch_size": 16, "frames_per_video": 3, "crop_size": 64,
                                                "eval_batch_size": 64}}))
    document = run_suite(load_suite(suite), out_dir=tmp_path / "results", work_dir=tmp_path / "work", device="cpu",
                         progress=False)

    assert document["failed_cells"] == []
    cell = document["results"]["rows"]["tint"]["test"]["tint"]["video"]
    assert cell["n_fake"] == 2 and cell["n_real"] >= 1 and cell["auc"] is not None
    made = [json.loads(line) for line in (tmp_path / "work" / "fakes" / "recipes.jsonl").read_text().splitlines()]
    assert {m["status"] for m in made} == {"ok"} and all(m["recipe"]["generator"] == "tint" for m in made)
