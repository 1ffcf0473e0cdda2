"""`forensics demo`: the project's main job end to end at a size a 2-core CPU finishes quickly.

It renders a synthetic world, preprocesses it into the face-crop cache, trains the default detector on
self-blended pseudo-fakes (registered in MLflow; the first becomes the `champion` that `forensics detect`
uses), and scans a real test video with an HTML report. Generators and co-evolution join this recipe as
they land.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo (what `make demo` runs)",
                       description="Render a small synthetic face world, preprocess it into the face-crop cache, "
                                   "train and register a detector, and scan a video with it, printing where "
                                   "everything went.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  forensics demo --out demo --identities 12")
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--identities", type=int, default=12, help="synthetic identities (default 12)")
    p.add_argument("--videos-per-identity", type=int, default=2)
    p.add_argument("--frames", type=int, default=32, help="frames per video (default 32)")
    p.add_argument("--size", type=int, default=192, help="frame size in pixels (default 192)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=6, help="detector training epochs (default 6)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args) -> int:
    from forensics.data.cache import CacheConfig, FaceCache
    from forensics.data.registry import create_dataset
    from forensics.cli.main import main as detect_main
    from forensics.cli.train import promote_if_first, print_summary
    from forensics.pipelines.train_detector import train_detector
    from forensics.synthetic import WorldConfig, generate_world, identity_sheet
    from forensics.tracking import start_run
    from forensics.training.detector_task import DetectorTrainConfig

    out = Path(args.out)
    t0 = time.perf_counter()
    world_dir = out / "synth"
    print(f"[1/5] rendering {args.identities} identities x {args.videos_per_identity} videos x {args.frames} "
          f"frames at {args.size}px -> {world_dir}")
    generate_world(world_dir, WorldConfig(identities=args.identities, videos_per_identity=args.videos_per_identity,
                                          frames=args.frames, size=args.size, seed=args.seed))
    sheet = identity_sheet(out / "identity_sheet.png", n=16, seed=args.seed)
    print(f"      identity sheet -> {sheet}")

    print(f"[2/5] preprocessing faces (MTCNN, alignment, tracks) -> {out / 'face_cache'}")
    rows = create_dataset("synthetic", world_dir).rows()
    config = DetectorTrainConfig.from_preset("cpu-small", frames_per_video=8, epochs=args.epochs, seed=args.seed,
                                             device=args.device)
    cache = FaceCache(out / "face_cache", CacheConfig(frames=config.frames_per_video, crop_size=config.crop_size,
                                                      margin=config.margin, device=args.device))
    report = cache.build(rows)
    faces = sum(len(e.faces) for e in cache.entries())
    print(f"      {len(rows)} videos: detected {report.processed}, cached already {report.skipped}, "
          f"no face {report.no_face}, errors {report.failed}; {faces} aligned crops")

    print(f"[3/5] training the default detector on real faces + self-blended pseudo-fakes -> {out / 'detector'}")
    with start_run("detectors", run_name="demo-detector", params=config.to_dict(), tags={"kind": "demo"}) as run:
        result = train_detector(config, cache, out / "detector", run=run, progress=True)
        if result.registered_version:
            promote_if_first(result.registered_version)
    print_summary(result, run, time.perf_counter() - t0)

    test_rows = [r for r in rows if r.split == "test"] or rows
    video = test_rows[0].path
    print(f"[4/5] scanning a real test video: forensics detect {video} --model {result.model_dir} "
          f"--report {out / 'report'}")
    detect_status = detect_main(["detect", str(video), "--model", str(result.model_dir),
                                 "--jsonl", str(out / "detections.jsonl"), "--report", str(out / "report")])

    print(f"[5/5] done in {time.perf_counter() - t0:.0f} s")
    print(f"      videos + ground truth: {world_dir}/videos, {world_dir}/truth, manifest {world_dir}/manifest.csv")
    print(f"      face crops + index:    {out / 'face_cache'}/index.jsonl")
    print(f"      detector:              {result.model_dir}  (MLflow: forensics ui, experiment 'detectors')")
    print(f"      detection + report:    {out / 'detections.jsonl'}, {out / 'report'}/index.html")
    return 1 if report.failed or detect_status else 0


