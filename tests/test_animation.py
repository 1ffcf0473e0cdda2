"""Face animation family: keypoints, equivariance, dense motion, training in the shared loop, checkpoints,
`animate` end to end and its one-line errors, on a tiny synthetic world rendered here."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from forensics.media import iter_frames, probe, write_video
from forensics.synthetic import WorldConfig, generate_world
from forensics.synthetic.faceset import load_faceset
from forensics.training import load_module_weights
from generators.animation import (AnimationConfig, DenseMotionNetwork, GeneratorCheckpointError, KeypointDetector,
                                  OcclusionAwareGenerator, animate, build_modules, load_animation, reenact_crops,
                                  train_animation, transfer)
from generators.animation.keypoints import heatmap_to_keypoints, kp2gaussian, make_coordinate_grid
from generators.animation.losses import RandomTransform, equivariance_loss

TINY = dict(size=32, num_kp=5, head_kernel=3, kp_block_expansion=8, kp_num_blocks=2, kp_max_features=32,
            dm_block_expansion=8, dm_num_blocks=2, dm_max_features=32, gen_block_expansion=8, gen_max_features=32,
            gen_down_blocks=2, gen_bottleneck_blocks=1, disc_block_expansion=8, disc_num_blocks=2,
            disc_max_features=32, feature_widths=[8, 16], loss_scales=[1.0, 0.5], batch_size=8, pairs_per_video=16,
            lr_generator=1e-3, epochs=2, adversarial_start_epoch=1, eval_frames=4, grid_columns=4)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("anim_world")
    generate_world(root, WorldConfig(identities=2, videos_per_identity=2, frames=8, size=128, seed=5), progress=False)
    return root


class RecordingRun:
    """Stands in for a forensics.tracking Run: keeps what the training logs (artifacts copied, since they
    are written to temporary folders)."""

    def __init__(self, folder):
        self.folder, self.metrics, self.images, self.artifacts, self.dicts = folder, [], {}, [], {}

    def log_metrics(self, metrics, step=None):
        self.metrics.append((step, dict(metrics)))

    def log_image(self, image, artifact_file):
        self.images[artifact_file] = image

    def log_artifact(self, local_file, artifact_path=None):
        self.artifacts.append(shutil.copy(local_file, self.folder))

    def log_dict(self, obj, artifact_file):
        self.dicts[artifact_file] = obj


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """A tiny model trained for two epochs (the second adversarial) and exported as a checkpoint."""

    config = AnimationConfig(**TINY, world=str(world), device="cpu")
    run = RecordingRun(tmp_path_factory.mktemp("anim_run"))
    result, model_dir = train_animation(config, tmp_path_factory.mktemp("anim_model"), run=run, progress=False)
    return {"result": result, "run": run, "model_dir": model_dir, "config": config}


def smooth_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Random low-frequency images: structure for keypoints to lock onto, unlike white noise."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((batch, 3, 4, 4), generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def test_keypoints_are_inside_the_image_with_one_per_heatmap():
    torch.manual_seed(0)
    detector = KeypointDetector(num_kp=6, block_expansion=8, num_blocks=2, max_features=32, head_kernel=3).eval()
    out = detector(smooth_images(3, 32))
    assert out["value"].shape == (3, 6, 2) and out["jacobian"].shape == (3, 6, 2, 2)
    assert out["value"].abs().max() <= 1.0
    assert torch.allclose(out["heatmap"].sum(dim=(2, 3)), torch.ones(3, 6), atol=1e-5)


def test_soft_argmax_finds_a_bright_spot_where_it_is():
    where = torch.tensor([[[0.5, -0.25]]])
    blob = kp2gaussian(where, (33, 33), variance=0.002)
    found = heatmap_to_keypoints(blob / blob.sum(dim=(2, 3), keepdim=True))
    assert torch.allclose(found, where, atol=1e-3)


def test_random_transform_moves_pixels_the_way_it_moves_coordinates():
    """The equivariance loss is only right if transform_frame and warp_coordinates agree: a spot seen at p
    in the warped image must sit at T(p) in the original."""

    where = torch.tensor([[[0.2, -0.1]]])
    image = kp2gaussian(where, (65, 65), variance=0.002)
    transform = RandomTransform(1, sigma_affine=0.1, sigma_tps=0.01, generator=torch.Generator().manual_seed(3))
    warped = transform.transform_frame(image)
    seen = heatmap_to_keypoints(warped / warped.sum(dim=(2, 3), keepdim=True))
    assert (seen - where).abs().max() > 0.01  # the transform really moved it
    assert torch.allclose(transform.warp_coordinates(seen), where, atol=5e-3)


def test_equivariance_loss_is_zero_for_the_identity_and_positive_otherwise():
    torch.manual_seed(0)
    detector = KeypointDetector(num_kp=5, block_expansion=8, num_blocks=2, max_features=32, head_kernel=3)
    frames = smooth_images(4, 32, seed=1)
    identity = RandomTransform.identity(4)
    assert torch.equal(identity.transform_frame(frames), frames) or \
        torch.allclose(identity.transform_frame(frames), frames, atol=1e-6)
    loss, parts = equivariance_loss(detector(frames), detector(identity.transform_frame(frames)), identity)
    assert float(loss.detach()) < 1e-4 and float(parts["equivariance_jacobian"]) < 1e-4
    moved = RandomTransform(4, sigma_affine=0.1, sigma_tps=0.01, generator=torch.Generator().manual_seed(1))
    loss, parts = equivariance_loss(detector(frames), detector(moved.transform_frame(frames)), moved)
    assert float(parts["equivariance_value"]) > 1e-3 and torch.isfinite(loss.detach())


def test_dense_motion_with_no_keypoint_motion_is_the_identity_warp():
    torch.manual_seed(0)
    net = DenseMotionNetwork(num_kp=5, block_expansion=8, num_blocks=2, max_features=32, head_kernel=3)
    source = smooth_images(2, 32)
    kp = {"value": torch.rand(2, 5, 2) * 1.6 - 0.8, "jacobian": torch.eye(2) + 0.2 * torch.randn(2, 5, 2, 2)}
    still = net(source, kp_driving=kp, kp_source=kp)
    identity = make_coordinate_grid(16, 16).expand(2, 16, 16, 2)
    assert torch.allclose(still["deformation"], identity, atol=1e-5)
    assert torch.allclose(still["mask"].sum(1), torch.ones(2, 16, 16), atol=1e-5)
    moved = {"value": kp["value"] + 0.3, "jacobian": kp["jacobian"]}
    assert (net(source, kp_driving=moved, kp_source=kp)["deformation"] - identity).abs().max() > 0.05
    generator = OcclusionAwareGenerator(num_kp=5, block_expansion=8, max_features=32, num_bottleneck_blocks=1,
                                        dense_motion_params=dict(block_expansion=8, num_blocks=2, max_features=32,
                                                                 head_kernel=3))
    out = generator(source, kp_driving=kp, kp_source=kp)
    assert torch.allclose(out["deformed"], source, atol=1e-4)  # warping the source by no motion keeps it
    assert out["prediction"].shape == source.shape and 0 <= out["prediction"].min() <= out["prediction"].max() <= 1


def test_task_trains_in_the_shared_loop_with_both_optimizers(trained):
    history = trained["result"].history
    assert len(history) == 2
    for record in history:
        assert all(np.isfinite(v) for k, v in record.items() if k.startswith(("train/", "val/")))
    assert "train/loss_d" not in history[0] and "train/loss_d" in history[1]  # adversary off in epoch 0
    assert history[-1]["train/rec"] < history[0]["train/rec"]
    assert history[-1]["val/l1"] < history[0]["val/l1"]
    run = trained["run"]
    assert sorted(run.images) == [f"samples/epoch_{e:03d}.png" for e in range(2)]
    grid = run.images["samples/epoch_001.png"]
    assert grid.dtype == np.uint8 and grid.shape[0] >= 3 * 128  # rows: source / driving / generated
    assert (trained["model_dir"] / "last" / "state.safetensors").is_file()
    # the sample video at the end is made by `animate` from the world's files, with its recipe

    (video,) = run.artifacts
    (recipe,) = run.dicts.values()
    assert probe(video).frames == recipe["frames"] == 8 and recipe["generator"] == "animation"


def test_checkpoint_roundtrip_reproduces_the_trained_model(trained, tmp_path):
    model_dir = trained["model_dir"]
    document = json.loads((model_dir / "config.json").read_text())
    assert document["family"] == "animation" and document["config"]["size"] == 32
    assert document["training"]["epochs"] == 2 and "val/l1" in document["metrics"]
    model = load_animation(model_dir)
    faces = load_faceset(trained["config"].world, size=32)
    source, driving = faces.images[0], faces.images[1:6]
    again = reenact_crops(model, source, driving)
    modules = build_modules(trained["config"])  # the training loop's own last state, read independently
    for name in ("kp_detector", "generator"):
        modules[name].load_state_dict(load_module_weights(model_dir / "last", name))
    direct = transfer(modules["kp_detector"], modules["generator"], source[None], driving, device="cpu",
                      relative=False)
    assert np.array_equal(again.generated, direct["generated"])
    assert again.kp_driving.shape == (5, 5, 2) and np.abs(again.kp_driving).max() <= 1.0

    with pytest.raises(GeneratorCheckpointError, match="32px crops, not 64px"):
        load_animation(model_dir, size=64)
    with pytest.raises(ValueError, match=r"model's resolution"):
        reenact_crops(model, np.zeros((64, 64, 3), np.uint8), np.zeros((2, 64, 64, 3), np.uint8))
    other = shutil.copytree(model_dir, tmp_path / "swap")
    (other / "config.json").write_text(json.dumps({**document, "family": "faceswap"}))
    with pytest.raises(GeneratorCheckpointError, match="'faceswap' generator checkpoint, not a face-animation") as err:
        load_animation(other)
    assert "\n" not in str(err.value)
    torn = shutil.copytree(model_dir, tmp_path / "torn")
    (torn / "config.json").write_text(json.dumps({**document, "weights_sha256": "0" * 64}))
    with pytest.raises(GeneratorCheckpointError, match="does not match config.json"):
        load_animation(torn)


def test_animate_writes_the_driver_length_and_rate(trained, world, tmp_path):
    videos = sorted((world / "videos").rglob("*.mp4"))
    driving = videos[-1]
    source = next(iter(iter_frames(videos[0]))).image
    out = tmp_path / "animated.mp4"
    recipe = animate(trained["model_dir"], source, driving, out, relative=True, output_size=64, device="cpu",
                     composite=False)
    info, driver = probe(out), probe(driving)
    assert info.frames == driver.frames == recipe["frames"] and info.fps == pytest.approx(driver.fps)
    assert (info.width, info.height) == (64, 64) and recipe["output_size"] == 64 and recipe["model_size"] == 32

    # By default the animated face is blended back into the whole source photo (a talking photo).
    full = animate(trained["model_dir"], source, driving, tmp_path / "photo.mp4", relative=True, device="cpu")
    photo = probe(tmp_path / "photo.mp4")
    assert (photo.width, photo.height) == (source.shape[1], source.shape[0]) == tuple(full["output_size"])
    assert photo.frames == driver.frames and full["blending"] == "feather" and full["colour_transfer"] == "reinhard"
    first = next(iter(iter_frames(tmp_path / "photo.mp4"))).image.astype(int)
    corner = np.abs(first[:16, :16] - source[:16, :16].astype(int)).mean()
    assert corner < 8                                    # away from the face, the frame is the source photo
    assert recipe["frames_without_face"] == 0 and recipe["relative"] is True
    saved = json.loads((trained["model_dir"] / "config.json").read_text())
    assert recipe["checkpoint_sha256"] == saved["weights_sha256"]


def test_animate_errors_are_one_line_and_name_the_file(trained, world, tmp_path):
    import cv2

    driving = sorted((world / "videos").rglob("*.mp4"))[0]
    blank_image = tmp_path / "blank.png"
    cv2.imwrite(str(blank_image), np.full((128, 128, 3), 120, np.uint8))
    with pytest.raises(ValueError, match=r"blank\.png: no face found in the source image") as err:
        animate(trained["model_dir"], blank_image, driving, tmp_path / "a.mp4", device="cpu")
    assert "\n" not in str(err.value)

    source = next(iter(iter_frames(driving))).image
    empty = write_video(tmp_path / "empty.mp4", [np.full((128, 128, 3), 60, np.uint8)] * 4, fps=10)
    with pytest.raises(ValueError, match=r"empty\.mp4: no face found in any frame of the driving video"):
        animate(trained["model_dir"], source, empty, tmp_path / "b.mp4", device="cpu")
    assert not (tmp_path / "b.mp4").exists()

    detector_like = tmp_path / "detector"
    detector_like.mkdir()
    (detector_like / "config.json").write_text(json.dumps({"format": "forensics-detector/1", "detector": {}}))
    (detector_like / "model.safetensors").write_bytes(b"")
    with pytest.raises(GeneratorCheckpointError, match="a detector checkpoint, not a face-animation"):
        animate(detector_like, source, driving, tmp_path / "c.mp4", device="cpu")
    with pytest.raises(GeneratorCheckpointError, match="32px crops, not 64px"):
        animate(trained["model_dir"], source, driving, tmp_path / "d.mp4", device="cpu", size=64)
