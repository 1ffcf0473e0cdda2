"""Fakes made by `forensics fake` can be scanned by `forensics detect`, and bad input to `forensics fake` is a
one-line error naming the file (exit 1), all through the command line, with tiny generators and a tiny
(untrained) detector made here on the session's tiny synthetic world."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forensics.cli.main import main
from detectors import create_detector, save_detector
from forensics.io import read_jsonl
from forensics.media import iter_frames, probe, write_video
from forensics.training import Trainer
from generators.animation import AnimationConfig, train_animation
from generators.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from generators.faceswap import FaceswapConfig, make_task

FIELDS = {"path", "kind", "status", "error", "score", "label", "threshold", "frames_analyzed", "faces",
          "frame_scores", "model", "elapsed_s"}
SWAP = dict(size=32, encoder_channels=8, bottleneck_channels=32, latent_dim=32, decoder_channels=32, disc_channels=8,
            epochs=1, steps_per_epoch=4, batch_size=4, eval_frames=2, preview=2, device="cpu", seed=0)
ANIMATION = dict(size=32, num_kp=5, head_kernel=3, kp_block_expansion=8, kp_num_blocks=2, kp_max_features=32,
                 dm_block_expansion=8, dm_num_blocks=2, dm_max_features=32, gen_block_expansion=8,
                 gen_max_features=32, gen_down_blocks=2, gen_bottleneck_blocks=1, disc_block_expansion=8,
                 disc_num_blocks=2, disc_max_features=32, feature_widths=[8], loss_scales=[1.0], batch_size=8,
                 pairs_per_video=8, epochs=1, eval_frames=2, grid_columns=2, device="cpu")


@pytest.fixture(scope="module")
def models(tiny_world, tmp_path_factory) -> dict[str, Path]:
    """Checkpoint folders: a face swap of identities 0/1, an animation model, and a detector."""
    swap_config = FaceswapConfig(world=str(tiny_world), identity_a=0, identity_b=1, **SWAP)
    task = make_task(swap_config)
    swap_dir = tmp_path_factory.mktemp("swap_model")
    Trainer(task, swap_config.train_config(swap_dir, progress=False)).fit()
    task.export(swap_dir)
    _, animation_dir = train_animation(AnimationConfig(world=str(tiny_world), **ANIMATION),
                                       tmp_path_factory.mktemp("animation_model"), progress=False)
    detector_dir = save_detector(tmp_path_factory.mktemp("detector"), create_detector("mobilenetv3-small", input_size=64),
                                 {"threshold": 0.5, "crop": {"size": 64, "margin": 0.25}})
    return {"swap": swap_dir, "animation": animation_dir, "detector": detector_dir}


def _video(world: Path, identity: int) -> Path:
    return sorted((world / "videos").rglob(f"id{identity:04d}_*.mp4"))[0]


def _face_image(world: Path, folder: Path) -> Path:
    with iter_frames(_video(world, 2)) as frames:
        image = next(iter(frames)).image
    path = folder / "face.png"
    Image.fromarray(image).save(path)
    return path


def _one_line_error(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def test_swapped_and_animated_videos_are_scanned_without_errors(models, tiny_world, tmp_path, capsys):
    swapped, animated = tmp_path / "swapped.mp4", tmp_path / "animated.mp4"
    target = _video(tiny_world, 1)
    assert main(["fake", "swap", "--model", str(models["swap"]), "--target", str(target),
                 "--out", str(swapped), "--device", "cpu"]) == 0
    assert main(["fake", "animate", "--model", str(models["animation"]), "--source",
                 str(_face_image(tiny_world, tmp_path)), "--driving", str(_video(tiny_world, 3)),
                 "--out", str(animated), "--device", "cpu"]) == 0
    capsys.readouterr()
    for video, generator in ((swapped, "faceswap"), (animated, "animation")):
        recipe = json.loads(video.with_suffix(".json").read_text())
        assert recipe["generator"] == generator and probe(video).frames == recipe["frames"] > 0

    jsonl = tmp_path / "scan.jsonl"
    code = main(["detect", str(swapped), str(animated), "--model", str(models["detector"]), "--jsonl", str(jsonl),
                 "--frames", "4", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 0, err
    records = {Path(r["path"]).name: r for r in read_jsonl(jsonl)}
    assert sorted(records) == ["animated.mp4", "swapped.mp4"]
    for record in records.values():
        assert FIELDS <= set(record), FIELDS - set(record)
        assert record["status"] != "error" and record["error"] is None, record
        assert record["kind"] == "video" and record["frames_analyzed"] >= 1
        if record["status"] == "ok":
            assert 0.0 <= record["score"] <= 1.0 and record["frame_scores"]
    # The swap pastes a face back into the original frame, so MTCNN still finds the (rendered) head there.
    assert records["swapped.mp4"]["status"] == "ok"


def test_animate_with_no_face_in_the_source_or_the_driver_fails_in_one_line(models, tiny_world, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((128, 128, 3), 120, np.uint8)).save(blank)
    driving = _video(tiny_world, 3)
    out = tmp_path / "a.mp4"
    assert main(["fake", "animate", "--model", str(models["animation"]), "--source", str(blank),
                 "--driving", str(driving), "--out", str(out), "--device", "cpu"]) == 1
    _one_line_error(capsys, str(blank), "no face")

    empty = write_video(tmp_path / "empty.mp4", [np.full((128, 128, 3), 60, np.uint8)] * 4, fps=10)
    assert main(["fake", "animate", "--model", str(models["animation"]), "--source",
                 str(_face_image(tiny_world, tmp_path)), "--driving", str(empty), "--out", str(out),
                 "--device", "cpu"]) == 1
    _one_line_error(capsys, str(empty), "no face")
    assert not out.exists()


def test_a_checkpoint_of_the_other_family_fails_in_one_line(models, tiny_world, tmp_path, capsys):
    out = tmp_path / "x.mp4"
    assert main(["fake", "swap", "--model", str(models["animation"]), "--target", str(_video(tiny_world, 1)),
                 "--out", str(out), "--device", "cpu"]) == 1
    _one_line_error(capsys, str(models["animation"]), "'animation' generator checkpoint", "face-swap")
    assert main(["fake", "animate", "--model", str(models["swap"]), "--source",
                 str(_face_image(tiny_world, tmp_path)), "--driving", str(_video(tiny_world, 3)), "--out", str(out),
                 "--device", "cpu"]) == 1
    _one_line_error(capsys, str(models["swap"]), "'faceswap' generator checkpoint", "face-animation")
    assert main(["fake", "swap", "--model", str(models["detector"]), "--target", str(_video(tiny_world, 1)),
                 "--out", str(out), "--device", "cpu"]) == 1
    _one_line_error(capsys, str(models["detector"]), "detector checkpoint")
    assert not out.exists()


@pytest.mark.parametrize("family", ["swap", "animation"])
def test_weights_of_another_resolution_fail_in_one_line(family, models, tiny_world, tmp_path, capsys):
    """A config.json that claims another crop size than its weights were trained at (a hand-edited or
    mixed-up checkpoint) is refused before any frame is made."""
    mixed = Path(shutil.copytree(models[family], tmp_path / "mixed", ignore=shutil.ignore_patterns("last", "best")))
    document = json.loads((mixed / CONFIG_FILE).read_text())
    section = "model" if family == "swap" else "config"
    document[section]["size"] = 64
    (mixed / CONFIG_FILE).write_text(json.dumps(document))
    out = tmp_path / "x.mp4"
    if family == "swap":
        args = ["fake", "swap", "--model", str(mixed), "--target", str(_video(tiny_world, 1))]
    else:
        args = ["fake", "animate", "--model", str(mixed), "--source", str(_face_image(tiny_world, tmp_path)),
                "--driving", str(_video(tiny_world, 3))]
    assert main([*args, "--out", str(out), "--device", "cpu"]) == 1
    _one_line_error(capsys, str(mixed / WEIGHTS_FILE), "trained on 32px crops", "64px")
    assert not out.exists()
