"""Co-evolution harness on a miniature world: a 1-round run end to end (state, records, MLflow parent + nested
run, champion alias), resume after Ctrl-C, the evasion fine-tune really lowering the frozen detector's
logits, the quality guard, and a tracking server that dies mid-round.

Everything is real and small: a 5-identity world (2 of them held out), 32-px generators trained for a few
steps, a detector (32-px crops read at 64 px, as 64 px are read at 128 in cpu-small) taught
self-blended fakes for a few seconds.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

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
    """World, generators (face swap trained on the two held-out identities) and an SBI-taught detector."""
    import torch

    from detectors import create_detector, save_detector
    from detectors.batches import PairedFakeBatches
    from detectors.train import fine_tune
    from forensics.harness.fakes import sbi_fakes
    from forensics.synthetic import WorldConfig, generate_world
    from forensics.synthetic.faceset import load_faceset
    from forensics.training import Trainer
    from generators.animation import AnimationConfig, train_animation
    from generators.faceswap import FaceswapConfig, make_task

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("harness")
    world = root / "world"
    generate_world(world, WorldConfig(identities=5, videos_per_identity=2, frames=8, size=128, seed=3,
                                      val_fraction=0.0, test_fraction=0.4), progress=False)
    faces = load_faceset(world, size=SIZE, margin=0.25)
    held_out = sorted(set(faces.identity[faces.split == "test"].tolist()))
    assert len(held_out) == 2

    swap = FaceswapConfig(world=str(world), identity_a=held_out[0], identity_b=held_out[1], **FACESWAP)
    task = make_task(swap)
    Trainer(task, swap.train_config(root / "faceswap", progress=False)).fit()
    task.export(root / "faceswap")
    train_animation(AnimationConfig(world=str(world), **ANIMATION), root / "animation", faces=faces,
                    sample_video=False, progress=False)

    save_detector(root / "detector0", create_detector("mobilenetv3-small", input_size=2 * SIZE),
                  {"threshold": 0.5, "calibration": {"a": 1.0, "b": 0.0}, "crop": {"size": SIZE, "margin": 0.25}})
    rows = np.flatnonzero(faces.split == "train")
    pseudo = sbi_fakes(faces, rows, seed=1)
    calibration = (np.r_[np.zeros(len(rows)), np.ones(len(rows))].astype(np.int64),
                   np.concatenate([faces.images[rows], pseudo]))
    batches = PairedFakeBatches(faces.images[rows], faces.landmarks[rows], faces.images[:0], faces.images[:0],
                                batch_size=16, sbi_fraction=1.0, replay_fraction=0.0, seed=0)
    fine_tune(root / "detector0", root / "detector", root / "detector_ckpt", batches, calibration, epochs=10,
              lr=2e-3, seed=0, device="cpu", progress=False)
    return {"root": root, "world": world, "faces": faces, "held_out": held_out,
            "faceswap": root / "faceswap", "animation": root / "animation", "detector": root / "detector"}


def mini_config(parts, **overrides):
    from forensics.harness import CoevolveConfig

    generators = [{"family": "faceswap", "checkpoint": str(parts["faceswap"])},
                  {"family": "animation", "checkpoint": str(parts["animation"])}]
    return CoevolveConfig.from_preset("mini", world=str(parts["world"]), detector=str(parts["detector"]),
                                      generators=generators, **overrides)


def client_for(uri: str):
    from mlflow import MlflowClient

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


ROUND_METRICS = [f"{m}{s}/{name}" for name in ("faceswap", "animation") for m in ("auc", "eer", "ap", "evasion_rate")
                 for s in ("", "_retrained", "_after")]


# ---------------------------------------------------------------- one round, end to end

def test_one_round_miniature_writes_state_records_mlflow_and_the_champion(parts, store):
    from detectors import load_detector
    from forensics.harness import run_coevolution
    from forensics.harness.state import STEPS
    from forensics.io import read_jsonl
    from forensics.tracking import resolve_model

    out = store / "coevolve"
    records = run_coevolution(mini_config(parts), out, register=True, progress=False)

    state = json.loads((out / "state.json").read_text())
    assert state["rounds"]["1"]["done"] and set(state["rounds"]["1"]["steps"]) == set(STEPS)
    assert state["initial"]["held_out"] == parts["held_out"]
    lines = read_jsonl(out / "rounds.jsonl")
    assert len(lines) == 1 and lines[0]["round"] == 1 and records == lines
    for name in ("faceswap", "animation"):
        family = lines[0]["families"][name]
        assert family["quality_guard"] in ("passed", "halved", "reverted")
        for key in ("auc_before", "auc_retrained", "auc_after", "evasion_before", "evasion_after"):
            assert 0.0 <= family[key] <= 1.0, (name, key, family[key])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["champion"]["version"] == "1" and summary["rounds"] == lines

    client = client_for(os.environ["MLFLOW_TRACKING_URI"])
    (parent,), (child,) = coevolve_runs(client)
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id == summary["parent_run_id"]
    assert parent.info.status == child.info.status == "FINISHED"
    assert set(ROUND_METRICS) <= set(child.data.metrics) and set(ROUND_METRICS) <= set(parent.data.metrics)
    assert {"quality/faceswap/before", "quality/animation/after", "evasion_weight/faceswap", "auc/sbi"} \
        <= set(child.data.metrics)
    assert {"roc/faceswap.png", "roc/animation.png", "samples/faceswap.png", "samples/animation.png"} \
        <= artifact_files(client, child.info.run_id)
    assert "auc_rounds.png" in artifact_files(client, parent.info.run_id)

    champion = resolve_model("forensics-detector", "champion")
    assert (champion / "model.safetensors").read_bytes() == (out / "champion" / "model.safetensors").read_bytes()
    loaded = load_detector(champion)
    assert loaded.meta["coevolve"]["round"] == 1 and loaded.meta["calibration"]["a"] > 0
    assert loaded.meta["crop"] == {"size": SIZE, "margin": 0.25}
    assert len(list((out / "replay").glob("round_01_*.npy"))) == 2


# ---------------------------------------------------------------- fakes and reals do not differ in who/where

@pytest.mark.parametrize("count", [40, 37])
def test_animation_fakes_show_every_identity_equally_and_never_self_driven(parts, count):
    from generators.registry import get_generator

    faces = parts["faces"]
    everyone = sorted(set(faces.identity.tolist()))
    family = get_generator("animation")
    for portion in ("fit", "eval"):
        batch = family.select_fakes("animation", None, faces, everyone, portion, count, 4, np.random.default_rng(1))
        assert len(batch) == count and not np.any(batch.source_id == batch.target_id)
        for role in (batch.source_id, batch.target_id):
            frames = [int(np.sum(role == i)) for i in everyone]
            assert max(frames) - min(frames) <= 1, (portion, frames)
        allowed = faces.portion_rows(everyone, portion)
        assert np.isin(batch.target, allowed).all() and np.isin(batch.source, allowed).all()


def test_detector_batches_pair_each_real_with_a_new_fake_of_its_own_video(parts):
    from detectors.batches import PairedFakeBatches

    faces = parts["faces"]
    rows = np.arange(len(faces))
    scenes = faces.video[rows]
    videos = np.unique(scenes)[:3]                       # new fakes from three videos only
    new_scenes = np.repeat(videos, 4)
    new_fakes = np.repeat(new_scenes.astype(np.uint8)[:, None, None, None], SIZE, 1).repeat(SIZE, 2).repeat(3, 3)
    task = PairedFakeBatches(faces.images[rows], faces.landmarks[rows], new_fakes, new_fakes[:0], 8, 0.0, 0.0,
                             real_scenes=scenes, new_scenes=new_scenes)
    rng = np.random.default_rng(0)
    for row in range(len(rows)):
        fake = task.fake("new", row, rng)
        if scenes[row] in videos:
            assert int(fake[0, 0, 0]) == scenes[row]
        else:                                            # no fake of that video: any new fake
            assert int(fake[0, 0, 0]) in videos
    with pytest.raises(ValueError, match="scene labels"):
        PairedFakeBatches(faces.images[rows], faces.landmarks[rows], new_fakes, new_fakes[:0], 8, 0.0, 0.0,
                          real_scenes=scenes[:-1], new_scenes=new_scenes)


# ---------------------------------------------------------------- resume after Ctrl-C

def test_interrupted_run_resumes_at_the_round_and_step_it_was_in(parts, tmp_path):
    import yaml

    (tmp_path / "offline").mkdir()
    preset = tmp_path / "experiment.yaml"
    preset.write_text(yaml.safe_dump(mini_config(parts, rounds=2, generator_steps=12).to_dict()))
    out = tmp_path / "out"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "FORENSICS_MLFLOW_OFFLINE_DIR": str(tmp_path / "offline"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "forensics.cli.main", "coevolve", "--preset", str(preset), "--out", str(out),
               "--no-register"]
    # A shell without job control starts background jobs with SIGINT ignored, and Python keeps an inherited
    # SIG_IGN; CI may run us that way, so the child gets Ctrl-C back as a terminal would give it.
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    interrupted = False
    while proc.poll() is None and time.monotonic() < deadline:
        if not interrupted:
            try:
                state = json.loads((out / "state.json").read_text())
            except (OSError, ValueError):
                state = {}
            interrupted = "detector" in state.get("rounds", {}).get("1", {}).get("steps", {})
        if interrupted:
            # Like a user pressing Ctrl-C again if the first one has not stopped it after 3 s.
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                continue
        time.sleep(0.02)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    state = json.loads((out / "state.json").read_text())
    first = state["rounds"]["1"]
    assert not first["done"] and {"fakes", "before", "detector"} <= set(first["steps"])
    kept = {step: record["finished"] for step, record in first["steps"].items()}
    weights = out / "round_01" / "detector" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "round 1/2 detector: finished earlier, skipped" in again.stderr
    state = json.loads((out / "state.json").read_text())
    assert state["rounds"]["1"]["done"] and state["rounds"]["2"]["done"]
    assert {step: state["rounds"]["1"]["steps"][step]["finished"] for step in kept} == kept
    assert weights.stat().st_mtime_ns == stamp
    lines = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    assert [line["round"] for line in lines] == [1, 2]
    assert "AUC: before" in again.stdout and "faceswap" in again.stdout

    client = client_for(env["MLFLOW_TRACKING_URI"])
    (parent,), children = coevolve_runs(client)          # the rerun re-entered the same parent run
    assert sorted(c.info.run_name for c in children) == ["round-01", "round-02"]
    history = client.get_metric_history(parent.info.run_id, "auc/faceswap")
    assert sorted(m.step for m in history) == [1, 2]

    other = mini_config(parts, rounds=2, generator_steps=12, seed=5)
    preset.write_text(yaml.safe_dump(other.to_dict()))
    refused = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "different co-evolution config" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- the generators really evade

def _fit_faces(parts):
    """The fit portion of the held-out identities (the face-swap pair is those two)."""
    return parts["faces"].select(parts["faces"].portion_rows(parts["held_out"], "fit"))


@pytest.mark.parametrize("family", ["faceswap", "animation"])
def test_evasion_fine_tune_lowers_the_frozen_detectors_logits(parts, tmp_path, family):
    from detectors import load_detector
    from forensics.harness.evasion import evade
    from generators.registry import get_generator

    spec = get_generator(family)
    config = mini_config(parts, generator_steps=8, quality_tolerance=float("inf"), max_quality_retries=0)
    faces = _fit_faces(parts)
    means = {}
    for weight in (0.0, 1.0):
        record = evade(family, parts[family], faces, parts["held_out"], parts["detector"],
                       dataclasses.replace(config, evasion_weight=weight), tmp_path / f"gen_{weight}",
                       tmp_path / f"work_{weight}", seed=0, device="cpu", progress=False)
        assert record["quality_guard"] == "passed" and record["checkpoint"] == str(tmp_path / f"gen_{weight}")
        model = spec.load(record["checkpoint"])
        batch = spec.select_fakes(family, model, parts["faces"], parts["held_out"], "fit", 16, 4,
                                  np.random.default_rng(7))
        fakes = spec.draw_fakes(model, parts["faces"], batch).images
        means[weight] = float(load_detector(parts["detector"]).logits(fakes).mean())
    assert means[1.0] < means[0.0], means


def test_quality_guard_halves_the_weight_then_keeps_the_previous_generator(parts, tmp_path):
    from forensics.harness.evasion import evade

    config = mini_config(parts, generator_steps=2, quality_tolerance=-1.0, max_quality_retries=1, evasion_weight=2.0)
    record = evade("faceswap", parts["faceswap"], _fit_faces(parts), parts["held_out"], parts["detector"], config,
                   tmp_path / "gen", tmp_path / "work", seed=0, device="cpu", progress=False)
    assert record["quality_guard"] == "reverted" and record["checkpoint"] == str(parts["faceswap"])
    assert [a["evasion_weight"] for a in record["attempts"]] == [2.0, 1.0]
    assert record["evasion_weight"] == 0.0 and not (tmp_path / "gen").exists()


# ---------------------------------------------------------------- the tracking server dies mid-round

def test_server_dying_mid_round_keeps_every_round_metric(parts, store, mlflow_server, empty_db, monkeypatch):
    import shutil

    from forensics.harness import run_coevolution
    from forensics.harness.rounds import Harness
    from forensics.tracking import offline as off

    proc, url = mlflow_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    (store / "offline").mkdir()
    shutil.copy(empty_db, store / "offline" / "mlflow.db")
    original = Harness._step_detector

    def server_dies_first(self, *args, **kwargs):        # a known moment: after (a) and (b), before (c)
        kill(proc)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Harness, "_step_detector", server_dies_first)
    run_coevolution(mini_config(parts), store / "out", register=True, progress=False)

    local = client_for(off.offline_uri())
    (parent,), (child,) = coevolve_runs(local)
    assert parent.data.tags[off.TAG_ORIGIN_URI] == url and child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert set(ROUND_METRICS) <= set(child.data.metrics) and set(ROUND_METRICS) <= set(parent.data.metrics)
    for key in ROUND_METRICS:
        assert [m.step for m in local.get_metric_history(parent.info.run_id, key)] == [1], key
    assert "auc_rounds.png" in artifact_files(local, parent.info.run_id)
    assert local.get_model_version_by_alias("forensics-detector", "champion").run_id == parent.info.run_id


# ---------------------------------------------------------------- the command line

def test_command_line_help_and_one_line_errors(parts, tmp_path, capsys):
    import yaml

    from forensics.cli.main import main
    from generators.faceswap import FaceswapModelConfig, save_generator
    from generators.faceswap.model import FaceswapAutoencoder

    with pytest.raises(SystemExit) as exit_:
        main(["coevolve", "--help"])
    assert exit_.value.code == 0 and "examples:" in capsys.readouterr().out

    common = ["coevolve", "--preset", "mini", "--world", str(parts["world"]), "--detector", str(parts["detector"]),
              "--out", str(tmp_path / "out"), "--no-register", "--quiet"]
    assert main(common + ["--faceswap", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0]

    arch = FaceswapModelConfig(size=2 * SIZE, encoder_channels=8, bottleneck_channels=16, latent_dim=16,
                               decoder_channels=16)
    wide = save_generator(tmp_path / "swap64", {"generator": FaceswapAutoencoder(arch)},
                          {"family": "faceswap", "model": arch.to_dict(),
                           "identities": {"a": parts["held_out"][0], "b": parts["held_out"][1]}})
    assert main(common + ["--faceswap", str(wide), "--animation", str(parts["animation"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different crops" in err[0] and "64px" in err[0]

    preset = tmp_path / "bad.yaml"
    preset.write_text(yaml.safe_dump({"generators": [{"family": "stylegan", "checkpoint": str(wide)}]}))
    assert main(["coevolve", "--preset", str(preset), "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown generator family 'stylegan'" in err[0]
