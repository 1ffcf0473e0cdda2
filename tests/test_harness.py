"""The co-evolution game end to end on a miniature world: one round through the product path (state, panel,
records, MLflow parent + nested run, the gate's decision and the registry), resume after Ctrl-C, a tracking
server that dies mid-round, the generator's move (the hinge lowers the champion's logits, and adds nothing
once fakes are called real; the quality budget refuses a move; the surrogate shows fakes as the product path
crops them) and the command line's one-line errors.

Everything is real and small: a 6-identity world (3 train, 1 validation, 2 test identities), 32-px generators
trained for a few steps (the face swap on two train identities), a detector on 32-px crops read at 64 px
trained on self-blends for a few seconds. The rules one by one (gate, hinge, panel) are in test_game_rules.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mlflow import MlflowClient
from PIL import Image
from safetensors.numpy import load_file

from detectors import load_detector, save_detector
from detectors.card import card_summary, model_card
from detectors.task import DetectorTrainConfig
from detectors.train import train_detector
from forensics.cli.main import main
from forensics.data.cache import CacheConfig
from forensics.data.prepare import cache_dataset
from forensics.figures import caption_strip_height
from forensics.harness import CoevolveConfig, run_coevolution
from forensics.harness.evasion import evade, g0_quality
from forensics.harness.fakes import FakeStore, WorldRoles
from forensics.harness.moves import MoveOrder, play_detector_move
from forensics.harness.panel import Panel
from forensics.harness.quality import quality_selection
from forensics.harness.rounds import Harness
from forensics.harness.state import STEPS
from forensics.io import read_jsonl
from forensics.media import probe
from forensics.probes import ProbeTrainConfig, train_probes
from forensics.synthetic import WorldConfig, generate_world
from forensics.synthetic.faceset import load_faceset
from forensics.tracking import offline as off
from forensics.tracking import list_model_versions, model_version_dir, resolve_model
from forensics.training import Trainer
from generators.animation import AnimationConfig, train_animation
from generators.evasion import ProductSurrogate
from generators.faceswap import FaceswapConfig, FaceswapModelConfig, make_task, save_generator
from generators.faceswap.model import FaceswapAutoencoder
from generators.family import FakeBatch
from generators.registry import get_generator
from test_tracking import empty_db, kill, mlflow_server, store  # noqa: F401  (fixtures reused)

SIZE = 32
FACESWAP = dict(size=SIZE, encoder_channels=8, bottleneck_channels=32, latent_dim=32, decoder_channels=32,
                disc_channels=8, epochs=1, steps_per_epoch=12, batch_size=4, lr=2e-3, adv_weight=0.0, eval_frames=4,
                preview=2, device="cpu", seed=0)
ANIMATION = dict(size=SIZE, num_kp=5, head_kernel=3, kp_block_expansion=8, kp_num_blocks=2, kp_max_features=32,
                 dm_block_expansion=8, dm_num_blocks=2, dm_max_features=32, gen_block_expansion=8, gen_max_features=32,
                 gen_down_blocks=2, gen_bottleneck_blocks=1, disc_block_expansion=8, disc_num_blocks=2,
                 disc_max_features=32, feature_widths=[8, 16], loss_scales=[1.0, 0.5], batch_size=8, pairs_per_video=6,
                 lr_generator=1e-3, epochs=1, adversarial_start_epoch=5, eval_frames=4, eval_videos=4, device="cpu")


@pytest.fixture(scope="session")
def parts(tmp_path_factory):
    """World, generators (the face swap on two train identities) and a detector taught self-blends."""

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("harness")
    world = root / "world"
    generate_world(world, WorldConfig(identities=6, videos_per_identity=2, frames=6, size=128, seed=3,
                                      val_fraction=0.2, test_fraction=0.34), progress=False)
    faces = load_faceset(world, size=SIZE, margin=0.25)
    train_ids = sorted(set(faces.identity[faces.split == "train"].tolist()))
    assert len(train_ids) == 3 and len(set(faces.identity[faces.split == "test"].tolist())) == 2

    swap = FaceswapConfig(world=str(world), identity_a=train_ids[0], identity_b=train_ids[1], **FACESWAP)
    task = make_task(swap)
    Trainer(task, swap.train_config(root / "faceswap", progress=False)).fit()
    task.export(root / "faceswap")
    train_animation(AnimationConfig(world=str(world), **ANIMATION), root / "animation", faces=faces,
                    sample_video=False, progress=False)

    config = DetectorTrainConfig(detector="mobilenetv3-small", input_size=2 * SIZE, crop_size=SIZE, margin=0.25,
                                 frames_per_video=3, epochs=6, batch_size=8, lr=3e-3, patience=None, device="cpu")
    cached = cache_dataset(world, CacheConfig(frames=3, crop_size=SIZE, margin=0.25, device="cpu"),
                           cache_dir=root / "cache", progress=False)
    train_detector(config, cached.cache, root / "detector", register_as=None, progress=False, keep_refused=True)
    return {"root": root, "world": world, "faces": faces, "train_ids": train_ids,
            "faceswap": root / "faceswap", "animation": root / "animation", "detector": root / "detector" / "model"}


def mini_config(parts, **overrides):
    generators = [{"family": "faceswap", "checkpoint": str(parts["faceswap"])},
                  {"family": "animation", "checkpoint": str(parts["animation"])}]
    overrides = {"held_out_family": "animation", "detector": str(parts["detector"]), **overrides}
    return CoevolveConfig.from_preset("mini", world=str(parts["world"]), generators=generators, **overrides)


def client_for(uri: str):
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def coevolve_runs(client) -> tuple:
    experiment = client.get_experiment_by_name("coevolve")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def artifact_files(client, run_id: str, path: str | None = None) -> set[str]:
    out = set()
    for info in client.list_artifacts(run_id, path):
        out |= artifact_files(client, run_id, info.path) if info.is_dir else {info.path}
    return out


COLUMNS = ["sbi", "animation", "faceswap@G0", "union"]
# MLflow names take no "@": a column faceswap@G0 is logged as faceswap_at_G0.
ROUND_METRICS = [f"panel_champion/{c.replace('@', '_at_')}" for c in COLUMNS] + [
    "move/faceswap/accepted", "evasion_weight/faceswap", "promotion/promoted", "quality/faceswap/id_retrieval",
    "surrogate_gap/faceswap/called_real_gap"]


# ---------------------------------------------------------------- one round, end to end

def test_one_round_on_the_product_path_with_panel_gate_and_registry(parts, store):
    out = store / "coevolve"
    config = mini_config(parts)
    (record,) = run_coevolution(config, out, register=True, progress=False)

    state = json.loads((out / "state.json").read_text())
    assert state["rounds"]["1"]["done"] and set(state["rounds"]["1"]["steps"]) == set(STEPS)
    assert read_jsonl(out / "rounds.jsonl") == [record]

    # The panel: the test split's real videos, one fake per real for every column, frozen by hash.
    panel = Panel.load(out / "panel.json")
    panel.verify()
    test_reals = {r.path for r in WorldRoles.of(parts["world"], 1, 1).test}
    assert {v.path for v in panel.reals} == test_reals
    move = record["moves"]["faceswap"]
    version = move["to_version"]
    assert version == (1 if move["status"] == "accepted" else 0)
    expected = ["animation", "faceswap@G0"] + (["faceswap@G1"] if version == 1 else [])
    assert panel.fake_columns == expected
    for column in expected:
        fakes = panel.fakes(column)                # one per test real, but for fakes showing no face
        assert len(fakes) + len(panel.no_face.get(column, [])) == len(test_reals) and len(fakes) >= 2
        assert {v.target for v in fakes} <= test_reals
        assert all(config.crf[0] <= v.crf <= config.crf[1] for v in fakes)
        assert probe(fakes[0].path).width == probe(fakes[0].target).width          # full frames, not crops
    assert state["setup"]["panel_hash"] == panel.digest(["real", "animation", "faceswap@G0"])

    # Training and validation fakes never show the panel's videos, and each round makes its own.
    made = read_jsonl(out / "fakes" / "fakes.jsonl")
    assert all(f["target"] not in test_reals for f in made if f["role"] != "panel")
    before = state["setup"]["fakes"]["faceswap"]["videos"]
    now = state["rounds"]["1"]["steps"]["fakes"]["made"]["faceswap"]["videos"]
    for role, count in (("fit", config.fit_fakes), ("val", config.val_fakes)):
        assert len(now[role]) == len(before[role]) == count and not set(now[role]) & set(before[role])

    # Every detector on every column, with intervals; the decision is the gate's.
    matrix = state["rounds"]["1"]["steps"]["panel"]["matrix"]
    candidate = record["candidate"]
    assert set(matrix) == {"D0"} | ({candidate} if candidate else set())
    for row in matrix.values():
        assert list(row) == ["sbi", *expected, "union"]
        for cell in row.values():
            low, high = cell["ci"]
            assert low <= cell["auc"] <= high and cell["n_real"] == len(test_reals)
    assert record["promoted"] == record["decision"].startswith("champion:")
    if record["refused_calibration"]:
        assert candidate is None and record["decision"].startswith("refused:")

    summary = json.loads((out / "summary.json").read_text())
    assert summary["rounds"] == [record] and summary["panel_columns"] == ["sbi", *expected, "union"]
    champion_dir = out / "round_01" / "detector" if record["promoted"] else parts["detector"]
    assert Path(summary["champion"]["path"]) == champion_dir
    champion = resolve_model("forensics-detector", "champion")
    assert (champion / "model.safetensors").read_bytes() == (champion_dir / "model.safetensors").read_bytes()
    if candidate and not record["promoted"]:
        challenger = resolve_model("forensics-detector", "challenger")
        assert load_detector(challenger).meta["coevolve"]["round"] == 1
    if candidate:      # its model card carries the gate's decision and its panel AUC, read from the round's run
        entry = next(v for v in list_model_versions("forensics-detector") if v["run"].get("promotion"))
        card = model_card(model_version_dir("forensics-detector", entry["version"]), entry)
        assert card["gate"] == record["decision"][:500] and card["training"]["coevolve_round"] == 1
        assert card["figures"]["co-evolution panel video AUC, all fakes"] == pytest.approx(
            record["candidate_row"]["union"]["auc"])
        # detect sees only the folder: its one-line card falls back to the candidate's validation AUC
        alone = model_card(model_version_dir("forensics-detector", entry["version"]))
        assert card_summary(alone).endswith(f"validation video AUC {alone['figures']['validation video AUC']:.3f}")

    client = client_for(os.environ["MLFLOW_TRACKING_URI"])
    (parent,), (child,) = coevolve_runs(client)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id == summary["parent_run_id"]
    assert parent.info.status == child.info.status == "FINISHED"
    assert child.data.tags["promotion"] == record["decision"][:500]
    assert set(ROUND_METRICS) <= set(child.data.metrics) and set(ROUND_METRICS) <= set(parent.data.metrics)
    assert {"panel/matrix_round_01.png", "panel/matrix_round_01.json", "round.json"} \
        <= artifact_files(client, child.info.run_id)
    assert any(k.startswith("detector/") for k in child.data.metrics)      # the move's training curve

    # The game's story comes first in the MLflow chart view (sections sort by name) and repeats the panel's numbers.
    metrics = parent.data.metrics
    assert min(k.rsplit("/", 1)[0] for k in metrics if "/" in k) == "adversarial_game"
    assert metrics["adversarial_game/champion_union_auc"] == pytest.approx(metrics["panel_champion/union"])
    assert metrics["adversarial_game/promoted"] == float(record["promoted"])
    assert metrics["adversarial_game/faceswap_evasion_took"] == pytest.approx(
        record["recovery"]["faceswap"]["evasion_took"])
    # Step images on the parent (the UI's slider over rounds): the matrix, and the new generator's fakes.
    images = {p for p in artifact_files(client, parent.info.run_id, "images")}
    for key in ("panel matrix", "panel roc", "new fakes~faceswap"):   # step 0: D0 and G0, where the slider opens
        (png,) = [p for p in images if p.startswith(f"images/{key}+step+0+") and p.endswith(".png")]
        (png,) = [p for p in images if p.startswith(f"images/{key}+step+1+") and p.endswith(".png")]
    assert client.get_metric_history(parent.info.run_id, "adversarial_game/champion_union_auc")[0].step == 0
    grid = np.asarray(Image.open(client.download_artifacts(parent.info.run_id, png)))
    assert grid.shape[0] == 2 * (112 + caption_strip_height(112))          # real faces above, their fakes below


# ---------------------------------------------------------------- resume after Ctrl-C

def test_interrupted_run_resumes_at_the_step_it_was_in(parts, tmp_path):
    (tmp_path / "offline").mkdir()
    preset = tmp_path / "experiment.yaml"
    preset.write_text(yaml.safe_dump(mini_config(parts).to_dict()))
    out = tmp_path / "out"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "FORENSICS_MLFLOW_OFFLINE_DIR": str(tmp_path / "offline"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "forensics.cli.main", "coevolve", "--preset", str(preset), "--out", str(out),
               "--no-register"]
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an inherited
    # SIG_IGN; CI may run us that way, so the child gets Ctrl-C back as a terminal would give it.
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 600
    interrupted = False
    while proc.poll() is None and time.monotonic() < deadline:
        if not interrupted:
            try:
                state = json.loads((out / "state.json").read_text())
            except (OSError, ValueError):
                state = {}
            interrupted = "fakes" in state.get("rounds", {}).get("1", {}).get("steps", {})
        if interrupted:
            # Like a user pressing Ctrl-C again if the first one has not stopped it after 3 s.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                continue
        time.sleep(0.02)
    _, err = proc.communicate(timeout=120)
    # 130 from the handler; a second Ctrl-C during the shutdown that follows ends the process by SIGINT itself,
    # which a shell reports as 130 too
    assert proc.returncode in (130, -signal.SIGINT), err[-2000:]
    assert "interrupted; finished work has been kept" in err
    state = json.loads((out / "state.json").read_text())
    first = state["rounds"]["1"]
    assert not first["done"] and {"generators", "fakes"} <= set(first["steps"])
    kept = {step: record["finished"] for step, record in first["steps"].items()}
    panel = (out / "panel.json").read_bytes()

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "round 1/1 fakes: finished earlier, skipped" in again.stderr
    state = json.loads((out / "state.json").read_text())
    assert state["rounds"]["1"]["done"]
    assert {step: state["rounds"]["1"]["steps"][step]["finished"] for step in kept} == kept
    assert (out / "panel.json").read_bytes() == panel                  # the resumed run added no column
    assert "decision:" in again.stdout and "panel after the last round" in again.stdout

    client = client_for(env["MLFLOW_TRACKING_URI"])
    (parent,), (child,) = coevolve_runs(client)                        # the rerun re-entered the same runs
    assert child.info.run_name == "round-01" and child.info.status == "FINISHED"

    other = mini_config(parts, seed=5)
    preset.write_text(yaml.safe_dump(other.to_dict()))
    refused = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "different co-evolution config" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_under_torchrun_every_rank_trains_the_detector_move_and_rank_0_alone_plays(parts, tmp_path, empty_db):
    shutil.copy(empty_db, tmp_path / "mlflow.db")
    preset = tmp_path / "experiment.yaml"
    preset.write_text(yaml.safe_dump(mini_config(parts).to_dict()))
    out = tmp_path / "out"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "OMP_NUM_THREADS": "1",
           "FORENSICS_MLFLOW_OFFLINE_DIR": str(tmp_path / "offline")}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "forensics.cli.main", "coevolve", "--preset", str(preset), "--out", str(out),
                           "--no-register"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    state = json.loads((out / "state.json").read_text())
    move = state["rounds"]["1"]["steps"]["detector"]
    assert state["rounds"]["1"]["done"] and move["pool"]["processes"] == 2 and move["epochs_run"] >= 1
    # One game: one report, one round record, one parent and one round run in MLflow.
    assert proc.stdout.count("panel after the last round") == 1 and len(read_jsonl(out / "rounds.jsonl")) == 1
    parents, children = coevolve_runs(client_for(env["MLFLOW_TRACKING_URI"]))
    assert len(parents) == 1 and len(children) == 1 and children[0].info.status == "FINISHED"

    # The same move in one process, from the same order: the two ranks' batches hold exactly its samples
    # (tests/test_ddp_jobs.py); BatchNorm sees half batches per rank, so the figures agree within a tolerance.
    order = MoveOrder(start=str(parts["detector"]), out=str(tmp_path / "single"), checkpoints=str(tmp_path / "ckpt"),
                      cache=str(out / "cache"),
                      cache_config=json.loads((out / "cache" / "settings.json").read_text())["config"],
                      fakes={v.path: v.target for v in FakeStore(out / "fakes").videos(role="fit")},
                      seed=mini_config(parts).seed * 1009 + 1, batch_size=8, sbi_fraction=0.3, epochs=2, patience=1,
                      lr=1e-3, device="cpu", meta={})
    single, pool = play_detector_move(order, progress=False)
    assert pool == {**move["pool"], "processes": 1}
    assert single.epochs_run == move["epochs_run"] and len(move["train_loss"]) == move["epochs_run"]
    # The first epoch starts from the same weights on the same samples: its mean training loss differs only by
    # what per-rank BatchNorm statistics change.
    first = single.history[0]["train/loss"]
    assert move["train_loss"][0] == pytest.approx(first, rel=0.15), (move["train_loss"], first)


def test_a_clip_detector_plays_the_game_on_clips(parts, tmp_path):
    """D0 a clip detector: the game caches windows of its clip length, the generator's hinge is on clip logits
    of runs of consecutive fakes, the detector's move trains on the game's fake clips beside temporal
    pseudo-fakes of the kinds D0 trained on, and the panel scores every video by its clips."""
    cached = cache_dataset(parts["world"], CacheConfig(frames=6, crop_size=SIZE, margin=0.25, device="cpu",
                                                       clip_len=3), cache_dir=tmp_path / "clip_cache", progress=False)
    config = DetectorTrainConfig(detector="temporal-small", input_size=2 * SIZE, crop_size=SIZE, margin=0.25,
                                 frames_per_video=6, clip_len=3, temporal_kinds=["flicker"],
                                 held_out_kinds=["warp_jitter"], epochs=2, batch_size=4, lr=3e-3, patience=None,
                                 device="cpu")
    d0 = train_detector(config, cached.cache, tmp_path / "temporal", register_as=None, progress=False,
                        keep_refused=True).model_dir
    out = tmp_path / "coevolve"
    (record,) = run_coevolution(mini_config(parts, detector=str(d0), frames=6), out, register=False, progress=False)
    state = json.loads((out / "state.json").read_text())
    steps = state["rounds"]["1"]["steps"]
    settings = json.loads((out / "cache" / "settings.json").read_text())["config"]
    assert settings["clip_len"] == 3

    # The generator moved against clip logits (the clip detector takes nothing but clips [B, T, 3, S, S]): its hinge
    # saw the champion's verdict on runs of its fakes.
    attempt = steps["generators"]["moves"]["faceswap"]["attempts"][0]
    assert np.isfinite(attempt["fake_logit"]) and 0.0 <= attempt["called_real"] <= 1.0
    gap = steps["panel"]["surrogate_gap"]["faceswap"]
    assert np.isfinite(gap["surrogate_mean_logit"]) and np.isfinite(gap["product_mean_logit"])

    # The detector's move trained on clips: the game's fit fakes as clips, its own kinds kept for the next move.
    move = steps["detector"]
    assert move["pool"]["clip_len"] == 3 and move["pool"]["fake_clips"] >= 1 and move["epochs_run"] >= 1
    if move["candidate"]:
        candidate = load_detector(move["candidate"])
        assert candidate.kind == "clip" and candidate.meta["trained"]["kinds"] == ["flicker"]
        assert candidate.meta["trained"]["held_out_kinds"] == ["warp_jitter"]

    # The panel scored every video by its clips, D0 and the candidate alike, on every column.
    matrix = steps["panel"]["matrix"]
    assert set(matrix) == ({"D0", "D1"} if move["candidate"] else {"D0"})
    for row in matrix.values():
        assert set(COLUMNS) <= set(row) and all(0.0 <= row[c]["auc"] <= 1.0 for c in COLUMNS)
    assert record["promotion"]["decision"]["reason"]


# ---------------------------------------------------------------- the generator's move

@pytest.fixture(scope="session")
def move_parts(parts, tmp_path_factory):
    """What a face-swap move needs: its crops, the probes, G0's quality and the fixed quality selection."""

    family = get_generator("faceswap")
    loaded = family.load(parts["faceswap"])
    ids = family.game_identities(loaded, parts["train_ids"])
    faces = parts["faces"]
    crops = faces.select(np.isin(faces.identity, ids) & (faces.split == "train"))
    probes = train_probes(parts["world"], tmp_path_factory.mktemp("probes"), config=ProbeTrainConfig(
        size=SIZE, margin=0.25, epochs=1, extra_scenes=0, device="cpu"))[:2]
    selection = quality_selection(family, "faceswap", loaded, crops, ids, 4)
    config = mini_config(parts, generator_steps=8)
    g0 = g0_quality("faceswap", parts["faceswap"], crops, selection, probes, config, 0, "cpu")
    return {"ids": ids, "crops": crops, "probes": probes, "selection": selection, "g0": g0, "config": config}


def evade_with(parts, move, tmp_path, tag: str, detector=None, **overrides) -> dict:
    config = dataclasses.replace(move["config"], **overrides)
    return evade("faceswap", parts["faceswap"], move["crops"], move["ids"], detector or parts["detector"], config,
                 tmp_path / f"gen_{tag}", tmp_path / f"work_{tag}", seed=0, g0=move["g0"], probes=move["probes"],
                 selection=move["selection"], device="cpu", progress=False)


def swap_logits(parts, move, checkpoint) -> np.ndarray:
    family = get_generator("faceswap")
    fakes = family.draw_fakes(family.load(checkpoint), move["crops"], move["selection"]).images
    return load_detector(parts["detector"]).logits(fakes)


def weights_of(checkpoint) -> dict:
    return load_file(str(checkpoint / "generator.safetensors"))


def with_threshold_shift(parts, directory, shift: float):
    """The fixture's detector with its decision threshold moved by `shift` logits (same weights)."""

    loaded = load_detector(parts["detector"])
    meta = {k: v for k, v in loaded.meta.items() if k not in ("format", "detector", "weights_sha256")}
    return save_detector(directory, loaded.model, {**meta, "calibration": {"a": 1.0, "b": -shift}})


def test_the_move_lowers_the_champions_logits_and_stops_at_its_threshold(parts, move_parts, tmp_path):
    budget = {"id_retrieval": 1.0, "landmark_error": 100.0, "reconstruction": 100.0}
    strict = with_threshold_shift(parts, tmp_path / "strict", -1000.0)     # calls every fake fake
    lenient = with_threshold_shift(parts, tmp_path / "lenient", 1000.0)    # calls every fake real
    assert load_detector(strict).threshold_logit < -900 and load_detector(lenient).threshold_logit > 900

    plain = evade_with(parts, move_parts, tmp_path, "plain", evasion_weight=0.0, budget=budget)
    pushed = evade_with(parts, move_parts, tmp_path, "pushed", detector=strict, evasion_weight=4.0, budget=budget)
    assert plain["status"] == pushed["status"] == "accepted" and pushed["attempts"][0]["called_real"] == 0.0
    assert swap_logits(parts, move_parts, pushed["checkpoint"]).mean() < \
        swap_logits(parts, move_parts, plain["checkpoint"]).mean()

    # Every fake called real already: the hinge is zero, and the move is exactly the move without evasion.
    idle = evade_with(parts, move_parts, tmp_path, "idle", detector=lenient, evasion_weight=4.0, budget=budget)
    assert idle["attempts"][0]["called_real"] == 1.0
    a, b = weights_of(tmp_path / "gen_plain"), weights_of(tmp_path / "gen_idle")
    assert all(np.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not all(np.allclose(a[k], w, atol=1e-6) for k, w in weights_of(tmp_path / "gen_pushed").items())


def test_a_move_over_the_quality_budget_is_halved_then_refused(parts, move_parts, tmp_path):
    record = evade_with(parts, move_parts, tmp_path, "strict", evasion_weight=2.0, max_quality_retries=1,
                        budget={"id_retrieval": -1.0, "landmark_error": 100.0, "reconstruction": 100.0})
    assert record["status"] == "refused" and record["checkpoint"] == str(parts["faceswap"])
    assert [a["evasion_weight"] for a in record["attempts"]] == [2.0, 1.0]
    assert "source-identity retrieval" in record["reason"] and "\n" not in record["reason"]
    assert record["evasion_weight"] == 0.0 and not (tmp_path / "gen_strict").exists()
    for attempt in record["attempts"]:
        assert set(attempt["quality"]) >= {"id_retrieval", "landmark_error", "reconstruction"}


def test_fakes_as_runs_are_consecutive_frames_of_one_video_drawn_alike(parts):
    faces = parts["faces"]
    last = [int(np.flatnonzero(faces.video == v)[np.argmax(faces.frame[faces.video == v])])
            for v in np.unique(faces.video)[:2]]           # the last frame of two videos: runs end with them
    target = np.array([0, *last])
    batch = FakeBatch.selection("t", "faceswap", SIZE, target, variant=["a", "b", "a"], source=[-1, 5, -1],
                                group=["g0", "g1", "g2"])
    runs = batch.as_runs(faces, 3)
    assert len(runs) == 9 and list(runs.variant) == ["a"] * 3 + ["b"] * 3 + ["a"] * 3
    assert list(runs.source) == [-1] * 3 + [5] * 3 + [-1] * 3 and list(runs.group[3:6]) == ["g1"] * 3
    for k, original in enumerate(target):
        rows = runs.target[3 * k:3 * k + 3]
        assert len(set(faces.video[rows].tolist())) == 1 and np.all(np.diff(faces.frame[rows]) == 1)
        assert original in rows
    assert runs.target[5] == last[0]                     # a run at a video's end ends with its target
    with pytest.raises(ValueError, match="consecutive"):
        batch.as_runs(faces, 1000)


def test_the_surrogate_shows_the_fake_face_in_sharp_surroundings_and_keeps_gradients(parts, move_parts):
    """The evasion's detector sees what `detect` crops from a fake video: an upsampled face blended into the
    frame's own detector-size crop, not a crop that is blurry everywhere."""

    crops = move_parts["crops"]
    context = load_faceset(parts["world"], size=2 * SIZE, margin=0.25, identities=move_parts["ids"])
    surrogate = ProductSurrogate(crops, context)
    n = 4
    target, source = np.arange(n), np.array([-1, -1, n, n + 1])        # the last two show a source still
    batch = FakeBatch.selection("t", "faceswap", SIZE, target, source=source)
    fakes = torch.rand(n, 3, SIZE, SIZE, requires_grad=True)
    shown = surrogate(fakes, batch)
    assert shown.shape == (n, 3, 2 * SIZE, 2 * SIZE)

    surroundings = np.where(source >= 0, source, target)
    alpha = surrogate.alpha(surroundings)
    sharp = torch.from_numpy(context.images[surrogate.context_row[surroundings]]).permute(0, 3, 1, 2) / 255.0
    upsampled = torch.nn.functional.interpolate(fakes, size=2 * SIZE, mode="bilinear", align_corners=False)
    outside, inside = torch.from_numpy(alpha == 0)[:, None].expand_as(shown), \
        torch.from_numpy(alpha > 0.999)[:, None].expand_as(shown)
    assert outside.any() and inside.any()
    assert torch.allclose(shown[outside], sharp[outside], atol=1e-6)           # the frame's own sharp pixels
    assert torch.allclose(shown[inside], upsampled[inside], atol=1e-3)         # the drawn face
    nose = np.round(crops.landmarks[surroundings, 30] * 2).astype(int)        # the hull sits on the face
    assert all(alpha[i, y, x] > 0.999 for i, (x, y) in enumerate(nose))
    shown.sum().backward()
    assert fakes.grad is not None and fakes.grad.abs().sum() > 0

    other = context.select(context.identity != move_parts["ids"][0])
    with pytest.raises(ValueError, match="no context crop") as err:
        ProductSurrogate(crops, other)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- the tracking server dies mid-round

def test_server_dying_mid_round_keeps_every_round_metric(parts, store, mlflow_server, empty_db, monkeypatch):

    proc, url = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    (store / "offline").mkdir()
    shutil.copy(empty_db, store / "offline" / "mlflow.db")
    original = Harness._step_detector

    def server_dies_first(self, *args, **kwargs):        # a known moment: after the fakes, before the detector
        kill(proc)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Harness, "_step_detector", server_dies_first)
    (record,) = run_coevolution(mini_config(parts), store / "out", register=True, progress=False)

    local = client_for(off.offline_uri())
    (parent,), (child,) = coevolve_runs(local)
    assert parent.data.tags[off.TAG_ORIGIN_URI] == url and child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert set(ROUND_METRICS) <= set(child.data.metrics) and set(ROUND_METRICS) <= set(parent.data.metrics)
    for key in ROUND_METRICS:
        assert [m.step for m in local.get_metric_history(parent.info.run_id, key)] == [1], key
    assert "panel/matrix_round_01.png" in artifact_files(local, parent.info.run_id)
    champion = local.get_model_version_by_alias("forensics-detector", "champion")
    assert champion.run_id in (parent.info.run_id, child.info.run_id)
    assert (champion.run_id == child.info.run_id) == record["promoted"]


# ---------------------------------------------------------------- the command line

def test_command_line_help_and_one_line_errors(parts, tmp_path, capsys):

    with pytest.raises(SystemExit) as exit_:
        main(["coevolve", "--help"])
    assert exit_.value.code == 0 and "examples:" in capsys.readouterr().out

    common = ["coevolve", "--preset", "mini", "--world", str(parts["world"]), "--model", str(parts["detector"]),
              "--out", str(tmp_path / "out"), "--no-register", "--quiet"]
    assert main(common + ["--generator", f"faceswap={tmp_path / 'nowhere'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]

    arch = FaceswapModelConfig(size=2 * SIZE, encoder_channels=8, bottleneck_channels=16, latent_dim=16,
                               decoder_channels=16)
    wide = save_generator(tmp_path / "swap64", {"generator": FaceswapAutoencoder(arch)},
                          {"family": "faceswap", "model": arch.to_dict(),
                           "identities": {"a": parts["train_ids"][0], "b": parts["train_ids"][1]}})
    assert main(common + ["--generator", f"faceswap={wide}", "--generator", f"animation={parts['animation']}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different crops" in err[0]

    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump({**mini_config(parts).to_dict(), "fit_fakes": 50}))
    assert main(["coevolve", "--preset", str(big), "--out", str(tmp_path / "out3"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs 50 real train videos, the world has 6" in err[0]

    preset = tmp_path / "bad.yaml"
    preset.write_text(yaml.safe_dump({"generators": [{"family": "stylegan", "checkpoint": str(wide)}]}))
    assert main(["coevolve", "--preset", str(preset), "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown generator family 'stylegan'" in err[0]
