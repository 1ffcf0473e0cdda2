"""`forensics export --onnx`: a frame detector as ONNX that onnxruntime scores like torch, with the scoring data
beside it; a clip detector and a missing model are one line each."""
from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from detectors import create_detector, load_detector, save_detector
from forensics.cli.main import main


@pytest.fixture(scope="module")
def frame_model(tmp_path_factory):
    torch.manual_seed(0)
    return save_detector(tmp_path_factory.mktemp("frame") / "model", create_detector("mobilenetv3-small", input_size=64),
                         {"threshold": 0.7, "calibration": {"a": 0.5, "b": -0.25}, "crop": {"size": 64, "margin": 0.25}})


def test_the_onnx_model_scores_new_crops_as_torch_does(frame_model, tmp_path, capsys):
    out = tmp_path / "onnx" / "detector.onnx"
    assert main(["export", "--model", str(frame_model), "--onnx", str(out), "--batch", "8"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "agrees with torch" in line and str(out) in line
    report = json.loads(out.with_suffix(".onnx.json").read_text())
    assert report["check"]["max_abs_probability_diff"] <= report["check"]["tolerance"]
    assert report["scoring"]["calibration"] == {"a": 0.5, "b": -0.25} and report["scoring"]["threshold"] == 0.7
    assert report["timing"]["onnxruntime_cpu_ms"] > 0 and report["timing"]["torch_cpu_ms"] > 0

    # crops it never saw in the check, at another batch size: the graph's batch dimension is free
    loaded = load_detector(frame_model)
    crops = np.random.default_rng(5).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    inputs = loaded.model.preprocess(crops)
    with torch.no_grad():
        expected = loaded.model(inputs).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"crops": inputs.numpy()})
    assert got.shape == (3,) and np.allclose(got, expected, atol=1e-4)


def test_what_cannot_be_exported_is_one_line(tmp_path, capsys):
    clip = save_detector(tmp_path / "clip", create_detector("temporal-small"), {"threshold": 0.5})
    assert main(["export", "--model", str(clip), "--onnx", str(tmp_path / "c.onnx")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "clip detector" in err and not (tmp_path / "c.onnx").exists()
    assert main(["export", "--model", str(tmp_path / "nothing"), "--onnx", str(tmp_path / "n.onnx")]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(tmp_path / "nothing") in err
