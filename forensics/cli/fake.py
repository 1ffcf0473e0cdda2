"""`forensics fake swap|animate`: make a fake video with a trained generator, plus its recipe.

Every fake carries its recipe (generator, checkpoint hash, mask, blending, colour transfer, codec), written
next to the video as `<out>.json`, so detectors and benchmarks can later be sliced by artifact.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from forensics.cli.flags import deprecated

EXAMPLES = """\
examples:
  forensics train generator faceswap --out runs/faceswap          # identities 0 and 1 of data/synth
  forensics fake swap --model runs/faceswap --target data/synth/videos/id0001_v00.mp4 --out fake.mp4
  forensics train generator animation --out runs/animation
  forensics fake animate --model runs/animation --source face.png --driving talk.mp4 --out animated.mp4
"""


def add_parser(sub) -> None:
    p = sub.add_parser("fake", help="make a fake video with a trained generator (swap or animate)",
                       description="Render a face-swapped or face-animated video with a trained generator; the "
                                   "recipe is written beside it as JSON.",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_subparsers(dest="how", metavar="HOW")
    s = what.add_parser("swap", help="put identity A's face onto every frame of a video of B",
                        description="Find and align the face in every frame of --target with MTCNN, redraw it as one "
                                    "of the checkpoint's two identities, colour-match and feather-blend it back into "
                                    "the frame, and write H.264; the recipe (every choice and the "
                                    "checkpoint's sha256) goes beside the video as JSON.",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--model", dest="checkpoint", default=None, metavar="DIR",
                   help="face-swap model folder (from train generator faceswap); required")
    deprecated(s, "--checkpoint", "--model", dest="checkpoint")
    s.add_argument("--target", required=True, help="video whose faces are replaced")
    s.add_argument("--out", required=True, help="output .mp4 (H.264)")
    s.add_argument("--source", default="a", choices=["a", "b"], help="which decoder's identity to draw (default a)")
    s.add_argument("--blend", default="feather", choices=["feather", "poisson"], help="blending (default feather)")
    s.add_argument("--colour", default="reinhard", choices=["reinhard", "none"], help="colour transfer")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=run_swap)
    a = what.add_parser("animate", help="make the face in a photo move like the face in a driving video (the "
                                        "photo with the animated face blended in)",
                        description="Animate the face of --source with the motion of the face in --driving (first-"
                                    "order motion: keypoints and a dense warp), blend the animated face back into "
                                    "the photo (a talking photo), and write H.264; the recipe goes beside the video "
                                    "as JSON.",
                        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("--model", dest="checkpoint", default=None, metavar="DIR",
                   help="animation model folder (from train generator animation); required")
    deprecated(a, "--checkpoint", "--model", dest="checkpoint")
    a.add_argument("--source", required=True, help="image of the face to animate")
    a.add_argument("--driving", required=True, help="video whose motion is transferred")
    a.add_argument("--out", required=True, help="output .mp4 (H.264)")
    a.add_argument("--absolute", action="store_true", help="absolute keypoints instead of relative motion")
    a.add_argument("--crop-only", action="store_true",
                   help="write the generated face crops instead of the source photo with the face blended in")
    a.add_argument("--device", default="auto")
    a.set_defaults(func=run_animate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_swap(args) -> int:
    if args.checkpoint is None:
        return _fail("--model DIR is required (a face-swap model from: forensics train generator faceswap)", 2)
    for path in (args.checkpoint, args.target):
        if not Path(path).exists():
            return _fail(f"{path}: no such file or folder", 2)
    from generators.faceswap import swap_video

    return _finish(lambda: swap_video(args.checkpoint, args.target, args.out, source=args.source, blend=args.blend,
                                      colour=args.colour, device=args.device), args.out)


def run_animate(args) -> int:
    if args.checkpoint is None:
        return _fail("--model DIR is required (an animation model from: forensics train generator animation)", 2)
    for path in (args.checkpoint, args.source, args.driving):
        if not Path(path).exists():
            return _fail(f"{path}: no such file or folder", 2)
    from generators.animation import animate

    return _finish(lambda: animate(args.checkpoint, args.source, args.driving, args.out,
                                   relative=not args.absolute, device=args.device, composite=not args.crop_only),
                   args.out)


def _finish(make, out: str) -> int:
    from forensics.io import atomic_write_json
    from forensics.media import MediaError

    try:
        recipe = make()
    except (ValueError, MediaError, OSError) as exc:
        return _fail(" ".join(str(exc).split()), 1)
    recipe_path = Path(out).with_suffix(".json")
    atomic_write_json(recipe_path, recipe)
    print(f"wrote {out} (recipe {recipe_path})")
    return 0


def _fail(message: str, status: int) -> int:
    print(f"forensics fake: {message}", file=sys.stderr)
    return status
