"""Face swap: training in the shared loop, checkpoints, conversion of a real (rendered) video, bad input.

One tiny world (2 identities, 8 frames at 128 px) and one tiny model (32 px crops, a few dozen steps) serve
every test: the checks are about plumbing and contracts, not about how good the swap looks.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from forensics.faces import get_face_detector
from forensics.media import probe, sample_frames, write_video
from forensics.synthetic import WorldConfig, generate_world
from forensics.synthetic.faceset import load_faceset
from forensics.training import Trainer
from generators.faceswap import FaceswapConfig, generate, load_faceswap, make_task, swap_crops, swap_video
from generators.faceswap.augment import WarpConfig, apply_warps, hull_masks, sample_warps
from generators.registry import load_generator

TINY = dict(size=32, encoder_channels=8, bottleneck_channels=32, latent_dim=32, decoder_channels=32, disc_channels=8,
            epochs=2, steps_per_epoch=10, batch_size=4, lr=2e-3, adv_start_epoch=1, eval_frames=4, preview=2,
            device="cpu", seed=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("faceswap_world")
    generate_world(root, WorldConfig(identities=2, videos_per_identity=1, frames=8, size=128, seed=5), progress=False)
    return root


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """(task, FitResult, checkpoint dir) of a 2-epoch run; the adversarial term is on in epoch 1."""

    config = FaceswapConfig(world=str(world), identity_a=0, identity_b=1, **TINY)
    task = make_task(config)
    ckpt = tmp_path_factory.mktemp("faceswap_ckpt")
    result = Trainer(task, config.train_config(ckpt, progress=False)).fit()
    task.export(ckpt, {"train/rec": result.history[-1]["train/rec"]})
    return task, result, ckpt


def _video_of(world: Path, identity: int) -> Path:
    return sorted((world / "videos").glob(f"id{identity:04d}_*.mp4"))[0]


def test_warps_move_the_input_but_not_the_target():
    rng = np.random.default_rng(0)
    images = torch.rand(3, 3, 32, 32)
    masks = torch.rand(3, 1, 32, 32)
    still = WarpConfig(aug_rotation=0, aug_scale=0, aug_shift=0, warp_rotation=0, warp_scale=0, warp_shift=0,
                       warp_elastic=0, flip=False)
    warped, target, target_mask = apply_warps(images, masks, sample_warps(rng, 3, still))
    assert torch.allclose(target, images, atol=1e-5) and torch.allclose(warped, images, atol=1e-5)
    assert torch.allclose(target_mask, masks, atol=1e-5)
    input_only = WarpConfig(aug_rotation=0, aug_scale=0, aug_shift=0, warp_elastic=0.1, flip=False)
    warped, target, _ = apply_warps(images, masks, sample_warps(rng, 3, input_only))
    assert torch.allclose(target, images, atol=1e-5)
    assert (warped - images).abs().mean() > 0.05
    flipped = WarpConfig(aug_rotation=0, aug_scale=0, aug_shift=0, warp_rotation=0, warp_scale=0, warp_shift=0,
                         warp_elastic=0, flip=True)
    images, masks = torch.rand(8, 3, 32, 32), torch.rand(8, 1, 32, 32)
    warped, target, target_mask = apply_warps(images, masks, sample_warps(np.random.default_rng(1), 8, flipped))
    mirrored = [bool(torch.allclose(target[i], images[i].flip(-1), atol=1e-5)) for i in range(8)]
    assert 0 < sum(mirrored) < 8                                        # flips some, not all
    for i, m in enumerate(mirrored):
        assert torch.allclose(target_mask[i], masks[i].flip(-1) if m else masks[i], atol=1e-5)
        assert torch.allclose(target[i], images[i].flip(-1) if m else images[i], atol=1e-5)
    assert torch.allclose(warped, target, atol=1e-5)                    # input and target flipped together


def test_hull_mask_targets_cover_the_face_only(world):
    faces = load_faceset(world, size=32)
    masks = hull_masks(faces.landmarks[:4], 32)
    assert masks.shape == (4, 32, 32) and masks.min() >= 0 and masks.max() == pytest.approx(1.0)
    nose = faces.landmarks[:4, 30].round().astype(int)
    assert all(masks[i, y, x] > 0.9 for i, (x, y) in enumerate(nose))
    assert masks[:, 0, :].max() == 0 and masks[:, :, 0].max() == 0      # crop corners are background


def test_task_trains_in_the_shared_loop_and_losses_decrease(trained):
    task, result, _ = trained
    assert result.epochs_run == 2
    first, last = result.history
    for record in result.history:
        assert all(np.isfinite(v) for v in record.values())
    assert last["train/rec"] < first["train/rec"]
    assert last["train/l1_a"] < first["train/l1_a"] and last["train/l1_b"] < first["train/l1_b"]
    assert first["train/adv_g"] == 0.0 and last["train/adv_g"] != 0.0          # adversarial term off, then on
    assert {"train/loss_d", "val/l1_a", "val/l1_b"} <= set(last)
    grid = task.last_grid
    assert grid.dtype == np.uint8 and grid.shape[1] == 2 * 64                     # preview=2 columns, 64 px cells


def test_checkpoint_roundtrip_without_pickle(trained):
    task, _, ckpt = trained
    weights = ckpt / "generator.safetensors"
    header = int.from_bytes(weights.read_bytes()[:8], "little")
    assert json.loads(weights.read_bytes()[8:8 + header])          # safetensors: a JSON header, no pickle
    loaded = load_faceswap(ckpt)
    assert loaded.size == 32 and loaded.meta["identities"] == {"a": 0, "b": 1}
    assert loaded.config["training"]["data_sha256"] == task.data_sha256
    saved = task.generator.state_dict()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, saved[key].cpu()), key
    family, again = load_generator(ckpt)                           # the one loader: family from config.json
    assert family.name == "faceswap" and again.sha256 == loaded.sha256


def test_mask_head_output_is_a_probability_map_learned_from_the_hull(trained, world):
    faces = load_faceset(world, size=32).of_identity(1)
    rgb, masks = generate(load_faceswap(trained[2]), faces.images[:4], "a")
    assert rgb.shape == (4, 32, 32, 3) and masks.shape == (4, 32, 32)
    assert masks.min() >= 0.0 and masks.max() <= 1.0 and rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert masks[:, 12:20, 12:20].mean() > masks[:, :3, :].mean() + 0.2          # face centre vs top rows
    swapped = swap_crops(load_faceswap(trained[2]), faces.images[:4], "a", composite=True, colour="reinhard")
    assert swapped.dtype == np.uint8 and swapped.shape == faces.images[:4].shape


def test_swap_video_keeps_timing_and_leaves_the_background_alone(trained, world, tmp_path):
    target = _video_of(world, 1)
    out = tmp_path / "swapped.mp4"
    recipe = swap_video(trained[2], target, out, source="a")
    src_info, out_info = probe(target), probe(out)
    assert out_info.codec == "h264"
    assert out_info.frames == src_info.frames == 8 and out_info.fps == pytest.approx(src_info.fps)
    for key in ("generator", "checkpoint_sha256", "mask", "colour_transfer", "blending", "codec", "crf",
                "frames_swapped", "frames_without_face"):
        assert key in recipe, key
    assert recipe["frames_swapped"] + recipe["frames_without_face"] == 8 and recipe["frames_swapped"] >= 6
    assert recipe["checkpoint_sha256"] == json.loads((trained[2] / "config.json").read_text())["weights_sha256"]

    before = [f.image.astype(np.int16) for f in sample_frames(target).frames]
    after = [f.image.astype(np.int16) for f in sample_frames(out).frames]
    faces = get_face_detector().detect([b.astype(np.uint8) for b in before])
    changed = []
    for b, a, found in zip(before, after, faces):
        outside = np.ones(b.shape[:2], bool)
        if found:
            x1, y1, x2, y2 = found[0].box
            pad_x, pad_y = 0.3 * (x2 - x1), 0.3 * (y2 - y1)
            outside[max(0, int(y1 - pad_y)):int(y2 + pad_y), max(0, int(x1 - pad_x)):int(x2 + pad_x)] = False
            cx, cy, qx, qy = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
            changed.append(np.abs(a - b)[int(cy - qy):int(cy + qy), int(cx - qx):int(cx + qx)].mean())
        assert np.abs(a - b)[outside].mean() < 2.5          # codec noise only
    assert np.mean(changed) > 2 * 2.5                       # the face itself was replaced


def test_poisson_blending_and_sparse_detection_also_convert(trained, world, tmp_path):
    recipe = swap_video(trained[2], _video_of(world, 1), tmp_path / "p.mp4", source="a", blend="poisson",
                        colour="none", every=3)
    assert recipe["blending"] == "poisson" and recipe["detect_every"] == 3
    assert probe(tmp_path / "p.mp4").frames == 8 and recipe["frames_swapped"] >= 6


def test_wrong_or_mismatched_checkpoints_fail_in_one_line(trained, tmp_path):
    ckpt = trained[2]
    other = tmp_path / "animation"
    shutil.copytree(ckpt, other, ignore=shutil.ignore_patterns("last", "best"))
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "family": "animation"}))
    with pytest.raises(ValueError, match="animation") as err:
        swap_video(other, "unused.mp4", tmp_path / "x.mp4")
    assert str(other) in str(err.value) and "\n" not in str(err.value)

    (other / "config.json").write_text(json.dumps({"format": "forensics-detector/1", "detector": {}}))
    with pytest.raises(ValueError, match="a detector checkpoint, not a face-swap generator checkpoint"):
        load_faceswap(other)

    (other / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "size": 64}}))
    with pytest.raises(ValueError, match="do not fit") as err:
        load_faceswap(other)
    assert "generator.safetensors" in str(err.value) and "\n" not in str(err.value)

    with pytest.raises(ValueError, match="resolution mismatch") as err:
        load_faceswap(ckpt, size=64)
    assert str(ckpt) in str(err.value)
    with pytest.raises(ValueError, match="resolution mismatch"):
        swap_crops(load_faceswap(ckpt), np.zeros((2, 64, 64, 3), np.uint8), "a")
    with pytest.raises(ValueError, match="state.json|missing"):
        load_faceswap(ckpt / "last")


def test_a_video_without_faces_is_an_error_not_a_silent_copy(trained, tmp_path):
    ramp = np.linspace(0, 255, 96 * 96 * 3).reshape(96, 96, 3).astype(np.uint8)
    empty = write_video(tmp_path / "empty.mp4", [np.roll(ramp, k, axis=1) for k in range(5)], fps=10)
    out = tmp_path / "out.mp4"
    with pytest.raises(ValueError, match="no face") as err:
        swap_video(trained[2], empty, out)
    assert str(empty) in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()


def test_presets_load_and_reject_unknown_keys(tmp_path):
    small, gpu = FaceswapConfig.from_preset("cpu-small"), FaceswapConfig.from_preset("gpu")
    assert small.size == 64 and gpu.size == 256 and gpu.channels_last
    assert small.train_config().monitor is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("size: 64\nsharpness: 3\n")
    with pytest.raises(ValueError, match="sharpness"):
        FaceswapConfig.from_preset(str(bad))
    with pytest.raises(ValueError, match="must differ"):
        FaceswapConfig(identity_a=3, identity_b=3)
