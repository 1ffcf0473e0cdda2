"""Cold start of `forensics detect`: a fresh process scoring one 10-s 720p clip with the default sampling.

The goal (issue "ready for real footage") is <= 2.0 s and <= 800 MB peak RSS. Each run is a new process, timed
from exec to exit with GNU time (wall seconds and peak RSS from the kernel), in two ways a user runs it: with
`--model FOLDER`, and through the registered champion of a sqlite registry (what `forensics detect clip.mp4`
does), both on the default runtime (onnxruntime once the champion's exports are cached, as registering a champion
does), and the champion once more with `--runtime torch`. Beside them, `python -X importtime` of the same command
splits the import time by top-level package, since imports are most of a cold start.

    python -m benchmarks.detect_cold_start --label before
    python -m benchmarks.detect_cold_start --label after --repeats 5

Results are merged into benchmarks/results/detect_cold_start.json under the label (median of the repeats, and
every run), with the commit and machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from mlflow import MlflowClient

from benchmarks.detect_speed import make_clip, make_model
from benchmarks.machine import machine_info
from detectors.promote import CHAMPION, register
from forensics.io import atomic_write_json
from forensics.tracking import start_run

RESULTS = Path("benchmarks/results/detect_cold_start.json")
GOAL_S, GOAL_MB = 2.0, 800
TIME = "/usr/bin/time"


def timed(command: list[str], env: dict) -> dict:
    done = subprocess.run([TIME, "-f", "%e %M", *command], env=env, capture_output=True, text=True)
    wall, rss_kb = done.stderr.strip().splitlines()[-1].split()
    return {"seconds": float(wall), "peak_rss_mb": round(int(rss_kb) / 1024, 1), "exit_status": done.returncode}


def import_seconds(command: list[str], env: dict) -> dict[str, float]:
    """Cumulative import time per top-level package (python -X importtime), largest first."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command], env=env, capture_output=True, text=True)
    per_package: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match and not match.group(2).startswith(" "):       # top level only: cumulative includes children
            per_package[match.group(2).split(".")[0]] += int(match.group(1)) / 1e6
    return dict(sorted(((k, round(v, 3)) for k, v in per_package.items() if v >= 0.05), key=lambda kv: -kv[1]))


def register_champion(model: Path, store: Path, cache: Path) -> None:
    """Register `model` as champion, as `make demo` does (which also caches its ONNX exports in `cache`)."""
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    os.environ["FORENSICS_MODEL_CACHE"] = str(cache)
    with start_run("detectors", run_name="cold-start") as run:
        register(run, model, alias=CHAMPION)
    MlflowClient(tracking_uri=f"sqlite:///{store}").search_experiments()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="name of this measurement (before, after, ...)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cold_start_") as tmp:
        work = Path(tmp)
        clip = make_clip(work / "clip.mp4", 10.0)
        model = make_model(work / "model")
        register_champion(model, work / "mlflow.db", work / "cache")
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
               "FORENSICS_MODEL_CACHE": str(work / "cache"), "FORENSICS_CONFIG_DIR": str(work / "config")}
        detect = [sys.executable, "-m", "forensics.cli.main", "detect", str(clip), "--quiet"]
        ways = {"--model FOLDER": [*detect, "--model", str(model)], "registered champion": detect,
                "registered champion, --runtime torch": [*detect, "--runtime", "torch"]}
        runs = {way: [timed(command, env) for _ in range(args.repeats)] for way, command in ways.items()}
        imports = import_seconds(ways["registered champion"][1:], env)

    summary = {}
    for way, measured in runs.items():
        seconds = statistics.median(r["seconds"] for r in measured)
        rss = statistics.median(r["peak_rss_mb"] for r in measured)
        summary[way] = {"seconds_median": seconds, "peak_rss_mb_median": rss, "within_goal": seconds <= GOAL_S
                        and rss <= GOAL_MB, "runs": measured}
    results = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    results.update({"what": __doc__.split("\n\n")[0], "goal": {"seconds": GOAL_S, "peak_rss_mb": GOAL_MB},
                    "command": "python -m benchmarks.detect_cold_start --label LABEL"})
    results.setdefault("runs", {})[args.label] = {"machine": machine_info(), "clip": "10-s 1280x720 H.264",
                                                  "ways": summary, "import_seconds_by_package": imports}
    atomic_write_json(args.out, results)
    for way, figures in summary.items():
        print(f"{way}: {figures['seconds_median']} s, {figures['peak_rss_mb_median']} MB")
    print("imports:", ", ".join(f"{k} {v} s" for k, v in list(imports.items())[:6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
