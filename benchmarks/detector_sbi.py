"""Generalisation from pseudo-fakes: a detector trained only on synthetic real faces and their self-blended
copies, scored at video level on self-blended fakes of identities it never saw (the test split).

Runs the same recipe as `forensics train detector` (cpu-small preset unless --preset), logs to MLflow's
`detectors` experiment, and records the figures with the machine they came from.

    python -m benchmarks.detector_sbi --root data/synth --identities 40 [--out runs/detector_sbi]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.machine import machine_info
from detectors.task import DetectorTrainConfig
from detectors.train import train_detector
from forensics.data.registry import DatasetError
from forensics.io import atomic_write_json
from forensics.pipelines.train import prepare_cache
from forensics.tracking import start_run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/synth")
    parser.add_argument("--identities", type=int, default=40)
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--out", default="runs/detector_sbi")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--results", default="benchmarks/results/detector_sbi.json")
    args = parser.parse_args(argv)

    config = DetectorTrainConfig.from_preset(args.preset, epochs=args.epochs, device=args.device)
    started = time.perf_counter()
    try:
        cache = prepare_cache(args.root, config, identities=args.identities, progress=False).cache
    except DatasetError as exc:
        print(f"benchmarks.detector_sbi: {exc}", file=sys.stderr)
        return 2
    prepared = time.perf_counter() - started
    with start_run("detectors", run_name="benchmark-sbi-generalisation", params=config.to_dict(),
                   tags={"kind": "benchmark"}) as run:
        result = train_detector(config, cache, args.out, run=run, resume=False, register_as=None, progress=False)
    elapsed = time.perf_counter() - started
    record = {
        "benchmark": "detector trained on self-blended pseudo-fakes; test = SBI fakes of unseen identities",
        "command": "python -m benchmarks.detector_sbi " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_info(),
        "preset": args.preset, "config": config.to_dict(),
        "data": {"root": str(args.root), "cache_crops": sum(len(e.faces) for e in cache.entries()),
                 "videos": {split: len(cache.entries(split=split)) for split in ("train", "val", "test")}},
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
        "threshold": result.threshold, "calibration": result.calibration,
        "validation": result.validation, "test": result.test,
        "mlflow_run_id": run.run_id, "mlflow_experiment": "detectors",
        "seconds": {"data_preparation": round(prepared, 1), "total": round(elapsed, 1)},
    }
    atomic_write_json(Path(args.results), record)
    test = result.test or {}
    video = test.get("video", {})
    print(f"test (unseen identities): video AUC {video.get('auc')}  CI {video.get('auc_ci')}  "
          f"frame AUC {test.get('frame', {}).get('auc')}  -> {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
