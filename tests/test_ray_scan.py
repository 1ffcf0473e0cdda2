"""`forensics detect --ray`: a real local Ray cluster (a head node and one more worker node, both started and
stopped by the test) gives the same records as a single-process scan, bad inputs fail only their own record, and
--resume works as it does locally."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from detectors import create_detector, save_detector
from forensics.cli.detect import main as detect_main
from forensics.io import read_jsonl
from forensics.media import write_video
from forensics.synthetic import VideoConfig, render_video, sample_identity
from test_tracking import free_port

RAY = str(Path(sys.executable).with_name("ray"))
SAME = ("kind", "status", "error", "score", "label", "threshold", "frames_analyzed", "faces", "frame_scores",
        "model", "sha256", "warning")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ray start --head` plus a second node joining it, one CPU each; `ray stop` at the end."""
    temp = tmp_path_factory.mktemp("ray")
    port = free_port()
    # A loopback-only test cluster: Ray's token authentication off for its nodes and for this driver alike.
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PATH": f"{Path(RAY).parent}{os.pathsep}{os.environ['PATH']}"}
    common = ["--num-cpus", "1", "--num-gpus", "0", "--object-store-memory", str(200 * 1024 ** 2),
              "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1",
                    "--include-dashboard", "false", "--temp-dir", str(temp), *common], env=env, check=True,
                   capture_output=True, timeout=180)
    try:
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", *common],
                       env=env, check=True, capture_output=True, timeout=180)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        if saved is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("ray_inputs")
    files = []
    for k in range(3):
        frames, _ = render_video(sample_identity(np.random.default_rng(20 + k), 20 + k), seed=k,
                                 config=VideoConfig(size=160, frames=8, fps=25, max_yaw=10, max_pitch=8))
        files.append(write_video(folder / f"clip{k}.mp4", frames, fps=25))
    Image.fromarray(frames[0]).save(folder / "still.png")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    return [*files, folder / "still.png", folder / "broken.mp4"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_detector(tmp_path_factory.mktemp("ray_model") / "model",
                         create_detector("mobilenetv3-small", input_size=64),
                         {"threshold": 0.5, "crop": {"size": 64, "margin": 0.25}})


def test_records_on_a_ray_cluster_are_the_single_process_records(cluster, inputs, model_dir, tmp_path):
    args = [*map(str, inputs), "--model", str(model_dir), "--frames", "4", "--quiet"]
    assert detect_main([*args, "--jsonl", str(tmp_path / "here.jsonl")]) == 1          # broken.mp4 fails
    assert detect_main([*args, "--jsonl", str(tmp_path / "ray.jsonl"), "--ray", cluster, "--workers", "2"]) == 1
    here = {r["path"]: r for r in read_jsonl(tmp_path / "here.jsonl")}
    there = {r["path"]: r for r in read_jsonl(tmp_path / "ray.jsonl")}
    assert sorted(there) == sorted(here) == sorted(str(p) for p in inputs)
    for path, record in here.items():
        assert {k: there[path][k] for k in SAME} == {k: record[k] for k in SAME}, path
    assert there[str(inputs[-1])]["status"] == "error" and there[str(inputs[0])]["status"] == "ok"

    # --resume on the cluster: only what is missing is analysed again
    lines = (tmp_path / "ray.jsonl").read_text().splitlines()
    (tmp_path / "ray.jsonl").write_text("\n".join(lines[:2]) + "\n")
    assert detect_main([*args, "--jsonl", str(tmp_path / "ray.jsonl"), "--ray", cluster, "--resume"]) == 1
    again = read_jsonl(tmp_path / "ray.jsonl")
    assert len(again) == len(inputs) and sorted(r["path"] for r in again) == sorted(str(p) for p in inputs)


def test_a_cluster_that_cannot_be_reached_is_one_line(inputs, model_dir, tmp_path, capsys):
    code = detect_main([str(inputs[0]), "--model", str(model_dir), "--ray", f"127.0.0.1:{free_port()}",
                        "--jsonl", str(tmp_path / "x.jsonl"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("forensics detect: ray: cannot join the cluster at 127.0.0.1:")
    assert detect_main([str(inputs[0]), "--workers", "2"]) == 2          # --workers without --ray: a usage error
