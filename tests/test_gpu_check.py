"""benchmarks/gpu_check.sh, the prepared GPU run, goes through every part on the CPU at toy size (--smoke): the
same code a GPU machine runs, so a lent GPU's few minutes are not spent finding a typo."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_check_runs_end_to_end_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--smoke",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=400,
                          env={"PY": sys.executable, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["smoke"] and result["device"] == "cpu" and result["machine"]["cpu_cores"] >= 1
    assert set(result["detector_training"]) == {"mobilenetv3-small", "efficientnet-b4"}
    for figures in result["detector_training"].values():
        assert figures["images_per_s"] > 0 and figures["tflop_per_step"] > 0
        assert figures["fraction_of_bf16_peak"] is None          # no peak is known for a CPU
    assert set(result["generator_training"]) == {"faceswap", "animation"}
    assert all(g["images_per_s"] > 0 for g in result["generator_training"].values())
    assert result["detect_every_frame"]["status"] == "ok" and result["detect_every_frame"]["frames_per_s"] > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run for real")
def test_without_a_gpu_the_check_says_so_in_one_line():
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "no CUDA device" in done.stderr
