"""`forensics models list | show | card | promote` against a real sqlite registry holding two versions."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from detectors import create_detector, save_detector
from detectors.promote import CHALLENGER, CHAMPION, MODEL_NAME, register, resolve
from forensics.cli.main import main
from forensics.provenance import REAL_FACES, SYNTHETIC_ONLY
from forensics.tracking import start_run


def _detector(folder: Path, trained_on: str, test_auc: float) -> Path:
    meta = {"threshold": 0.6, "crop": {"size": 64, "margin": 0.25},
            "footage": {"real_videos": 12, "synthetic_videos": 12 if trained_on == SYNTHETIC_ONLY else 0,
                        "trained_on": trained_on},
            "metrics": {"val/video_auc": 0.97, "test/video_auc": test_auc, "test/frame_auc": 0.9},
            "trained": {"finished": "2026-12-07T06:00:00+0000", "epochs_run": 3, "config": {"lr": 0.001}},
            "test_by_kind": {"sbi": {"auc": test_auc, "auc_ci": [0.8, 0.99], "n_fake": 10, "n_real": 10}}}
    return save_detector(folder, create_detector("mobilenetv3-small", input_size=64), meta)


@pytest.fixture()
def registry(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    for trained_on, auc, alias in ((SYNTHETIC_ONLY, 0.912, CHAMPION), (REAL_FACES, 0.934, CHALLENGER)):
        with start_run("detectors", run_name=f"det-{alias}") as run:
            register(run, _detector(tmp_path / f"model-{alias}", trained_on, auc), alias=alias)
    return tmp_path


def test_list_shows_every_version_with_its_footage_and_figure(registry, capsys):
    assert main(["models", "list", "--json"]) == 0
    versions = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["aliases"]) for v in versions] == [("2", [CHALLENGER]), ("1", [CHAMPION])]
    assert "trained on real faces; test video AUC 0.934" in versions[0]["card"]
    assert "trained on synthetic faces only; test video AUC 0.912" in versions[1]["card"]
    assert main(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("v2") and CHALLENGER in lines[0] and lines[1].startswith("v1")


def test_show_and_card_say_what_the_model_saw_and_scored(registry, capsys):
    assert main(["models", "show", CHAMPION]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("# Model card: mobilenetv3-small version 1")
    assert "never saw a real face" in shown and "| test video AUC (unseen identities) | 0.912 |" in shown
    assert "- sbi: 0.912 [0.800, 0.990] (10 fake / 10 real videos)" in shown
    assert main(["models", "card", "1"]) == 0 and capsys.readouterr().out == shown
    assert main(["models", "show", f"models:/{MODEL_NAME}@{CHALLENGER}", "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["trained_on"] == REAL_FACES and card["registered"]["version"] == "2" and card["threshold"] == 0.6
    assert main(["models", "show", str(registry / f"model-{CHAMPION}")]) == 0       # a folder: the card, no registry facts
    assert "Registered | no (a folder)" in capsys.readouterr().out


def test_a_champion_by_hand_needs_a_reason_that_stays_on_the_version(registry, capsys):
    before = resolve(CHAMPION)
    assert main(["models", "promote", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--reason" in err and resolve(CHAMPION) == before
    assert main(["models", "promote", "2", "--reason", "better on our casework set"]) == 0
    assert "version 2 is now `champion`" in capsys.readouterr().out
    assert resolve(CHAMPION) != before and (resolve(CHAMPION) / "config.json").is_file()
    assert main(["models", "show", CHAMPION]) == 0
    assert "promotion.manual.champion = better on our casework set" in capsys.readouterr().out
    for bad, said in ((["models", "show", "99"], "no such registered version"),
                      (["models", "promote", "99", "--alias", "challenger"], "not registered")):
        assert main(bad) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and said in err


def test_an_empty_folder_lists_nothing_and_creates_no_store(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["models", "list"]) == 0
    assert "nothing is registered" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
