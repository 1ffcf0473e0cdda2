"""`forensics preprocess`: fill the face-crop cache for a dataset, once (forensics.data.prepare.cache_dataset;
imports are deferred into `run` so `--help` stays fast)."""
from __future__ import annotations

import argparse
import sys
import time

EXAMPLES = """\
examples:
  forensics preprocess --root data/synth                       # layout detected, cache in data/synth/face_cache
  forensics preprocess --dataset ffpp --root /data/FF++ --cache /data/ffpp_cache --frames 32
  forensics preprocess --root clips/ --every 5 --crop-size 160  # plain folder with real/ and fake/

A second run over the same data does nothing; a changed source file is redone alone; a changed crop size
or margin re-aligns the stored landmarks without running the detector again.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("preprocess", help="detect, align and cache face crops for a dataset",
                       description="Run the face pipeline (MTCNN, 5-point alignment, IoU tracks) once over a "
                                   "dataset and store aligned crops plus an index for training and evaluation.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--dataset", default=None,
                   help="adapter name (synthetic, folder, ffpp, celebdf, dfdc); guessed from the layout if omitted")
    p.add_argument("--cache", default=None, help="cache folder (default: ROOT/face_cache)")
    p.add_argument("--frames", type=int, default=16, help="frames sampled evenly per video (default 16)")
    p.add_argument("--every", type=int, default=None, help="take every k-th frame instead of --frames")
    p.add_argument("--crop-size", type=int, default=224, help="aligned crop size in pixels (default 224)")
    p.add_argument("--margin", type=float, default=0.25, help="context around the face, fraction (default 0.25)")
    p.add_argument("--split", choices=["train", "val", "test"], default=None, help="only this split")
    p.add_argument("--limit", type=int, default=None, help="only the first N files (quick looks)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from forensics.data.cache import CacheConfig
    from forensics.data.prepare import cache_dataset
    from forensics.data.registry import DatasetError

    for name in ("frames", "every", "crop_size", "limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"forensics preprocess: --{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    config = CacheConfig(frames=args.frames, every=args.every, crop_size=args.crop_size, margin=args.margin,
                         device=args.device)
    started = time.perf_counter()
    try:
        done = cache_dataset(args.root, config, dataset=args.dataset, cache_dir=args.cache, split=args.split,
                             limit=args.limit, progress=not args.quiet)
    except DatasetError as exc:
        print(f"forensics preprocess: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    report = done.report
    faces = sum(len(e.faces) for e in done.cache.entries())
    print(f"{done.dataset}: {len(done.rows)} files -> {done.cache.root}  ({elapsed:.1f} s)")
    print(f"  detected {report.processed}, re-cropped {report.recropped}, already cached {report.skipped}, "
          f"no face {report.no_face}, errors {report.failed}; {faces} face crops in the cache")
    for path, reason in report.errors:
        print(f"  error: {reason if reason.startswith(path) else f'{path}: {reason}'}", file=sys.stderr)
    return 1 if report.errors else 0
