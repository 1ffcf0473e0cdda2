"""Benchmark suites through `forensics bench run`: a small rendered world, tiny generator checkpoints (untrained
weights, exported the way training exports them), tiny detectors, real MTCNN, H.264 and MLflow.

The figures these runs produce mean nothing (nothing was trained for long); the tests are about the
contract: full matrices / every condition with AUCs in [0, 1], files written, MLflow logged, perturbations
that really degrade, resume that skips finished cells, and the exit statuses.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.detect_speed import FRAME_ONLY, FUSED
from benchmarks.fakes import MANIFEST, Shortfall
from benchmarks.perturb import downscale, parse_condition, perturb_video
from benchmarks.runner import SUITES_DIR, load_suite
from benchmarks.suites.cross_generator import under_powered_cells
from benchmarks.suites.robustness import under_powered_columns
from benchmarks.tables import UNDER_POWERED
from detectors import create_detector, save_detector
from forensics.cli.main import main
from forensics.data.manifest import ManifestRow, read_manifest, write_manifest
from forensics.data.registry import create_dataset, detect_layout
from forensics.media import sample_frames
from forensics.synthetic import WorldConfig, generate_world
from forensics.training import Trainer
from generators.animation import AnimationConfig, build_modules, save_animation
from generators.faceswap import FaceswapConfig, make_task

FACESWAP_TINY = dict(size=32, encoder_channels=8, bottleneck_channels=32, latent_dim=32, decoder_channels=32,
                     disc_channels=8, epochs=1, steps_per_epoch=40, batch_size=4, lr=2e-3, adv_weight=0.0,
                     eval_frames=2, preview=2, device="cpu", seed=0)
ANIMATION_TINY = dict(size=32, num_kp=5, head_kernel=3, kp_block_expansion=8, kp_num_blocks=2, kp_max_features=32,
                      dm_block_expansion=8, dm_num_blocks=2, dm_max_features=32, gen_block_expansion=8,
                      gen_max_features=32, gen_down_blocks=2, gen_bottleneck_blocks=1, disc_block_expansion=8,
                      disc_num_blocks=2, disc_max_features=32, feature_widths=[8, 16], loss_scales=[1.0, 0.5],
                      device="cpu")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """8 identities x 2 videos (6 frames, 128 px): 4 train, 2 val, 2 test identities."""
    root = tmp_path_factory.mktemp("bench_world")
    generate_world(root, WorldConfig(identities=8, videos_per_identity=2, frames=6, size=128, seed=5,
                                     val_fraction=0.25, test_fraction=0.25), progress=False)
    return root


@pytest.fixture(scope="module")
def generators(world, tmp_path_factory):
    """Face-swap (pair 0/4, both train identities; 40 steps, enough for MTCNN to see a face in its swaps)
    and animation (untrained weights: its output still carries the warped source face) checkpoints."""

    folder = tmp_path_factory.mktemp("bench_generators")
    config = FaceswapConfig(world=str(world), identity_a=0, identity_b=4, **FACESWAP_TINY)
    task = make_task(config)
    Trainer(task, config.train_config(folder / "faceswap", progress=False)).fit()
    faceswap = task.export(folder / "faceswap")
    config = AnimationConfig(world=str(world), **ANIMATION_TINY)
    animation = save_animation(folder / "animation", build_modules(config), config, {})
    return {"faceswap": str(faceswap), "animation": str(animation)}


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("FORENSICS_MLFLOW_OFFLINE_DIR", str(tmp_path / "offline"))
    return tmp_path


def write_suite(path: Path, **keys) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(keys, sort_keys=False))
    return path


def bench(*args: str) -> int:
    return main(["bench", *args])


def benchmark_runs(name: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name("benchmarks")
    return [r for r in client.search_runs([experiment.experiment_id]) if r.info.run_name.startswith(name + "-")]


# ---------------------------------------------------------------------- perturbations

def _frames(path) -> np.ndarray:
    return np.stack([f.image for f in sample_frames(path).frames]).astype(np.float64)


def test_perturbations_degrade_as_their_names_say(world, tmp_path):
    source = sorted((world / "videos").glob("*.mp4"))[0]
    clean = _frames(source)
    error = {}
    for name in ("jpeg90", "jpeg50", "h264_crf23", "h264_crf40", "blur1.5", "noise8"):
        made = perturb_video(source, tmp_path / f"{name}.mp4", name)
        frames = _frames(made["output"])
        assert frames.shape == clean.shape and made["frames"] == len(clean)
        error[name] = np.abs(frames - clean).mean()
        error[name + "_bytes"] = made["bytes"]
    assert error["jpeg50"] > error["jpeg90"] > 0
    assert error["h264_crf40"] > error["h264_crf23"]
    assert error["h264_crf40_bytes"] < error["h264_crf23_bytes"]
    assert error["noise8"] > 2 and error["blur1.5"] > 0
    # Noise is seeded by the video and condition: a resumed run writes the same degraded video.
    again = perturb_video(source, tmp_path / "noise_again.mp4", "noise8")
    assert np.array_equal(_frames(again["output"]), _frames(tmp_path / "noise8.mp4"))

    # downscale0.5 keeps the size but not the detail finer than half the resolution: a 1-px checkerboard
    # (the finest pattern) averages away, an 8-px one survives.
    yy, xx = np.mgrid[0:64, 0:64]
    fine = np.repeat((((yy + xx) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    coarse = np.repeat(((((yy // 8) + (xx // 8)) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)
    assert downscale(fine, 0.5).shape == fine.shape
    assert downscale(fine, 0.5).std() < 0.1 * fine.std()
    assert downscale(coarse, 0.5).std() > 0.8 * coarse.std()

    assert parse_condition("h264_crf40").value == 40 and parse_condition("clean").kind == "clean"
    for bad in ("jpeg0", "downscale2", "sharpen", "h264_crf99"):
        with pytest.raises(ValueError) as info:
            parse_condition(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(ValueError):
        perturb_video(source, tmp_path / "clean.mp4", "clean")


def footage(row, world: Path) -> set[str]:
    """The world videos a dataset row shows: a real is its own video; a fake is read back from the frames its
    recipe names (a swap's target, an animation's driver and source still), not from the suite's own bookkeeping."""
    if row.label == "real":
        return {Path(row.path).name}
    names = {Path(str(row.meta.get(key, "")).split("#")[0]).name for key in ("target", "driving", "source")}
    return {name for name in names if (world / "videos" / name).is_file()}


def assert_no_footage_across_the_divide(rows, world: Path) -> None:
    """No world video is seen both in training (train and validation splits) and in test, as a real or
    inside a fake, and every fake names the footage it was made from."""
    assert all(footage(r, world) for r in rows if r.label == "fake")
    training = set().union(*(footage(r, world) for r in rows if r.split in ("train", "val")))
    test = set().union(*(footage(r, world) for r in rows if r.split == "test"))
    assert test and not (training & test)


# ---------------------------------------------------------------------- cross-generator

def test_cross_generator_suite_fills_the_matrix_logs_and_resumes(world, generators, tmp_path, store, capsys):
    suite = write_suite(tmp_path / "cg.yaml", name="cg", kind="cross_generator", description="tiny cross-generator",
                        world=str(world), generators=generators, reals={"train": 4, "val": 2, "test": 2},
                        fakes={"animation": {"train": 2, "val": 1, "test": 2}, "faceswap": {"train": 2, "val": 1, "test": 2}},
                        epochs=1, bootstrap=False, detector_config={"batch_size": 16, "frames_per_video": 3, "crop_size": 64,
                                                   "eval_batch_size": 64})
    out, work = tmp_path / "results", tmp_path / "work"
    assert bench("run", str(suite), "--out", str(out), "--work", str(work), "--device", "cpu", "--quiet") == 0
    document = json.loads((out / "cg.json").read_text())
    families = ["faceswap", "animation", "sbi"]
    assert document["status"] == "ok" and document["failed_cells"] == []
    for level in ("video", "frame"):
        matrix = document["results"]["matrix"][level]
        assert list(matrix) == families and all(list(row) == families for row in matrix.values())
        assert all(0.0 <= v <= 1.0 for row in matrix.values() for v in row.values())
    sbi_row = document["results"]["rows"]["sbi"]["test"]
    assert sbi_row["faceswap"]["video"]["n_fake"] == 2          # two test videos, each swapped once
    assert sbi_row["sbi"]["video"]["n_fake"] == sbi_row["sbi"]["video"]["n_real"] == 2
    assert {"machine", "git", "command", "seconds"} <= set(document)
    assert {"train sbi", "make fakes", "preprocess"} <= set(document["seconds"]["stages"])
    markdown = (out / "cg.md").read_text()
    assert "| trained on \\ tested on | faceswap | animation | sbi |" in markdown
    assert (out / "cg-heatmap.png").stat().st_size > 1000

    # The fakes are an ordinary dataset: the standard adapter reads their manifest.
    fakes = work / "fakes"
    assert (fakes / MANIFEST).is_file() and detect_layout(fakes) == "synthetic"
    rows = create_dataset("auto", fakes).rows()
    by_method = {m: [r for r in rows if r.method == m] for m in ("real", "faceswap", "animation")}
    assert {r.split for r in by_method["faceswap"]} == {"train", "val", "test"}
    # Every row validates on fakes of its own family.
    assert all(row["training"]["validation_fakes"] == family for family, row in document["results"]["rows"].items())
    assert all(r.meta["generator"] == "faceswap" and r.meta["checkpoint_sha256"] for r in by_method["faceswap"])
    test_ids = {r.identity for r in by_method["real"] if r.split == "test"}
    train_ids = {r.identity for r in by_method["real"] if r.split == "train"}
    animated_test = [r for r in by_method["animation"] if r.split == "test"]
    assert animated_test and all(r.identity in test_ids and r.meta["source_identity"] in test_ids
                                 for r in animated_test)
    assert not (test_ids & train_ids)
    assert_no_footage_across_the_divide(rows, world)

    (run,) = benchmark_runs("cg")
    assert run.info.status == "FINISHED"
    assert {f"video_auc/train_{t}/test_{c}" for t in families for c in families} <= set(run.data.metrics)

    # A second run reuses every finished row: no training, no new fakes.
    capsys.readouterr()
    assert bench("run", str(suite), "--out", str(out), "--work", str(work), "--device", "cpu", "--quiet",
                 "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["results"]["cells_reused"] == 3 and again["results"]["data"]["fakes_made"] == 0
    assert not any(stage.startswith("train") for stage in again["seconds"]["stages"])
    assert again["results"]["matrix"] == document["results"]["matrix"]

    # A clip detector runs the same suite like any detector: clips of consecutive crops, temporal pseudo-fakes
    # in the sbi row, the same self-blends (every frame of a clip) in the sbi column.
    clips = write_suite(tmp_path / "cgt.yaml", name="cgt", kind="cross_generator", description="clip detector",
                        world=str(world), generators=generators, reals={"train": 4, "val": 2, "test": 2},
                        fakes={"animation": {"train": 2, "val": 1, "test": 2}, "faceswap": {"train": 2, "val": 1, "test": 2}},
                        preset="temporal-small", epochs=1, bootstrap=False,
                        detector_config={"batch_size": 8, "frames_per_video": 6, "clip_len": 3, "crop_size": 64,
                                         "input_size": 64, "eval_batch_size": 24})
    capsys.readouterr()
    assert bench("run", str(clips), "--out", str(out), "--work", str(work), "--device", "cpu", "--quiet",
                 "--json") == 0
    temporal = json.loads(capsys.readouterr().out)
    assert temporal["status"] == "ok" and temporal["failed_cells"] == []
    assert temporal["results"]["detector"]["detector"] == "temporal-small"
    assert temporal["results"]["data"]["fakes_made"] == 0                      # the same fake videos
    column = temporal["results"]["rows"]["sbi"]["test"]["sbi"]["video"]
    assert column["n_fake"] == column["n_real"] == 2
    assert all(0.0 <= v <= 1.0 for row in temporal["results"]["matrix"]["video"].values() for v in row.values())


# ---------------------------------------------------------------------- robustness

@pytest.fixture()
def world_with_broken_video(world, tmp_path):
    """The world plus one test-split "video" that is not a video: its cells must fail, the rest finish."""
    copy = tmp_path / "world"
    shutil.copytree(world, copy, ignore=shutil.ignore_patterns("face_cache", "*.npz"))
    (copy / "videos" / "id0099_v00.mp4").write_bytes(b"not a video at all" * 64)
    rows = read_manifest(copy / "manifest.csv", resolve=False)
    rows.append(ManifestRow(path="videos/id0099_v00.mp4", label="real", identity="id0099", split="test",
                            source="synthetic"))
    write_manifest(rows, copy / "manifest.csv")
    return copy


def test_robustness_suite_scores_every_condition_and_resumes(world_with_broken_video, generators, tmp_path, store):
    detector = save_detector(tmp_path / "detector", create_detector("mobilenetv3-small", input_size=64),
                             {"crop": {"size": 64, "margin": 0.25}, "note": "untrained: plumbing only"})
    conditions = ["clean", "jpeg50", "h264_crf40"]
    suite = write_suite(tmp_path / "rb.yaml", name="rb", kind="robustness", description="tiny robustness",
                        world=str(world_with_broken_video), detector=str(detector), generators=generators,
                        reals={"test": 3}, fakes={"animation": {"test": 1}, "faceswap": {"test": 2}},
                        conditions=conditions, frames=4, bootstrap=False)
    out, work = tmp_path / "results", tmp_path / "work"
    args = ("run", str(suite), "--out", str(out), "--work", str(work), "--device", "cpu", "--quiet")
    assert bench(*args) == 1                    # the broken video fails under every condition
    document = json.loads((out / "rb.json").read_text())
    assert sorted(cell for cell, _ in document["failed_cells"]) == sorted(f"{c}|id0099_v00.mp4" for c in conditions)
    results = document["results"]
    assert list(results["conditions"]) == conditions
    for name in conditions:
        summary = results["conditions"][name]
        assert summary["errors"] == 1 and summary["videos"] == 6        # 3 reals (one broken) + 2 swaps + 1 animated
        for family in ("all", "faceswap", "animation"):
            for level in ("video", "frame"):
                assert 0.0 <= summary["by"][family][level]["auc"] <= 1.0
    assert (work / "perturbed" / "jpeg50" / "faceswap").is_dir()
    # Robustness tests a detector trained elsewhere on the world's other splits: every video it scores, real
    # or inside a fake, is test-split footage.
    world_split = {Path(r.path).name: r.split for r in read_manifest(world_with_broken_video / "manifest.csv")}
    scored = create_dataset("auto", work / "fakes").rows()
    assert {world_split[name] for row in scored for name in footage(row, world_with_broken_video)} == {"test"}
    assert (out / "rb-auc.png").is_file() and "| h264_crf40 |" in (out / "rb.md").read_text()
    (run,) = benchmark_runs("rb")
    assert "video_auc/jpeg50/all" in run.data.metrics

    # Cut the cell log to its first half (an interrupted run): the next run redoes only the rest, and
    # retries the failed cells rather than reusing them.
    log = work / "cells.jsonl"
    lines = log.read_text().splitlines()
    kept = lines[:len(lines) // 2]
    log.write_text("\n".join(kept) + "\n")
    finished_before = sum(json.loads(line)["status"] == "ok" for line in kept)
    assert bench(*args) == 1
    again = json.loads((out / "rb.json").read_text())
    assert again["results"]["cells_reused"] == finished_before
    appended = log.read_text().splitlines()[len(kept):]
    assert len(appended) == len(conditions) * 6 - finished_before
    for name in conditions:
        assert again["results"]["conditions"][name]["by"]["all"]["video"]["auc"] == \
            results["conditions"][name]["by"]["all"]["video"]["auc"]


# ---------------------------------------------------------------------- speed, listing, usage errors

def test_speed_suite_records_the_detect_benchmark(tmp_path, store):
    suite = write_suite(tmp_path / "sp.yaml", name="sp", kind="speed", description="tiny speed",
                        seconds=0.2, repeats=1, max_wait=0)
    out = tmp_path / "results"
    assert bench("run", str(suite), "--out", str(out), "--work", str(tmp_path / "work"), "--quiet") == 0
    document = json.loads((out / "sp.json").read_text())
    results = document["results"]
    assert results["clip"]["width"] == 1280 and results["every_frame"]["default"]["frames_per_s"] > 0

    assert results["sampled"][FRAME_ONLY]["cli_cold_wall_s"] > 0
    assert results["sampled"][FUSED]["face_crops"] == results["sampled"][FRAME_ONLY]["face_crops"] > 0
    assert results["summary"]["fused_over_frame_only"] > 0
    assert "frames/s" in (out / "sp.md").read_text()
    (run,) = benchmark_runs("sp")
    assert run.data.metrics["every_frame_fps"] > 0


def test_shipped_suites_load_and_are_listed(capsys):
    assert bench("list") == 0
    listed = capsys.readouterr().out
    for name, kind in (("cross-generator", "cross_generator"), ("robustness", "robustness"), ("speed", "speed")):
        suite = load_suite(name)
        assert suite.kind == kind and suite.path == SUITES_DIR / f"{name}.yaml" and suite.name == name
        assert name in listed and suite.description.split(" ")[0] in listed
    robustness = load_suite("robustness").params["conditions"]
    assert {"jpeg90", "jpeg70", "jpeg50", "h264_crf23", "h264_crf40", "downscale0.5"} <= set(robustness)


def test_usage_errors_are_one_line_with_exit_2(world, generators, tmp_path, store, capsys):
    missing = write_suite(tmp_path / "missing.yaml", name="m", kind="cross_generator", world=str(world),
                          generators={"faceswap": generators["faceswap"], "animation": str(tmp_path / "nowhere")})
    assert bench("run", str(missing), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "forensics train generator animation" in err and "nowhere" in err

    typo = write_suite(tmp_path / "typo.yaml", name="t", kind="robustness", conditons=["clean"])
    assert bench("run", str(typo)) == 2
    assert "conditons" in capsys.readouterr().err
    assert bench("run", str(write_suite(tmp_path / "kind.yaml", name="k", kind="nope"))) == 2
    assert "unknown suite kind" in capsys.readouterr().err
    bad_condition = write_suite(tmp_path / "cond.yaml", name="c", kind="robustness", world=str(world),
                                detector=str(tmp_path), generators=generators, conditions=["clean", "sharpen3"])
    assert bench("run", str(bad_condition), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w")) == 2
    assert "sharpen3" in capsys.readouterr().err
    assert bench("run", "no-such-suite") == 2
    assert "shipped: cross-generator" in capsys.readouterr().err


# ---------------------------------------------------------------------- inputs and honest sizes

def test_suites_take_make_demos_output_refuse_to_underfill_and_mark_what_they_allow(world, generators, tmp_path,
                                                                                     store, capsys):
    """A suite whose own paths are absent takes what `make demo` wrote; asked for more videos than the world
    holds it stops in one line before making anything; --allow-smaller runs and marks every affected figure."""
    demo = tmp_path / "demo"
    (demo / "generators").mkdir(parents=True)
    (demo / "synth").symlink_to(world)
    for family, path in generators.items():
        (demo / "generators" / family).symlink_to(path)
    detector = save_detector(tmp_path / "detector", create_detector("mobilenetv3-small", input_size=64),
                             {"crop": {"size": 64, "margin": 0.25}, "note": "untrained: plumbing only"})
    suite = write_suite(tmp_path / "rb.yaml", name="rb", kind="robustness", description="after the demo",
                        world=str(tmp_path / "data" / "synth"),
                        generators={f: str(tmp_path / "runs" / f) for f in generators},
                        reals={"test": 5}, fakes={"animation": {"test": 1}, "faceswap": {"test": 1}},
                        conditions=["clean"], frames=2, bootstrap=False)
    out, work = tmp_path / "results", tmp_path / "work"
    args = ("run", str(suite), "--out", str(out), "--work", str(work), "--device", "cpu", "--quiet",
            "--demo", str(demo), "--model", str(detector))

    # The world has 4 test videos: 5 reals cannot be had, and nothing is made before the suite says so.
    assert bench(*args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "real test 4 of 5" in err and "--allow-smaller" in err and "identities" in err
    assert not (work / "fakes" / MANIFEST).exists()

    assert bench(*args, "--allow-smaller", "--generator", f"faceswap={generators['faceswap']}") == 0
    document = json.loads((out / "rb.json").read_text())
    inputs = document["inputs"]
    assert inputs["world"] == {"path": str(demo / "synth"), "from": inputs["world"]["from"]}
    assert "make demo" in inputs["world"]["from"] and "make demo" in inputs["generator animation"]["from"]
    assert inputs["generator faceswap"] == {"path": generators["faceswap"], "from": "the command line"}
    assert inputs["detector"]["path"] == str(detector) and inputs["detector"]["from"] == "--model"
    results = document["results"]
    assert results["under_powered"]["shortfalls"] == [{"split": "test", "what": "real", "wanted": 5, "got": 4}]
    assert set(results["under_powered"]["columns"]) == {"all", "faceswap", "animation"}
    markdown = (out / "rb.md").read_text()
    assert "real test 4 of 5" in markdown and markdown.count(UNDER_POWERED) >= 4 and str(demo / "synth") in markdown
    assert_no_footage_across_the_divide(create_dataset("auto", work / "fakes").rows(), world)

    # Flags a suite cannot take, and malformed ones, are one-line usage errors.
    cross = write_suite(tmp_path / "cg.yaml", name="cg", kind="cross_generator", world=str(world), generators=generators)
    for extra, expected in ((("--model", str(detector)), "takes no detector"),
                            (("--generator", "toy=somewhere"), "has no toy generator"),
                            (("--generator", "faceswap"), "FAMILY=DIR")):
        assert bench("run", str(cross), "--out", str(out), "--work", str(tmp_path / "w2"), *extra) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and expected in err


def test_a_family_that_cannot_make_enough_fakes_stops_the_suite(world, generators, tmp_path, store, capsys):
    """Animation draws each fake from a driver and a source of another identity of the same split: the 2 val
    identities x 2 videos give at most 4 val fakes, so asking for 20 is refused, in one line."""
    suite = write_suite(tmp_path / "cg.yaml", name="cg", kind="cross_generator", world=str(world),
                        generators=generators, reals={"train": 4, "val": 2, "test": 2},
                        fakes={"animation": {"train": 2, "val": 20, "test": 2}, "faceswap": {"train": 2, "val": 1, "test": 2}})
    assert bench("run", str(suite), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w"), "--device", "cpu",
                 "--quiet") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "animation val 4 of 20" in err


def test_under_powered_cells_follow_the_splits_they_rest_on():
    rows, columns = ["faceswap", "animation", "sbi"], ["faceswap", "animation", "sbi"]
    test_short = [Shortfall("test", "animation", 12, 4)]
    assert under_powered_cells(test_short, rows, columns) == [[r, "animation"] for r in rows]
    train_short = [Shortfall("train", "faceswap", 16, 8)]
    assert under_powered_cells(train_short, rows, columns) == [["faceswap", c] for c in columns]
    real_short = [Shortfall("val", "real", 6, 2)]
    assert len(under_powered_cells(real_short, rows, columns)) == 9
    assert under_powered_columns([Shortfall("test", "faceswap", 12, 3)], ["animation", "faceswap"]) == ["all", "faceswap"]
