"""`forensics demo`: the project's main job end to end at a size a 2-core CPU finishes quickly.

For now (foundation stage) it renders a synthetic world, preprocesses it into the face-crop cache and
draws the identity sheet; later stages add training, co-evolution and detection to the same recipe.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end demo (what `make demo` runs)",
                       description="Render a small synthetic face world, preprocess it into the face-crop cache "
                                   "and draw a sheet of identities, printing where everything went.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example:\n  forensics demo --out demo --identities 12")
    p.add_argument("--out", default="demo", help="output folder (default: demo)")
    p.add_argument("--identities", type=int, default=12, help="synthetic identities (default 12)")
    p.add_argument("--videos-per-identity", type=int, default=2)
    p.add_argument("--frames", type=int, default=32, help="frames per video (default 32)")
    p.add_argument("--size", type=int, default=192, help="frame size in pixels (default 192)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args) -> int:
    from forensics.data.cache import CacheConfig, FaceCache
    from forensics.data.registry import create_dataset
    from forensics.synthetic import WorldConfig, generate_world, identity_sheet

    out = Path(args.out)
    t0 = time.perf_counter()
    world_dir = out / "synth"
    print(f"[1/3] rendering {args.identities} identities x {args.videos_per_identity} videos x {args.frames} "
          f"frames at {args.size}px -> {world_dir}")
    generate_world(world_dir, WorldConfig(identities=args.identities, videos_per_identity=args.videos_per_identity,
                                          frames=args.frames, size=args.size, seed=args.seed))
    sheet = identity_sheet(out / "identity_sheet.png", n=16, seed=args.seed)
    print(f"      identity sheet -> {sheet}")

    print(f"[2/3] preprocessing faces (MTCNN, alignment, tracks) -> {out / 'face_cache'}")
    rows = create_dataset("synthetic", world_dir).rows()
    cache = FaceCache(out / "face_cache", CacheConfig(frames=8, crop_size=128, device=args.device))
    report = cache.build(rows)
    faces = sum(len(e.faces) for e in cache.entries())
    print(f"      {len(rows)} videos: detected {report.processed}, cached already {report.skipped}, "
          f"no face {report.no_face}, errors {report.failed}; {faces} aligned crops")

    print(f"[3/3] done in {time.perf_counter() - t0:.0f} s")
    print(f"      videos + ground truth: {world_dir}/videos, {world_dir}/truth, manifest {world_dir}/manifest.csv")
    print(f"      face crops + index:    {out / 'face_cache'}/index.jsonl")
    return 1 if report.failed else 0


