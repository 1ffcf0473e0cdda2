"""Throughput of `forensics detect --ray` against single-process `forensics detect`, on the same inputs, in one run.

A local Ray cluster is started for the measurement (a head node and one more node joining it, as the tests do;
`--cpus-per-node` each), the same clips are scanned once by a plain `forensics detect` process and once by
`forensics detect --ray ADDRESS --workers N`, and the two JSONL files are compared record by record (scores must
be identical: same pipeline, same settings). Both timings are of whole commands, start-up included, since that
is what a user waits for.

    python -m benchmarks.detect_ray                       # 16 clips of 4 s 720p, 2 workers
    python -m benchmarks.detect_ray --clips 64 --workers 8 --cpus-per-node 4

On a 2-core machine the two "nodes" share the same two cores, so this shows the overhead of going through Ray
more than its speed-up; the figure that matters for a cluster comes from a machine with more cores or GPUs.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.detect_speed import make_clip, make_model
from benchmarks.machine import machine_info
from forensics.io import atomic_write_json, read_jsonl

RESULTS = Path("benchmarks/results/detect_ray.json")
COMPARED = ("status", "score", "label", "frames_analyzed", "faces", "frame_scores", "error")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(command: list[str], env: dict) -> tuple[float, int, str]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return time.perf_counter() - start, done.returncode, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each 720p clip")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpus-per-node", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory(prefix="detect_ray_") as tmp:
        work = Path(tmp)
        first = make_clip(work / "clip000.mp4", args.seconds, seed=0)
        clips = [first]
        for k in range(1, args.clips):          # copies under other names: the same work per input
            clips.append(work / f"clip{k:03d}.mp4")
            clips[-1].write_bytes(first.read_bytes())
        model = make_model(work / "model")
        detect = [str(bin_dir / "forensics"), "detect", *map(str, clips), "--model", str(model), "--quiet"]

        single_s, single_rc, _ = timed([*detect, "--jsonl", str(work / "single.jsonl")], env)
        port = free_port()
        node = ["--num-cpus", str(args.cpus_per_node), "--num-gpus", "0", "--disable-usage-stats",
                "--node-ip-address", "127.0.0.1"]
        subprocess.run([str(bin_dir / "ray"), "start", "--head", "--port", str(port), "--include-dashboard",
                        "false", "--temp-dir", str(work / "ray"), *node], env=env, check=True, capture_output=True)
        try:
            subprocess.run([str(bin_dir / "ray"), "start", "--address", f"127.0.0.1:{port}", *node], env=env,
                           check=True, capture_output=True)
            ray_s, ray_rc, ray_last = timed([*detect, "--jsonl", str(work / "ray.jsonl"), "--ray",
                                             f"127.0.0.1:{port}", "--workers", str(args.workers)], env)
        finally:
            subprocess.run([str(bin_dir / "ray"), "stop", "--force"], env=env, capture_output=True)

        single = {r["path"]: r for r in read_jsonl(work / "single.jsonl")}
        there = {r["path"]: r for r in read_jsonl(work / "ray.jsonl")} if (work / "ray.jsonl").is_file() else {}
        same = sum(1 for p, r in single.items() if p in there and all(there[p].get(k) == r.get(k) for k in COMPARED))

    result = {
        "what": "forensics detect on N copies of a 720p H.264 clip (default sampling, untrained mobilenetv3-small): "
                "one process vs --ray on a local 2-node cluster; wall time of each whole command",
        "command": "python -m benchmarks.detect_ray " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_info(),
        "inputs": {"clips": args.clips, "seconds_each": args.seconds, "resolution": "1280x720"},
        "cluster": {"nodes": 2, "cpus_per_node": args.cpus_per_node, "workers": args.workers},
        "single_process": {"seconds": round(single_s, 2), "files_per_s": round(args.clips / single_s, 3),
                           "exit_status": single_rc},
        "ray": {"seconds": round(ray_s, 2), "files_per_s": round(args.clips / ray_s, 3), "exit_status": ray_rc,
                "last_line": ray_last or None},
        "speedup": round(single_s / ray_s, 3),
        "records_identical": f"{same}/{len(single)}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("single_process", "ray", "speedup", "records_identical")}))
    return 0 if single_rc == 0 and ray_rc == 0 and same == len(single) else 1


if __name__ == "__main__":
    sys.exit(main())
