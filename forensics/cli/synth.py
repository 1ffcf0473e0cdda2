"""`forensics synth`: render the synthetic face world (or a sheet of its identities)."""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

EXAMPLES = """\
examples:
  forensics synth --out data/synth                                   # 20 identities x 2 clips x 48 frames, 256 px
  forensics synth --out data/synth --identities 50 --videos-per-identity 1 --frames 24 --size 192 --seed 3
  forensics synth --sheet docs/identity_sheet.png                    # 16 identities on one PNG
  forensics synth sheet --out sheet.png --identities 9 --seed 3      # the same, spelled as an action

The world is a folder of H.264 clips (videos/), per-frame ground truth (truth/: boxes, 68 landmarks,
pose, expression), identities.json, world.json and manifest.csv (split by identity). Running the same
command again only renders what is missing; identity k of a seed is the same person at any --identities.
"""


def add_parser(sub) -> None:
    p = sub.add_parser("synth", help="render the synthetic talking-head world (videos + ground truth)",
                       description="Render procedural talking-head videos with exact ground truth (face box, "
                                   "68 iBUG landmarks, pose, expression, identity), judged realistic by MTCNN; "
                                   "or draw a sheet of identities to look at.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", nargs="?", choices=["world", "sheet"], default="world",
                   help="what to make: the world (default) or a sheet of identities (PNG at --out)")
    p.add_argument("--out", default=None, help="world folder (or PNG path for `sheet`)")
    p.add_argument("--sheet", default=None, metavar="PNG", help="write an identity sheet to PNG instead of a world")
    p.add_argument("--identities", type=int, default=None, help="people in the world (default 20; sheet: 16)")
    p.add_argument("--videos-per-identity", type=int, default=2, help="clips per identity (default 2)")
    p.add_argument("--frames", type=int, default=48, help="frames per clip (default 48)")
    p.add_argument("--size", type=int, default=None, help="frame width = height in pixels (default 256; sheet: 192)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--fps", type=int, default=25, help="frame rate (default 25)")
    p.add_argument("--crf", type=int, default=23, help="H.264 quality, 0..51, lower is better (default 23)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

    def one_line_error(message: str):
        print(f"forensics synth: {message} (see forensics synth --help)", file=sys.stderr)
        sys.exit(2)
    p.error = one_line_error


def _usage(message: str) -> int:
    print(f"forensics synth: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    sheet = args.sheet or (args.out if args.action == "sheet" else None)
    if args.action == "sheet" and not sheet:
        return _usage("`sheet` needs --out PNG")
    if sheet:
        return _run_sheet(Path(sheet), args)
    if not args.out:
        return _usage("--out DIR is required (or --sheet PNG for an identity sheet)")
    return _run_world(Path(args.out), args)


def _run_sheet(path: Path, args) -> int:
    from forensics.synthetic import identity_sheet

    n = 16 if args.identities is None else args.identities
    if n < 1 or n > 400:
        return _usage(f"--identities must be in 1..400 for a sheet, got {n}")
    if path.suffix.lower() != ".png":
        return _usage(f"{path}: the sheet is a PNG; give a path ending in .png")
    if path.is_dir():
        return _usage(f"{path}: is a folder; give a PNG file path")
    size = 192 if args.size is None else args.size
    if not 64 <= size <= 512:
        return _usage(f"--size must be in 64..512 for a sheet, got {size}")
    t0 = time.perf_counter()
    try:
        identity_sheet(path, n=n, seed=args.seed, size=size)
    except OSError as exc:
        return _usage(f"{path}: cannot write the sheet: {exc.strerror or exc}")
    print(f"identity sheet: {n} identities of seed {args.seed} -> {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _run_world(out: Path, args) -> int:
    from forensics.data.manifest import read_manifest
    from forensics.synthetic import WorldConfig, generate_world

    if out.exists() and not out.is_dir():
        return _usage(f"{out}: exists and is not a folder")
    try:
        config = WorldConfig(identities=20 if args.identities is None else args.identities,
                             videos_per_identity=args.videos_per_identity, frames=args.frames,
                             size=256 if args.size is None else args.size,
                             fps=args.fps, crf=args.crf, seed=args.seed)
    except ValueError as exc:
        return _usage(str(exc))
    t0 = time.perf_counter()
    try:
        manifest = generate_world(out, config, progress=not args.quiet)
    except OSError as exc:
        return _usage(f"{out}: cannot write the world: {exc.strerror or exc}")
    elapsed = time.perf_counter() - t0
    rows = read_manifest(manifest)
    splits = Counter(r.split for r in rows)
    frames = len(rows) * config.frames
    print(f"synthetic world: {config.identities} identities x {config.videos_per_identity} clips x "
          f"{config.frames} frames at {config.size}px ({frames} frames) in {elapsed:.1f} s")
    print(f"  videos  {out / 'videos'}   ground truth {out / 'truth'}")
    print(f"  manifest {manifest}  (train {splits['train']}, val {splits['val']}, test {splits['test']} clips)")
    return 0
