"""The demo's miniature: the same path `make demo` runs (render -> detector -> generators -> co-evolution ->
champion -> detect a real and a fake video), with every stage cut to seconds."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from forensics.cli.main import main
from forensics.tracking import resolve_model

pytestmark = pytest.mark.slow


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_demo_miniature_runs_the_whole_path(store, capsys):
    assert main(["demo", "--preset", "mini", "--out", str(store / "demo")]) == 0
    printed = capsys.readouterr().out
    assert "forensics ui" in printed and "decision:" in printed and "panel after the last round" in printed

    out = store / "demo"
    rounds = [json.loads(line) for line in (out / "coevolve" / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [1]
    assert set(rounds[0]["moves"]) == {"faceswap"}                  # the animation model is held out: only scored
    summary = json.loads((out / "coevolve" / "summary.json").read_text())
    assert "animation" in summary["panel_columns"] and "faceswap@G0" in summary["panel_columns"]

    # The MLflow store holds the parent run with its nested round, and the champion is the game's verdict.
    client = MlflowClient()
    experiment = client.get_experiment_by_name("coevolve")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 1
    assert {"panel_champion/union", "panel_champion/animation", "promotion/promoted"} <= set(children[0].data.metrics)
    # The clip detector was bundled with the game's champion, registered as a version, and judged on the panel
    # through the product path: the champion is the bundle only if that gate promoted it.
    bundle = json.loads((out / "bundle.json").read_text())
    gate = bundle["gate"]
    assert gate["videos"]["panel"] == len(json.loads((out / "coevolve" / "panel.json").read_text())["videos"])
    assert {"union", "faceswap@G0"} <= set(gate["auc"]["candidate"]) and gate["decision"]["reason"]
    version = client.get_model_version("forensics-detector", bundle["version"])
    assert version.tags["kind"] == "bundle" and version.tags["promotion"] == gate["decision"]["reason"][:500]
    assert "frame + clip bundle:" in printed
    champion = resolve_model("forensics-detector", "champion")
    if bundle["promoted"]:
        assert (champion / "bundle.json").is_file()
    else:
        assert (champion / "model.safetensors").read_bytes() == \
            (Path(summary["champion"]["path"]) / "model.safetensors").read_bytes()

    # forensics detect (no --model: the champion) scanned a panel real and a panel fake made from it.
    panel = json.loads((out / "coevolve" / "panel.json").read_text())
    by_path = {v["path"]: v for v in panel["videos"]}
    records = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["status"] in ("ok", "no_face") for r in records)
    real, fake = (by_path[str(Path(r["path"]).resolve())] for r in records)
    assert real["column"] == "real" and fake["column"].startswith("faceswap@G") and fake["target"] == real["path"]
    assert all(r["model"]["sha256"] for r in records if r["status"] == "ok")
