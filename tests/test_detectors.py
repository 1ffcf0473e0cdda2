"""detectors: registry, forward contract, preprocessing, frequency branch, checkpoints, clip aggregation."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

import detectors
import forensics.weights as weights
from detectors import (
    DEFAULT_DETECTOR,
    DetectorLoadError,
    aggregate_scores,
    create_detector,
    list_detectors,
    load_detector,
    predict_logits,
    save_detector,
)
from detectors.calibrate import CalibrationError, calibrate
from detectors.registry import detector_kind
from forensics.io import sha256_file

REQUIRED = {"mobilenetv3-small", "mobilenetv3-small-freq", "xception", "efficientnet-b0", "efficientnet-b4"}


def _checkerboard(size: int, base: int = 128, amplitude: int = 8) -> np.ndarray:
    """The classic transposed-convolution trace: a 1-pixel checkerboard of a few grey levels."""
    image = np.full((size, size, 3), base, np.int32)
    image[::2, ::2] += amplitude
    image[1::2, 1::2] += amplitude
    return image.astype(np.uint8)


def _assert_one_line(exc: BaseException, *fragments: str) -> None:
    text = str(exc)
    assert "\n" not in text and text, text
    for fragment in fragments:
        assert fragment in text, text


# ---------------------------------------------------------------- registry and forward contract

def test_registry_lists_the_baselines_and_a_cpu_default():
    names = list_detectors()
    assert REQUIRED <= set(names)
    assert DEFAULT_DETECTOR == "mobilenetv3-small" and DEFAULT_DETECTOR in names
    default = create_detector()
    assert default.config.name == DEFAULT_DETECTOR and default.config.input_size == 128
    assert sum(p.numel() for p in default.parameters()) < 3_000_000
    xception = create_detector("xception")
    assert xception.config.backbone == "legacy_xception" and xception.config.input_size == 299
    assert xception.config.mean == (0.5, 0.5, 0.5)  # the backbone's own normalisation, not ImageNet's


def test_registry_rejects_unknown_names_and_options_in_one_line():
    with pytest.raises(ValueError) as unknown:
        create_detector("resnet-9000")
    _assert_one_line(unknown.value, "resnet-9000", DEFAULT_DETECTOR)
    with pytest.raises(ValueError) as option:
        create_detector(DEFAULT_DETECTOR, widht=3)
    _assert_one_line(option.value, "widht", "input_size")
    with pytest.raises(ValueError):
        create_detector(DEFAULT_DETECTOR, input_size=16)


@pytest.mark.parametrize("name", list_detectors())
def test_every_detector_gives_one_logit_per_crop_or_clip(name):
    torch.manual_seed(0)
    model = create_detector(name, input_size=64).eval()
    clip = detector_kind(name) == "clip"
    with torch.no_grad():
        logits = model(torch.randn(3, 4, 3, 64, 64) if clip else torch.randn(3, 3, 64, 64))
    assert logits.shape == (3,) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    assert clip or model.config.frequency == name.endswith("-freq")


def test_default_trains_end_to_end_with_dropout():
    torch.manual_seed(0)
    model = create_detector(drop_rate=0.2, frequency=True).train()
    x = torch.randn(4, 3, 128, 128)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), torch.tensor([0.0, 1.0, 0.0, 1.0]))
    loss.backward()
    assert model.head.weight.grad.abs().sum() > 0
    assert model.frequency.residual_net[0][0].weight.grad.abs().sum() > 0
    assert model.backbone.conv_stem.weight.grad.abs().sum() > 0
    assert model(x[:1]).shape == (1,)  # a ragged last batch of one still trains


# ---------------------------------------------------------------- preprocessing

def test_preprocess_resizes_any_crop_and_normalises_with_the_backbone_statistics():
    model = create_detector()
    mean, std = np.array(model.config.mean), np.array(model.config.std)
    grey = np.full((200, 150, 3), 200, np.uint8)
    small = np.full((50, 50, 3), 10, np.uint8)
    batch = model.preprocess([grey, small])
    assert batch.shape == (2, 3, 128, 128) and batch.dtype == torch.float32 and batch.device.type == "cpu"
    expected = (np.array([200, 10])[:, None] / 255.0 - mean) / std  # [2, 3]
    np.testing.assert_allclose(batch.mean(dim=(2, 3)).numpy(), expected, atol=1e-5)
    assert model.preprocess(grey).shape == (1, 3, 128, 128)  # one HxWx3 crop is a batch of one
    assert model.preprocess([]).shape == (0, 3, 128, 128)


def test_preprocess_uses_area_when_shrinking_and_bilinear_when_enlarging():
    model = create_detector()
    rng = np.random.default_rng(0)
    large = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    tiny = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    for crop, interpolation in ((large, cv2.INTER_AREA), (tiny, cv2.INTER_LINEAR)):
        reference = cv2.resize(crop, (128, 128), interpolation=interpolation)
        pixels = model.preprocess(crop)[0].permute(1, 2, 0).numpy() * np.array(model.config.std)
        pixels = (pixels + np.array(model.config.mean)) * 255.0
        np.testing.assert_allclose(pixels, reference, atol=1e-3)


def test_preprocess_rejects_non_rgb_uint8_in_one_line():
    model = create_detector()
    for bad in (np.zeros((32, 32), np.uint8), np.zeros((32, 32, 3), np.float32), np.zeros((32, 32, 4), np.uint8)):
        with pytest.raises(ValueError) as err:
            model.preprocess([np.zeros((32, 32, 3), np.uint8), bad])
        _assert_one_line(err.value, "crop 1")


# ---------------------------------------------------------------- frequency branch

def test_frequency_front_end_sees_only_high_frequency_content():
    torch.manual_seed(0)
    model = create_detector("mobilenetv3-small-freq").eval()
    flat = model.preprocess(np.full((128, 128, 3), 128, np.uint8))
    board = model.preprocess(_checkerboard(128))
    branch = model.frequency
    assert branch.residuals(flat).abs().max() < 1e-4
    assert branch.spectrum(flat).abs().max() < 1e-6
    assert branch.residuals(board).abs().max() > 0.5
    spectrum = branch.spectrum(board)[0]
    assert spectrum[-1] > 0.5 and spectrum[-1] > 10 * spectrum[:-1].max()  # the energy sits at Nyquist
    with torch.no_grad():
        assert (branch(board) - branch(flat)).abs().max() > 1e-3
        assert not torch.allclose(model(board), model(flat))


def test_frequency_branch_ignores_brightness_changes_that_the_rgb_path_sees():
    model = create_detector("mobilenetv3-small-freq").eval()
    dark, bright = (model.preprocess(_checkerboard(128, base=b)) for b in (60, 180))
    branch = model.frequency
    torch.testing.assert_close(branch.residuals(dark), branch.residuals(bright), atol=1e-4, rtol=0)
    torch.testing.assert_close(branch.spectrum(dark), branch.spectrum(bright), atol=1e-4, rtol=0)


# ---------------------------------------------------------------- local backbone weights

def test_pretrained_file_loads_local_backbone_weights(tmp_path):
    torch.manual_seed(1)
    source = timm.create_model("mobilenetv3_small_100", pretrained=False)  # with its ImageNet classifier
    weights = tmp_path / "imagenet.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(weights))
    model = create_detector(pretrained_file=str(weights))
    loaded = model.backbone.state_dict()
    for key, value in source.state_dict().items():
        if key.startswith("classifier."):
            assert key not in loaded
        else:
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert model.config.pretrained_file == str(weights)
    fresh = create_detector()
    assert not torch.equal(fresh.backbone.conv_stem.weight, model.backbone.conv_stem.weight)


def test_pretrained_file_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError) as missing:
        create_detector(pretrained_file=str(tmp_path / "nope.safetensors"))
    _assert_one_line(missing.value, "nope.safetensors", "not found")
    other = timm.create_model("efficientnet_b0", pretrained=False, num_classes=0)
    wrong = tmp_path / "effnet.safetensors"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(wrong))
    with pytest.raises(ValueError) as mismatch:
        create_detector(pretrained_file=str(wrong))
    _assert_one_line(mismatch.value, "effnet.safetensors", "mobilenetv3_small_100")
    # timm loads non-strictly once the classifier is dropped: unrelated keys must not pass as "loaded"
    unrelated = tmp_path / "unrelated.safetensors"
    save_file({"encoder.weight": torch.zeros(4, 4)}, str(unrelated))
    with pytest.raises(ValueError) as silent:
        create_detector(pretrained_file=str(unrelated))
    _assert_one_line(silent.value, "unrelated.safetensors", "missing")


def test_pretrained_file_takes_a_timm_hub_download_or_a_hugging_face_cache(tmp_path):
    """What users copy from a connected machine: the hub's model.safetensors in a folder, the cache folder of
    that model (refs/main names the snapshot), or the whole hub cache (the one timm/BACKBONE.* model in it)."""
    torch.manual_seed(3)
    source = timm.create_model("mobilenetv3_small_100", pretrained=False)
    hub = tmp_path / "hub"
    repo = hub / "models--timm--mobilenetv3_small_100.lamb_in1k"
    for snapshot in ("0ld", "c0ffee"):                       # an older snapshot must not be taken
        (repo / "snapshots" / snapshot).mkdir(parents=True)
        state = source.state_dict() if snapshot == "c0ffee" else timm.create_model(
            "mobilenetv3_small_100", pretrained=False).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(repo / "snapshots" / snapshot / "model.safetensors"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("c0ffee\n")
    (hub / "models--timm--efficientnet_b0.ra_in1k" / "snapshots").mkdir(parents=True)   # another model, ignored
    for given in (repo / "snapshots" / "c0ffee", repo, hub):
        model = create_detector(pretrained_file=str(given))
        torch.testing.assert_close(model.backbone.conv_stem.weight, source.conv_stem.weight, rtol=0, atol=0)
    with pytest.raises(ValueError) as none:
        create_detector(pretrained_file=str(tmp_path))
    _assert_one_line(none.value, str(tmp_path), "no timm/mobilenetv3_small_100 model")


# ---------------------------------------------------------------- checkpoints

def _trained_looking(name: str = "mobilenetv3-small-freq"):
    """A model whose BatchNorm statistics are no longer the defaults, so a lost buffer would show."""
    torch.manual_seed(2)
    model = create_detector(name, input_size=64).train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, 64, 64) * 2 + 0.5)
    return model.eval()


def test_save_load_roundtrip_is_exact_and_never_unpickles(tmp_path, monkeypatch):
    model = _trained_looking()
    meta = {"threshold": 0.7, "calibration": {"a": 2.0, "b": -1.0}, "metrics": {"val/auc": 0.9}}
    directory = save_detector(tmp_path / "ckpt", model, meta)
    assert sorted(p.name for p in directory.iterdir()) == ["MLmodel", "config.json", "model.safetensors"]
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob("*.pkl"))
    config = json.loads((directory / "config.json").read_text())
    assert config["format"] == "forensics-detector/1" and config["detector"]["name"] == "mobilenetv3-small-freq"
    assert config["detector"]["input_size"] == 64 and config["threshold"] == 0.7

    def no_pickle(*args, **kwargs):
        raise AssertionError("load_detector must not call torch.load")

    monkeypatch.setattr(torch, "load", no_pickle)
    x = torch.randn(3, 3, 64, 64)
    for path in (directory, directory / "model.safetensors"):
        loaded = load_detector(path)
        assert not loaded.model.training and loaded.name == "mobilenetv3-small-freq"
        assert loaded.sha256 == sha256_file(directory / "model.safetensors")
        with torch.no_grad():
            torch.testing.assert_close(loaded.model(x), model(x), rtol=0, atol=0)
    assert loaded.threshold == 0.7
    assert loaded.crop == {"size": 64, "margin": 0.25}
    probs = loaded.probability(torch.tensor([0.5, 0.0, 1000.0]))
    np.testing.assert_allclose(probs, [0.5, 1 / (1 + math.e), 1.0])
    crops = np.random.default_rng(0).integers(0, 256, (5, 80, 80, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = model(model.preprocess(crops)).numpy()
    np.testing.assert_allclose(loaded.logits(crops, batch_size=2), expected, rtol=1e-5, atol=1e-6)


def test_save_refuses_meta_that_would_overwrite_the_architecture(tmp_path):
    with pytest.raises(ValueError):
        save_detector(tmp_path / "x", create_detector(), {"detector": {}})


def _edit_config(directory, **changes):
    path = directory / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))
    return config


def test_load_errors_are_one_line_and_name_the_file(tmp_path):
    def expect(path, *fragments):
        with pytest.raises(DetectorLoadError) as err:
            load_detector(path)
        assert isinstance(err.value, ValueError)
        _assert_one_line(err.value, *fragments)

    expect(tmp_path / "missing", "missing", "no such file")
    pickle_file = tmp_path / "model.pt"
    pickle_file.write_bytes(b"\x80\x04not really")
    expect(pickle_file, "model.pt", "not a detector directory")
    expect(tmp_path, "model.safetensors", "missing")

    good = save_detector(tmp_path / "good", create_detector(input_size=64), {})
    (good / "config.json").write_text("{not json")
    expect(good, "config.json", "invalid JSON")

    def fresh(name):
        return save_detector(tmp_path / name, create_detector(input_size=64), {})

    expect_dir = fresh("format")
    _edit_config(expect_dir, format="someone-else/9")
    expect(expect_dir, "config.json", "unsupported format")

    arch = fresh("arch")
    config = _edit_config(arch)
    _edit_config(arch, detector={**config["detector"], "name": "resnet-9000"})
    expect(arch, "config.json", "unknown detector architecture", "resnet-9000")

    shape = fresh("shape")
    config = _edit_config(shape)
    _edit_config(shape, detector={**config["detector"], "name": "mobilenetv3-small-freq", "frequency": True})
    expect(shape, "model.safetensors", "do not fit")

    torn = fresh("torn")
    save_file({"x": torch.zeros(2)}, str(torn / "model.safetensors"))
    expect(torn, "model.safetensors", "sha256 differs")

    garbage = fresh("garbage")
    (garbage / "model.safetensors").write_bytes(b"\x00" * 64)
    _edit_config(garbage, weights_sha256=None)
    expect(garbage, "model.safetensors", "not a readable safetensors file")


def test_ctrl_c_during_a_load_is_an_interrupt_after_the_load_not_a_bad_file(tmp_path, monkeypatch):
    """torch turns a KeyboardInterrupt inside its C++ into a ValueError; a resumable run must see Ctrl-C."""
    import signal

    good = save_detector(tmp_path / "good", create_detector(input_size=64), {})
    real_load, finished = weights.load_file, []

    def load_while_the_user_presses_ctrl_c(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)
        tensors = real_load(*args, **kwargs)
        finished.append(len(tensors))
        return tensors

    monkeypatch.setattr(weights, "load_file", load_while_the_user_presses_ctrl_c)
    # Python's own Ctrl-C handler, as in a terminal: a test run started in the background (a shell without job
    # control) inherits SIGINT ignored, where no Ctrl-C exists to defer.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            load_detector(good)
        assert finished and finished[0] > 0                  # the load ran to its end first
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


# ---------------------------------------------------------------- clip aggregation

def test_robust_aggregate_finds_a_partly_fake_track_that_the_mean_dilutes():
    track = [6.0] * 9 + [-3.0] * 21  # 30 % of frames strongly fake
    robust, mean = aggregate_scores(track), aggregate_scores(track, "mean")
    assert mean < 0 < robust
    assert robust > mean + 2.0


def test_robust_aggregate_ignores_a_single_outlier_frame_better_than_max():
    rng = np.random.default_rng(0)
    real = list(-3.0 + 0.3 * rng.standard_normal(29)) + [8.0]  # one blurred frame fools the model
    robust, maximum = aggregate_scores(real), aggregate_scores(real, "max")
    assert maximum == 8.0
    assert robust < -2.0
    assert abs(robust - aggregate_scores(real[:-1])) < 0.5


def test_aggregate_methods_and_bad_input():
    values = [0.0, 1.0, 2.0, 3.0]
    assert aggregate_scores(values, "mean") == 1.5
    assert aggregate_scores(values, "median") == 1.5
    assert aggregate_scores(values, "max") == 3.0
    assert aggregate_scores(values, "topk") == 3.0
    assert aggregate_scores(values) == 2.5
    assert aggregate_scores([4.2]) == 4.2
    assert set(detectors.AGGREGATORS) == {"robust", "mean", "median", "max", "topk"}
    with pytest.raises(ValueError):
        aggregate_scores([])
    with pytest.raises(ValueError):
        aggregate_scores([1.0, float("nan")])
    with pytest.raises(ValueError) as unknown:
        aggregate_scores(values, "mode")
    _assert_one_line(unknown.value, "mode", "robust")


# ---------------------------------------------------------------- calibration: the one recipe

def test_calibrate_fits_platt_and_sets_the_video_threshold_between_the_classes():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(-2.0, 1.0, (6, 8)), rng.normal(2.0, 1.0, (6, 8))   # 6 videos x 8 frames each
    logits = np.concatenate([real.ravel(), fake.ravel()])
    labels = np.r_[np.zeros(48), np.ones(48)].astype(int)
    groups = [f"r{i // 8}" for i in range(48)] + [f"f{i // 8}" for i in range(48)]
    video = calibrate(labels, logits, groups)
    frame = calibrate(labels, logits)
    assert video.level == "video" and video.videos == 12 and frame.level == "frame" and frame.videos is None
    assert video.a > 0 and video.a == frame.a and video.b == frame.b            # one Platt fit, on frames
    probs = video.probability(logits)
    assert probs[labels == 1].min() > probs[labels == 0].max() - 1e-9 or np.mean(probs[labels == 1]) > 0.9
    assert 0.0 < video.threshold < 1.0 and set(video.to_meta()) == {"threshold", "calibration", "threshold_level"}


def test_calibrate_refuses_inverted_flat_and_one_class_data_in_one_line():
    labels = np.r_[np.zeros(20), np.ones(20)].astype(int)
    inverted = np.r_[np.full(20, 2.0), np.full(20, -2.0)] + np.linspace(0, 0.1, 40)
    flat = np.full(40, 0.04)
    for logits, reason in ((inverted, "slope"), (flat, "slope")):
        with pytest.raises(CalibrationError, match=reason) as caught:
            calibrate(labels, logits)
        assert "\n" not in str(caught.value)
    with pytest.raises(CalibrationError, match="real and fake"):
        calibrate(np.zeros(10, int), np.linspace(-1, 1, 10))


def test_predict_logits_matches_the_loaded_detector_and_restores_train_mode(tmp_path):
    model = create_detector("mobilenetv3-small", input_size=64)
    save_detector(tmp_path / "m", model, {"threshold": 0.5})
    loaded = load_detector(tmp_path / "m")
    crops = np.random.default_rng(1).integers(0, 255, (5, 64, 64, 3), dtype=np.uint8)
    model.train()
    direct = predict_logits(model, crops, torch.device("cpu"), batch_size=2)
    assert model.training and direct.shape == (5,) and direct.dtype == np.float32
    np.testing.assert_allclose(loaded.logits(crops), direct, atol=1e-5)


def test_registry_names_live_in_one_place():
    """Nothing but detectors/aliases.py spells the registered model's name or passes its aliases as literals."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pattern = re.compile(r"""["']forensics-detector["']|(alias|default)\s*=\s*["'](champion|challenger)["']""")
    offenders = [str(p.relative_to(root)) for package in ("forensics", "detectors", "generators", "benchmarks")
                 for p in (root / package).rglob("*.py")
                 if p.name != "aliases.py" and pattern.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
