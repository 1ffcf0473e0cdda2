"""Peak memory of `forensics detect` on normal and hostile video sizes (the bounded-memory goal: <= 2 GB).

Each clip is scanned by a fresh `forensics detect` process (default sampling, an untrained detector: the same
cost as a trained one) and its peak resident set size is read from the kernel (wait4's ru_maxrss), so imports,
MTCNN, the decoder and every kept frame count. Clips: the 10-s 720p talking head of benchmarks.detect_speed,
2 s of 3840x2160 (4K), and 40 frames of 8192x8192 and 16000x16000 grey (a few hundred KB as H.264: what a
hostile upload looks like).

    python -m benchmarks.detect_memory --label after
    python -m benchmarks.detect_memory --label before --source /tmp/old-checkout   # the same clips, older code

Results are merged into benchmarks/results/detect_memory.json under the label, so "before" and "after" sit
side by side with the commit each ran.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from benchmarks.detect_speed import make_clip, make_model
from benchmarks.machine import machine_info
from forensics.gitinfo import git_state
from forensics.io import atomic_write_json

RESULTS = Path("benchmarks/results/detect_memory.json")
GOAL_MB = 2048
TIME = "/usr/bin/time"             # GNU time (Debian package `time`)
# name -> (width, height, frames) of the synthetic clips; "720p" is the detect_speed talking head instead
CLIPS = {"4k": (3840, 2160, 50), "8192x8192": (8192, 8192, 40), "16000x16000": (16000, 16000, 40)}


def grey_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """Flat grey H.264 frames: tiny on disk, huge once decoded."""
    container = av.open(str(path), "w", format="mp4")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "ultrafast", "crf": "30"}
    grey = av.VideoFrame.from_ndarray(np.full((height, width, 3), 128, np.uint8), format="rgb24")
    for i in range(frames):
        grey.pts = i
        container.mux(stream.encode(grey))
    container.mux(stream.encode(None))
    container.close()
    return path


def make_clips(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    clips = {"720p": folder / "720p.mp4"}
    if not clips["720p"].is_file():
        make_clip(clips["720p"], 10.0)
    for name, (width, height, frames) in CLIPS.items():
        clips[name] = folder / f"{name}.mp4"
        if not clips[name].is_file():
            grey_clip(clips[name], width, height, frames)
    return clips


def peak_rss(command: list[str], env: dict, kill_above_mb: float) -> tuple[int, float, float, str, bool]:
    """(exit status, peak RSS in MB, wall seconds, last stderr line, killed) of one child process.

    GNU time reports the peak (forked from a tiny process: Linux keeps a parent's high-water mark across
    fork and exec, so a child forked from this Python would report at least this process's size). A child
    whose RSS passes `kill_above_mb` is killed, so an unbounded scan cannot take the machine down; its peak is
    then the largest RSS seen."""
    started = time.perf_counter()
    seen = 0.0
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([TIME, "-f", "MAXRSS_KB %M", *command], stdout=subprocess.DEVNULL, stderr=errors,
                                   env=env, start_new_session=True)
        killed = False
        while process.poll() is None:
            rss = sum(current_rss_mb(pid) for pid in children(process.pid))
            seen = max(seen, rss)
            if rss > kill_above_mb and not killed:
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
            time.sleep(0.05)
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
    reported = [int(line.split()[1]) / 1024 for line in lines if line.startswith("MAXRSS_KB ")]
    rest = [line for line in lines if not line.startswith(("MAXRSS_KB ", "Command "))]
    peak = reported[-1] if reported and not killed else seen
    return process.returncode, round(peak, 1), round(time.perf_counter() - started, 2), (rest or [""])[-1], killed


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def current_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


# An older checkout (--source) is imported instead of this one: the editable install's import hook, which
# would map `forensics` back to this tree, is taken off the child's import path first.
BOOT = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in "
        "getattr(f, '__module__', '') and 'editable' not in getattr(f, '__name__', '')]; "
        "sys.path.insert(0, sys.argv.pop(1)); sys.argv[0] = 'forensics detect'; "
        "runpy.run_module('forensics.cli.detect', run_name='__main__')")


def measure(clips: dict[str, Path], model: Path, source: Path | None, work: Path, kill_above_mb: float) -> dict:
    env = dict(os.environ)
    out = {}
    for name, clip in clips.items():
        jsonl = work / f"{name}.jsonl"
        jsonl.unlink(missing_ok=True)
        python = [sys.executable, "-c", BOOT, str(source)] if source else [sys.executable, "-m", "forensics.cli.detect"]
        status, rss, seconds, last, killed = peak_rss(
            [*python, str(clip), "--model", str(model), "--device", "cpu", "--jsonl", str(jsonl)], env, kill_above_mb)
        records = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.is_file() else []
        record = records[0] if records else {}
        out[name] = {"bytes": clip.stat().st_size, "peak_rss_mb": rss, "seconds": seconds, "exit_status": status,
                     "killed_above_mb": kill_above_mb if killed else None, "record_status": record.get("status"),
                     "error": record.get("error"), "within_goal": rss <= GOAL_MB and not killed,
                     "last_line": last[:300] if not record else None}
        print(f"{name:12} peak RSS {rss:8.1f} MB  {seconds:6.1f} s  exit {status}{' (killed)' if killed else ''}  "
              f"record {record.get('status')}  {record.get('error') or ''}", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="after", help="the key the figures go under (e.g. before / after)")
    parser.add_argument("--source", type=Path, default=None,
                        help="run `forensics detect` from this source tree instead (an older checkout)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench/detect_memory"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--kill-above-mb", type=float, default=10240,
                        help="kill a scan whose memory passes this (default 10240: 10 GB)")
    args = parser.parse_args(argv)
    clips = make_clips(args.work / "clips")
    model = args.work / "model"
    if not (model / "config.json").is_file():
        make_model(model)
    results = measure(clips, model, args.source, args.work, args.kill_above_mb)
    document = json.loads(args.out.read_text()) if args.out.is_file() else {}
    document.update({"what": "peak RSS of one `forensics detect CLIP --device cpu` process (default sampling)",
                     "goal_mb": GOAL_MB, "command": "python -m benchmarks.detect_memory --label LABEL [--source DIR]"})
    document.setdefault("runs", {})[args.label] = {
        "commit": git_state(args.source or ".")["commit"], "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(), "clips": results}
    atomic_write_json(args.out, document)
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
